package dev.enclavekms.enclave.pkcs11;

/**
 * How {@link Pkcs11Enclave} makes its hot calls — C_EncryptInit/C_Encrypt,
 * C_DecryptInit/C_Decrypt, C_SignInit/C_Sign. Everything else (loading, C_Initialize, slots,
 * sessions, login, find, generate, attributes) always goes through the IAIK wrapper.
 */
public enum Pkcs11Binding {
    /** The IAIK JNI wrapper (org.xipki:ipkcs11wrapper) for every call. */
    WRAPPER,
    /**
     * The hot calls straight into the module's function list through java.lang.foreign,
     * on the wrapper's sessions and key handles: ≈ 7 µs of CPU less per call
     * (docs/performance.md). Falls back to {@link #WRAPPER} where it cannot be set up.
     */
    FFM
}
