package dev.enclavekms.enclave.pkcs11;

import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.params.GCM_PARAMS;
import org.xipki.pkcs11.wrapper.params.RSA_PKCS_PSS_PARAMS;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKG_MGF1_SHA256;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_AES_GCM;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_SHA256;

/** The hot calls through the IAIK JNI wrapper. */
final class WrapperHotCalls implements HotCalls {

    static final WrapperHotCalls INSTANCE = new WrapperHotCalls();

    private WrapperHotCalls() {
    }

    @Override
    public Pkcs11Binding binding() {
        return Pkcs11Binding.WRAPPER;
    }

    @Override
    public byte[] encrypt(Session s, long key, byte[] iv, byte[] aad, byte[] plaintext) throws PKCS11Exception {
        Mechanism gcm = new Mechanism(CKM_AES_GCM, new GCM_PARAMS(iv, aad, TAG_BITS));
        if (plaintext.length == 0) {
            // The JNI layer passes an empty array as a NULL pointer, which SoftHSM refuses
            // with CKR_ARGUMENTS_BAD (and leaves the operation active). Init + Final with no
            // data is the same GCM computation: just the tag.
            s.encryptInit(gcm, key);
            return s.encryptFinal();
        }
        return s.encryptSingle(gcm, key, plaintext);
    }

    @Override
    public byte[] decrypt(Session s, long key, byte[] iv, byte[] aad, byte[] ciphertext) throws PKCS11Exception {
        s.decryptInit(new Mechanism(CKM_AES_GCM, new GCM_PARAMS(iv, aad, TAG_BITS)), key);
        try {
            return s.decrypt(ciphertext);
        } catch (PKCS11Exception e) {
            throw new OperationFailed(e.getErrorCode());
        }
    }

    @Override
    public byte[] sign(Session s, SignMechanism mechanism, long key, byte[] data) throws PKCS11Exception {
        Mechanism m = mechanism == SignMechanism.RSA_PSS_SHA256
                ? new Mechanism(mechanism.ckm, new RSA_PKCS_PSS_PARAMS(CKM_SHA256, CKG_MGF1_SHA256, 32))
                : new Mechanism(mechanism.ckm);
        if (data.length == 0 && mechanism == SignMechanism.HMAC_SHA256) {
            // The JNI layer passes an empty array as a NULL pointer, which C_Sign refuses;
            // Init + Final with no update is the same MAC over the empty message.
            s.signInit(m, key);
            return s.signFinal();
        }
        return s.signSingle(m, key, data);
    }
}
