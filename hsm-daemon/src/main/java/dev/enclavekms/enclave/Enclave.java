package dev.enclavekms.enclave;

import java.security.PublicKey;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The hardware boundary. Every operation that needs a master key happens behind this
 * interface, on the device; no method returns secret or private key bytes, so nothing
 * above this package can ever hold a master key.
 *
 * <p>Keys are addressed by {@link ObjectId} (the key version's id; CKA_ID on a PKCS#11
 * token, the slot id on the card). Implementations are thread-safe.
 *
 * <p>Errors: {@link EnclaveException.ObjectNotFound} when no key has the id,
 * {@link EnclaveException.AuthenticationFailed} when a ciphertext does not verify (never
 * retried: it is the caller's data, not the device, that is bad),
 * {@link EnclaveException.Unavailable} when the device cannot be reached even after one
 * reopen, {@link EnclaveException.Unsupported} for an algorithm the device lacks.
 */
public interface Enclave extends AutoCloseable {

    /**
     * The algorithms this device generates keys for; {@link #generate} refuses the others
     * with {@link EnclaveException.Unsupported}. The service asks this before it creates a
     * key, so that a key the device cannot hold is refused at CreateKey, not at first use.
     * A PKCS#11 token is assumed to support every algorithm (its mechanisms are checked at
     * generation); a Java Card reports what its applet implements.
     */
    default Set<KeyAlgorithm> supportedAlgorithms() {
        return EnumSet.allOf(KeyAlgorithm.class);
    }

    /** What the device says about itself: label, manufacturer, model, serial, free space. */
    EnclaveInfo info() throws EnclaveException;

    /**
     * Generates a key inside the device. AES keys get encrypt+decrypt only; HMAC keys get
     * MAC computation (sign) only; key pairs get sign (private) and verify (public) only. Every key is sensitive, non-extractable,
     * non-modifiable and non-copyable.
     *
     * @return the public key of a generated key pair; {@code null} for a secret key
     */
    PublicKey generate(ObjectId id, KeyAlgorithm algorithm, String label) throws EnclaveException;

    /**
     * AEAD-encrypts {@code plaintext} under a secret key with additional data {@code aad}.
     * The device chooses the IV from its own random generator.
     */
    Sealed encrypt(ObjectId key, byte[] aad, byte[] plaintext) throws EnclaveException;

    /**
     * Reverses {@link #encrypt}. A wrong key, AAD, IV or a modified ciphertext all give
     * {@link EnclaveException.AuthenticationFailed} and reveal nothing else.
     */
    SecretBytes decrypt(ObjectId key, byte[] aad, Sealed sealed) throws EnclaveException;

    /**
     * Signs with a private key. {@code input} is the digest for ECDSA and RSA-PSS (its
     * length must match the algorithm's hash) and the whole message for Ed25519.
     * ECDSA signatures are DER-encoded (X9.62), as OpenSSL and JCA expect.
     */
    byte[] sign(ObjectId key, KeyAlgorithm algorithm, byte[] input) throws EnclaveException;

    /**
     * HMAC-SHA256 (RFC 2104) of {@code data} under a key generated as
     * {@link KeyAlgorithm#HMAC_SHA256}: 32 bytes, deterministic for a key and input. The key
     * never leaves the device, so whoever holds only the outputs can match a value they
     * already know against them, but cannot compute them or invert them.
     *
     * <p>{@code data} may be empty and is at most {@link #MAX_HMAC_INPUT_BYTES} bytes. A key
     * of any other algorithm gives {@link EnclaveException.BadInput}.
     *
     * <p>Implementations: PKCS#11 CKM_SHA256_HMAC on a CKK_GENERIC_SECRET key that has
     * CKA_SIGN only; a Java Card applet {@code Signature.ALG_HMAC_SHA_256} with an
     * {@code HMACKey} generated on the card (a card that lacks it reports the algorithm as
     * unsupported at generation).
     */
    byte[] hmac(ObjectId key, byte[] data) throws EnclaveException;

    /** Longest input {@link #hmac} accepts: audit strings are short, this only bounds misuse. */
    int MAX_HMAC_INPUT_BYTES = 64 * 1024;

    /** The public key of a key pair, read from the device. */
    PublicKey publicKey(ObjectId key, KeyAlgorithm algorithm) throws EnclaveException;

    /**
     * Stores an X.509 certificate (DER) for the key pair {@code key} on the device, as a
     * public object with the key's id and {@code label}, replacing the one stored before:
     * PKCS#11 programs (SunPKCS11's KeyStore, OpenSSL's pkcs11 provider) find a private key
     * through the certificate that shares its CKA_ID. Only TLS keys get one (docs/tls.md).
     *
     * @throws EnclaveException.ObjectNotFound no private key has the id
     * @throws EnclaveException.Unsupported    the device keeps no certificates
     */
    default void putCertificate(ObjectId key, String label, byte[] certificateDer) throws EnclaveException {
        throw new EnclaveException.Unsupported("this enclave keeps no certificates");
    }

    /** {@code length} bytes from the device's random generator. */
    SecretBytes random(int length) throws EnclaveException;

    /**
     * Destroys the key (both halves of a pair, and its certificate if it has one). Destroying
     * a missing key is not an error.
     */
    void destroy(ObjectId key) throws EnclaveException;

    /** Every key object on the device with its protection attributes, for reconciliation. */
    List<EnclaveObject> list() throws EnclaveException;

    @Override
    void close();
}
