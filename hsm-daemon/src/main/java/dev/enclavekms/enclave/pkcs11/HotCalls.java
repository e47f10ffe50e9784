package dev.enclavekms.enclave.pkcs11;

import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_ECDSA;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_EDDSA;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_RSA_PKCS_PSS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_SHA256_HMAC;

/**
 * The device calls {@link Pkcs11Enclave} makes per request — AES-GCM encryption and
 * decryption, signatures and MACs — each an Init and a single-part call on a borrowed
 * session, through the wrapper ({@link WrapperHotCalls}) or through FFM ({@link FfmHotCalls}).
 * Both report a device error as the wrapper's {@link PKCS11Exception} with the module's CKR,
 * so the enclave's recovery and error mapping do not depend on the binding.
 *
 * <p>Called only while {@code session} is borrowed by the calling thread (one thread per
 * session: a module allows one active operation per session).
 */
interface HotCalls {

    /** 96-bit IV, 128-bit tag: the only GCM parameters the enclave uses. */
    int TAG_BITS = Pkcs11Enclave.TAG_BITS;

    /** Which binding this is. */
    Pkcs11Binding binding();

    /** AES-GCM: ciphertext ‖ tag of {@code plaintext} (which may be empty). */
    byte[] encrypt(Session session, long key, byte[] iv, byte[] aad, byte[] plaintext) throws PKCS11Exception;

    /**
     * AES-GCM: the plaintext. A failure of C_Decrypt itself — after C_DecryptInit accepted key
     * and parameters, so typically a tag that does not verify — is an {@link OperationFailed}.
     */
    byte[] decrypt(Session session, long key, byte[] iv, byte[] aad, byte[] ciphertext) throws PKCS11Exception;

    /** The signature or MAC of {@code data} as the module returns it (ECDSA: r ‖ s). */
    byte[] sign(Session session, SignMechanism mechanism, long key, byte[] data) throws PKCS11Exception;

    /** The signing mechanisms of the enclave's key algorithms. */
    enum SignMechanism {
        /** Over a digest given by the caller. */
        ECDSA(CKM_ECDSA),
        /** Pure EdDSA, no parameter. */
        EDDSA(CKM_EDDSA),
        /** PSS over a SHA-256 digest, MGF1-SHA-256, 32-byte salt. */
        RSA_PSS_SHA256(CKM_RSA_PKCS_PSS),
        HMAC_SHA256(CKM_SHA256_HMAC);

        final long ckm;

        SignMechanism(long ckm) {
            this.ckm = ckm;
        }
    }

    /** The second call of an Init + single-part pair failed (the Init succeeded). */
    final class OperationFailed extends PKCS11Exception {
        OperationFailed(long ckr) {
            super(ckr);
        }
    }
}
