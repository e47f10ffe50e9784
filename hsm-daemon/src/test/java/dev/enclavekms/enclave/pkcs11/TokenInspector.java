package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.testing.TestTokens;
import iaik.pkcs.pkcs11.wrapper.CK_ATTRIBUTE;
import iaik.pkcs.pkcs11.wrapper.PKCS11;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.Slot;

import java.util.List;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_USER_ALREADY_LOGGED_IN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKU_USER;

/**
 * A path to the token that does not go through {@link Pkcs11Enclave}: its own logged-in
 * session, raw C_GetAttributeValue / C_SetAttributeValue / C_WrapKey calls whose CKR codes
 * come back unchanged (the wrapper's convenience methods swallow CKR_ATTRIBUTE_SENSITIVE).
 * The module is necessarily the process's one (it can be initialised only once).
 */
final class TokenInspector implements AutoCloseable {

    final Pkcs11Library library;
    final Slot slot;
    final Session session;
    final PKCS11 raw;

    TokenInspector(TestTokens.TestToken token) throws Exception {
        library = Pkcs11Library.load(token.config().library());
        List<Pkcs11Library.SlotToken> found = library.find(token.label(), null);
        if (found.size() != 1) {
            throw new IllegalStateException("token " + token.label() + " found " + found.size() + " times");
        }
        slot = found.getFirst().slot();
        session = slot.getToken().openSession(true);
        try {
            session.login(CKU_USER, token.userPin().toCharArray());
        } catch (PKCS11Exception e) {
            if (e.getErrorCode() != CKR_USER_ALREADY_LOGGED_IN) {
                throw e;
            }
        }
        raw = library.module().getPKCS11Module();
    }

    long handle() {
        return session.getSessionHandle();
    }

    /** Handles of objects of this class with this CKA_ID. */
    long[] find(long objectClass, ObjectId id) throws PKCS11Exception {
        return session.findAllObjectsSingle(new AttributeVector().class_(objectClass).id(id.bytes()));
    }

    long only(long objectClass, ObjectId id) throws PKCS11Exception {
        long[] found = find(objectClass, id);
        if (found.length != 1) {
            throw new AssertionError(found.length + " objects of class " + objectClass + " with id " + id);
        }
        return found[0];
    }

    /** One attribute read raw, as the module returns it (Boolean, Long, byte[], char[]...). */
    Object attribute(long object, long type) throws iaik.pkcs.pkcs11.wrapper.PKCS11Exception {
        CK_ATTRIBUTE[] template = {new CK_ATTRIBUTE()};
        template[0].type = type;
        raw.C_GetAttributeValue(handle(), object, template, true);
        return template[0].pValue;
    }

    /** The CKR code with which reading this attribute fails, or 0 when it succeeds. */
    long readError(long object, long type) {
        try {
            attribute(object, type);
            return 0;
        } catch (iaik.pkcs.pkcs11.wrapper.PKCS11Exception e) {
            return e.getErrorCode();
        }
    }

    /** The CKR code with which setting these attributes fails, or 0 when it succeeds. */
    long setError(long object, AttributeVector attributes) {
        try {
            raw.C_SetAttributeValue(handle(), object, attributes.toCkAttributes(), true);
            return 0;
        } catch (iaik.pkcs.pkcs11.wrapper.PKCS11Exception e) {
            return e.getErrorCode();
        }
    }

    @Override
    public void close() {
        try {
            session.closeSession();
        } catch (PKCS11Exception e) {
            // Tests close all sessions behind everyone's back; ours may be gone already.
        }
    }
}
