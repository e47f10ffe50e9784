package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.testing.TestTokens;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_AES;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_AES_KEY_GEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_SECRET_KEY;

/** Keys made on a test token behind the enclave's back, for tests outside this package. */
public final class TestKeys {
    private TestKeys() {
    }

    /** An AES-256 key as a careless tool makes it: extractable, not sensitive, wrap and decrypt together. */
    public static void makeWeakAesKey(TestTokens.TestToken token, ObjectId id) throws Exception {
        try (TokenInspector t = new TokenInspector(token)) {
            t.session.generateKey(new Mechanism(CKM_AES_KEY_GEN), new AttributeVector()
                    .class_(CKO_SECRET_KEY).keyType(CKK_AES).valueLen(32).token(true).private_(true)
                    .sensitive(false).extractable(true).encrypt(true).decrypt(true).wrap(true).unwrap(true)
                    .id(id.bytes()).label("weak"));
        }
    }
}
