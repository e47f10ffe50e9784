package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Constants;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

/**
 * Why the enclave does not run its operations on session-object copies of its keys
 * (docs/performance.md "SoftHSM configuration (session 5)", docs/decisions.md): a copy
 * would skip SoftHSM's per-operation file check of token objects, but SoftHSM copies only
 * a key that is both CKA_COPYABLE and CKA_MODIFIABLE, and such a key's copy can be given
 * usage flags the key never had. The facts the decision rests on, on a real SoftHSM token.
 */
class SessionKeyCopyTest {

    private static TestTokens.TestToken token;
    private static Pkcs11Enclave enclave;

    @BeforeAll
    static void open() throws Exception {
        token = TestTokens.fresh("session-copy");
        enclave = token.open();
    }

    @AfterAll
    static void close() {
        if (enclave != null) {
            enclave.close();
        }
    }

    @Test
    void enclaveKeys_cannotBeCopiedIntoSessionObjects() throws Exception {
        ObjectId aes = ObjectId.random();
        ObjectId ec = ObjectId.random();
        enclave.generate(aes, KeyAlgorithm.AES_256_GCM, "copy-aes");
        enclave.generate(ec, KeyAlgorithm.EC_P256_SHA256, "copy-ec");
        try (TokenInspector t = new TokenInspector(token)) {
            for (long key : new long[] {t.only(CKO_SECRET_KEY, aes), t.only(CKO_PRIVATE_KEY, ec)}) {
                assertRefused(CKR_ACTION_PROHIBITED, () -> t.raw.C_CopyObject(t.handle(), key,
                        new AttributeVector().token(false).toCkAttributes(), true));
            }
        } finally {
            enclave.destroy(aes);
            enclave.destroy(ec);
        }
    }

    @Test
    void copyableButNotModifiableKey_stillRefusesASessionCopy() throws Exception {
        // SoftHSM applies a copy's template through the same check as C_SetAttributeValue:
        // on a CKA_MODIFIABLE=false object even CKA_TOKEN=false is CKR_ATTRIBUTE_READ_ONLY.
        ObjectId id = ObjectId.random();
        try (TokenInspector t = new TokenInspector(token)) {
            long key = t.session.generateKey(new Mechanism(CKM_AES_KEY_GEN),
                    KeyTemplates.secretKey(id, "copyable only").copyable(true));
            try {
                assertEquals(Boolean.FALSE, t.attribute(key, CKA_MODIFIABLE));
                assertRefused(CKR_ATTRIBUTE_READ_ONLY, () -> t.raw.C_CopyObject(t.handle(), key,
                        new AttributeVector().token(false).toCkAttributes(), true));
            } finally {
                t.session.destroyObject(key);
            }
        }
    }

    @Test
    void copyOfCopyableModifiableKey_staysSensitive_butCanGainUsages_andDiesWithItsSession() throws Exception {
        ObjectId id = ObjectId.random();
        try (TokenInspector t = new TokenInspector(token)) {
            long key = t.session.generateKey(new Mechanism(CKM_AES_KEY_GEN),
                    KeyTemplates.secretKey(id, "copyable and modifiable").copyable(true).modifiable(true));
            long wrapping = t.session.generateKey(new Mechanism(CKM_AES_KEY_GEN), new AttributeVector()
                    .class_(CKO_SECRET_KEY).keyType(CKK_AES).valueLen(32).token(false)
                    .wrap(true).unwrap(true).extractable(true).sensitive(false));
            try {
                long copy = t.raw.C_CopyObject(t.handle(), key, new AttributeVector().token(false).toCkAttributes(), true);
                // The copy keeps the protection: read back from the token.
                assertEquals(Boolean.FALSE, t.attribute(copy, CKA_TOKEN));
                assertEquals(Boolean.TRUE, t.attribute(copy, CKA_SENSITIVE));
                assertEquals(Boolean.FALSE, t.attribute(copy, CKA_EXTRACTABLE));
                assertEquals(Boolean.TRUE, t.attribute(copy, CKA_NEVER_EXTRACTABLE));
                assertEquals(CKR_ATTRIBUTE_SENSITIVE, t.readError(copy, CKA_VALUE));
                assertRefused(CKR_KEY_UNEXTRACTABLE, () -> t.raw.C_WrapKey(t.handle(),
                        ckMechanism(CKM_AES_KEY_WRAP_PAD), wrapping, copy, true));
                // Nor can a copy be made extractable or non-sensitive.
                assertRefused(CKR_ATTRIBUTE_READ_ONLY, () -> t.raw.C_CopyObject(t.handle(), key,
                        new AttributeVector().token(false).extractable(true).toCkAttributes(), true));
                assertRefused(CKR_ATTRIBUTE_READ_ONLY, () -> t.raw.C_CopyObject(t.handle(), key,
                        new AttributeVector().token(false).sensitive(false).toCkAttributes(), true));

                // But whoever holds the PIN can copy it into a key-wrapping key, which the
                // original (encrypt and decrypt only) never was: the reason our keys are neither.
                long wrapper = t.raw.C_CopyObject(t.handle(), key,
                        new AttributeVector().token(false).wrap(true).toCkAttributes(), true);
                assertEquals(Boolean.TRUE, t.attribute(wrapper, CKA_WRAP));
                assertEquals(Boolean.FALSE, t.attribute(key, CKA_WRAP));
                // And the enclave's reconciliation reports such a key as weak.
                List<String> weaknesses = enclave.list().stream().filter(o -> o.id().equals(id))
                        .map(EnclaveObject::protection).findFirst().orElseThrow()
                        .weaknesses(KeyAlgorithm.AES_256_GCM);
                assertTrue(weaknesses.stream().anyMatch(w -> w.startsWith("modifiable")), weaknesses.toString());
                assertTrue(weaknesses.stream().anyMatch(w -> w.startsWith("copyable")), weaknesses.toString());

                // A session object dies with the session that made it: a copy belongs to one session.
                var owner = t.slot.getToken().openSession(true);
                long owned = owner.copyObject(key, new AttributeVector().token(false));
                assertEquals(Boolean.FALSE, t.attribute(owned, CKA_TOKEN)); // visible to our other session
                owner.closeSession();
                assertEquals(CKR_OBJECT_HANDLE_INVALID, t.readError(owned, CKA_TOKEN));
            } finally {
                t.session.destroyObject(key);
            }
        }
    }

    private static iaik.pkcs.pkcs11.wrapper.CK_MECHANISM ckMechanism(long mechanism) {
        iaik.pkcs.pkcs11.wrapper.CK_MECHANISM m = new iaik.pkcs.pkcs11.wrapper.CK_MECHANISM();
        m.mechanism = mechanism;
        return m;
    }

    private interface RawCall {
        void run() throws iaik.pkcs.pkcs11.wrapper.PKCS11Exception;
    }

    private static void assertRefused(long expectedCode, RawCall call) {
        iaik.pkcs.pkcs11.wrapper.PKCS11Exception e =
                assertThrows(iaik.pkcs.pkcs11.wrapper.PKCS11Exception.class, call::run);
        assertEquals(PKCS11Constants.ckrCodeToName(expectedCode), PKCS11Constants.ckrCodeToName(e.getErrorCode()));
    }
}
