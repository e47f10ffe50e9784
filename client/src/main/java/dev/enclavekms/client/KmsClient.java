package dev.enclavekms.client;

import dev.enclavekms.varlink.VarlinkClient;
import dev.enclavekms.varlink.VarlinkError;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A connection to the enclave-kms daemon: one Java method per method of the
 * {@code dev.enclavekms.Kms} and {@code dev.enclavekms.Admin} varlink interfaces (plus
 * {@code org.varlink.service}), with binary values as {@code byte[]} and results as
 * records.
 *
 * <pre>{@code
 * try (var kms = KmsClient.connectDefault()) {
 *     DataKey dk = kms.generateDataKey("model-weights", Map.of("model", "llama-3-8b"));
 *     // encrypt locally with dk.plaintext(); store dk.ciphertext(); forget the plaintext
 *     byte[] again = kms.decrypt(dk.ciphertext(), Map.of("model", "llama-3-8b")).plaintext();
 * }
 * }</pre>
 *
 * <p>Guarantees common to every method:
 * <ul>
 *   <li>A refusal by the daemon is a {@link KmsException} — its subclass names the
 *       error of the IDL ({@link KeyNotFoundException}, {@link DecryptionFailedException},
 *       ...). A transport failure (cannot connect, connection lost, malformed reply) is
 *       an {@link IOException}. Null arguments, except where documented, throw
 *       {@link NullPointerException} before anything is sent.</li>
 *   <li>A context is a map of strings bound to a ciphertext as additional authenticated
 *       data; decryption must present the same map. {@code null} or an empty map means no
 *       context (the parameter is not sent).</li>
 *   <li>Byte arrays passed in are not kept or modified; byte arrays returned are fresh and
 *       belong to the caller (wipe secret ones when done).</li>
 *   <li>Calls on one client are serialised (varlink answers in order), so a client may be
 *       shared between threads but runs one call at a time; open one client per thread
 *       for parallelism. No call has a timeout: a daemon that never answers blocks the
 *       caller until the connection is closed.</li>
 * </ul>
 */
public final class KmsClient implements AutoCloseable {
    private static final String KMS = KmsErrors.KMS + ".";
    private static final String ADMIN = KmsErrors.ADMIN + ".";
    private static final String SERVICE = KmsErrors.SERVICE + ".";

    private final VarlinkClient varlink;
    private final Path socket;

    private KmsClient(VarlinkClient varlink, Path socket) {
        this.varlink = varlink;
        this.socket = socket;
    }

    /**
     * Connects to the daemon listening on {@code socket}. Sends nothing: a daemon that
     * accepted the connection but refuses to serve it (e.g. too many connections) is
     * reported by the first call.
     *
     * @throws IOException when nothing accepts connections at {@code socket}; the message
     *                     names the path and the reason
     */
    public static KmsClient connect(Path socket) throws IOException {
        Objects.requireNonNull(socket, "socket");
        return new KmsClient(VarlinkClient.connect(socket), socket);
    }

    /**
     * Connects and bounds every call: a call not answered within {@code timeout} fails
     * with an IOException and closes the connection (open a new client to go on). The
     * daemon itself gives up on a hung device after its call timeout (30 s by default).
     */
    public static KmsClient connect(Path socket, java.time.Duration timeout) throws IOException {
        Objects.requireNonNull(timeout, "timeout");
        KmsClient c = connect(socket);
        c.varlink.setReplyTimeout(timeout);
        return c;
    }

    /**
     * Connects to the socket named by {@code $ENCLAVE_KMS_SOCKET}, else
     * {@code /run/enclave-kms/kms.sock} (see {@link SocketLocator}).
     *
     * @throws IOException as {@link #connect(Path)}
     */
    public static KmsClient connectDefault() throws IOException {
        return connect(SocketLocator.locate());
    }

    /** The socket this client connected to. */
    public Path socket() {
        return socket;
    }

    // ------------------------------------------------------------------ dev.enclavekms.Kms

    /**
     * Generates a 32-byte data key under the primary version of {@code key}
     * ({@code Kms.GenerateDataKey}). The plaintext comes from the enclave's random
     * generator; the ciphertext decrypts with {@link #decrypt} given the same context.
     *
     * @param context bound to the ciphertext; null for none
     * @throws KeyNotFoundException        no such key (or the caller may not know of it)
     * @throws InvalidKeyUsageException    the key is not an ENCRYPT key
     * @throws InvalidParameterException   e.g. a required context key is missing
     * @throws PermissionDeniedException   the policy does not grant this call
     * @throws EnclaveUnavailableException the hardware could not be used
     */
    public DataKey generateDataKey(String key, Map<String, String> context) throws KmsException, IOException {
        return generateDataKey(key, context, null);
    }

    /**
     * As {@link #generateDataKey(String, Map)} with a data key of {@code bytes} bytes
     * (the daemon decides the allowed range and answers {@link InvalidParameterException}
     * outside it).
     */
    public DataKey generateDataKey(String key, Map<String, String> context, int bytes)
            throws KmsException, IOException {
        return generateDataKey(key, context, Integer.valueOf(bytes));
    }

    private DataKey generateDataKey(String key, Map<String, String> context, Integer bytes)
            throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Reply r = call(KMS + "GenerateDataKey", "key", key, "context", wireContext(context), "bytes", bytes);
        return new DataKey(r.string("key"), r.int32("version"), r.bytes("plaintext"), r.bytes("ciphertext"));
    }

    /**
     * Generates {@code count} 32-byte data keys under one key version and context
     * ({@code Kms.GenerateDataKeys}; the daemon allows at most 10,000 per call). Every
     * returned {@link DataKey} carries the reply's key name and version.
     *
     * @param context bound to every ciphertext; null for none
     * @return {@code count} data keys in the daemon's order (unmodifiable)
     * @throws KmsException as {@link #generateDataKey(String, Map)}
     */
    public List<DataKey> generateDataKeys(String key, int count, Map<String, String> context)
            throws KmsException, IOException {
        return generateDataKeys(key, count, context, null);
    }

    /** As {@link #generateDataKeys(String, int, Map)} with data keys of {@code bytes} bytes. */
    public List<DataKey> generateDataKeys(String key, int count, Map<String, String> context, int bytes)
            throws KmsException, IOException {
        return generateDataKeys(key, count, context, Integer.valueOf(bytes));
    }

    private List<DataKey> generateDataKeys(String key, int count, Map<String, String> context, Integer bytes)
            throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Reply r = call(KMS + "GenerateDataKeys", "key", key, "count", count, "context", wireContext(context),
                "bytes", bytes);
        String name = r.string("key");
        int version = r.int32("version");
        List<DataKey> keys = new ArrayList<>();
        for (Reply k : r.objects("keys")) {
            keys.add(new DataKey(name, version, k.bytes("plaintext"), k.bytes("ciphertext")));
        }
        return List.copyOf(keys);
    }

    /**
     * Encrypts a small secret (the daemon allows at most 65,536 bytes) under the primary
     * version of {@code key} ({@code Kms.Encrypt}). The envelope names key and version
     * and is authenticated together with the context.
     *
     * @param context bound to the ciphertext; null for none
     * @throws KeyNotFoundException      no such key
     * @throws InvalidKeyUsageException  the key is not an ENCRYPT key
     * @throws InvalidParameterException e.g. too large, or a required context key missing
     * @throws KmsException              any other error of the IDL
     */
    public Ciphertext encrypt(String key, byte[] plaintext, Map<String, String> context)
            throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(plaintext, "plaintext");
        Reply r = call(KMS + "Encrypt", "key", key, "plaintext", base64(plaintext), "context", wireContext(context));
        return new Ciphertext(r.string("key"), r.int32("version"), r.bytes("ciphertext"));
    }

    /**
     * Decrypts a ciphertext envelope made by {@link #encrypt} or a data key's ciphertext
     * ({@code Kms.Decrypt}); the envelope names its key and version, and any ENABLED version
     * decrypts, not only the primary.
     *
     * @param context the context given at encryption; null for none
     * @throws DecryptionFailedException    malformed or tampered envelope, or a different
     *                                      context (deliberately indistinguishable)
     * @throws KeyVersionUnusableException  the version's state forbids decryption
     * @throws KmsException                 any other error of the IDL
     */
    public Plaintext decrypt(byte[] ciphertext, Map<String, String> context) throws KmsException, IOException {
        Objects.requireNonNull(ciphertext, "ciphertext");
        Reply r = call(KMS + "Decrypt", "ciphertext", base64(ciphertext), "context", wireContext(context));
        return new Plaintext(r.string("key"), r.int32("version"), r.bytes("plaintext"));
    }

    /**
     * Decrypts up to 10,000 envelopes with one context in one round trip
     * ({@code Kms.DecryptBatch}). An entry that fails is a {@link DecryptResult.Failure}
     * in its place and does not fail the others.
     *
     * @param context the context given at encryption; null for none
     * @return one result per envelope, in order (unmodifiable)
     * @throws KmsException when the call as a whole is refused (e.g. too many entries,
     *                      permission denied)
     * @throws IOException  on transport failure, or when the reply has a different number
     *                      of entries than were sent
     */
    public List<DecryptResult> decryptBatch(List<byte[]> ciphertexts, Map<String, String> context)
            throws KmsException, IOException {
        Objects.requireNonNull(ciphertexts, "ciphertexts");
        List<String> encoded = new ArrayList<>(ciphertexts.size());
        for (byte[] c : ciphertexts) {
            encoded.add(base64(Objects.requireNonNull(c, "ciphertext")));
        }
        Reply r = call(KMS + "DecryptBatch", "ciphertexts", encoded, "context", wireContext(context));
        List<Reply> entries = r.objects("results");
        if (entries.size() != ciphertexts.size()) {
            throw new IOException("malformed reply to " + KMS + "DecryptBatch: " + entries.size()
                    + " results for " + ciphertexts.size() + " ciphertexts");
        }
        List<DecryptResult> results = new ArrayList<>(entries.size());
        for (Reply e : entries) {
            String error = e.optString("error");
            if (error != null) {
                String message = e.optString("message");
                results.add(new DecryptResult.Failure(error, message == null ? error : message,
                        e.optString("key"), e.optInt32("version")));
            } else {
                results.add(new Plaintext(e.string("key"), e.int32("version"), e.bytes("plaintext")));
            }
        }
        return List.copyOf(results);
    }

    /**
     * Signs {@code message} with the primary version of {@code key} ({@code Kms.Sign}
     * with {@code message}); the daemon hashes it as the key's algorithm prescribes.
     *
     * @throws InvalidKeyUsageException the key is not a SIGN key
     * @throws KmsException             any other error of the IDL
     */
    public Signature sign(String key, byte[] message) throws KmsException, IOException {
        Objects.requireNonNull(message, "message");
        return sign(key, "message", message);
    }

    /**
     * Signs a digest the caller computed with the algorithm's hash (SHA-256 for
     * {@code EC_P256_SHA256} and {@code RSA_3072_PSS_SHA256}, SHA-384 for
     * {@code EC_P384_SHA384}) ({@code Kms.Sign} with {@code digest}). Not for Ed25519,
     * which signs messages only.
     *
     * @throws InvalidKeyUsageException for an Ed25519 key, or a key that is not SIGN
     * @throws InvalidParameterException when the digest has the wrong length
     */
    public Signature signDigest(String key, byte[] digest) throws KmsException, IOException {
        Objects.requireNonNull(digest, "digest");
        return sign(key, "digest", digest);
    }

    private Signature sign(String key, String field, byte[] data) throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Reply r = call(KMS + "Sign", "key", key, field, base64(data));
        return new Signature(r.string("key"), r.int32("version"), r.string("algorithm"), r.bytes("signature"));
    }

    /**
     * Verifies a signature over {@code message} made by version {@code version} of
     * {@code key} ({@code Kms.Verify} with {@code message}).
     *
     * @return true when the signature is valid; false when it is not (a wrong signature
     *         is an answer, not an error)
     * @throws KeyVersionNotFoundException no such version
     * @throws KmsException                any other error of the IDL
     */
    public boolean verify(String key, int version, byte[] signature, byte[] message) throws KmsException, IOException {
        Objects.requireNonNull(message, "message");
        return verify(key, version, signature, "message", message);
    }

    /**
     * As {@link #verify(String, int, byte[], byte[])} over a digest the caller computed
     * ({@code Kms.Verify} with {@code digest}); not for Ed25519.
     */
    public boolean verifyDigest(String key, int version, byte[] signature, byte[] digest)
            throws KmsException, IOException {
        Objects.requireNonNull(digest, "digest");
        return verify(key, version, signature, "digest", digest);
    }

    private boolean verify(String key, int version, byte[] signature, String field, byte[] data)
            throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(signature, "signature");
        Reply r = call(KMS + "Verify", "key", key, "version", version, "signature", base64(signature),
                field, base64(data));
        return r.bool("valid");
    }

    /**
     * The public key of the primary version of a SIGN key ({@code Kms.GetPublicKey}).
     *
     * @throws InvalidKeyUsageException the key is not a SIGN key
     * @throws KmsException             any other error of the IDL
     */
    public PublicKeyInfo getPublicKey(String key) throws KmsException, IOException {
        return getPublicKey(key, null);
    }

    /**
     * The public key of version {@code version} of a SIGN key; PENDING versions are
     * published too, so verifiers can learn a key before its first signature.
     *
     * @throws KeyVersionNotFoundException no such version
     */
    public PublicKeyInfo getPublicKey(String key, int version) throws KmsException, IOException {
        return getPublicKey(key, Integer.valueOf(version));
    }

    private PublicKeyInfo getPublicKey(String key, Integer version) throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Reply r = call(KMS + "GetPublicKey", "key", key, "version", version);
        return new PublicKeyInfo(r.string("key"), r.int32("version"), r.string("algorithm"), r.string("pem"));
    }

    /**
     * The public keys of every verifiable version (ENABLED or PENDING) of a SIGN key
     * ({@code Kms.GetPublicKeys}), so that a verifier can accept signatures of older
     * versions and learn a PENDING version before its first signature.
     *
     * @throws InvalidKeyUsageException the key is not a SIGN key
     * @throws KmsException             any other error of the IDL
     */
    public PublicKeys getPublicKeys(String key) throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Reply r = call(KMS + "GetPublicKeys", "key", key);
        List<PublicKeys.Version> versions = new ArrayList<>();
        for (Reply v : r.objects("versions")) {
            versions.add(new PublicKeys.Version(v.int32("version"), v.string("state"), v.bool("primary"),
                    v.string("pem")));
        }
        return new PublicKeys(r.string("key"), r.string("algorithm"), versions);
    }

    /**
     * The CA certificates of every verifiable version (ENABLED or PENDING) of a
     * CERT_AUTHORITY key ({@code Kms.GetCaCertificates}): what relying parties should trust.
     *
     * @throws InvalidKeyUsageException the key is not a CERT_AUTHORITY key
     * @throws KmsException             any other error of the IDL
     */
    public CaCertificates getCaCertificates(String key) throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Reply r = call(KMS + "GetCaCertificates", "key", key);
        List<CaCertificates.Version> versions = new ArrayList<>();
        for (Reply v : r.objects("certificates")) {
            versions.add(new CaCertificates.Version(v.int32("version"), v.string("state"), v.bool("primary"),
                    v.string("pem"), v.bool("intermediate"), v.strings("chain"), v.string("root")));
        }
        return new CaCertificates(r.string("key"), r.string("algorithm"), versions, r.string("pem"),
                r.int32sOrEmpty("awaiting_certificate"));
    }

    /**
     * Has a CERT_AUTHORITY key sign a PKCS#10 request ({@code Kms.IssueCertificate}).
     *
     * @param csr        the request, PEM
     * @param ttlSeconds validity in seconds, or null for the daemon's default (24 h)
     * @param profile    "server", "client" or "both", or null for server
     * @throws CertificateRefusedException the request was refused; {@link CertificateRefusedException#reason()} says why
     * @throws KmsException                any other error of the IDL
     */
    public IssuedCertificate issueCertificate(String key, String csr, Long ttlSeconds, String profile)
            throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(csr, "csr");
        Reply r = call(KMS + "IssueCertificate", "key", key, "csr", csr, "ttl_seconds", ttlSeconds, "profile", profile);
        return new IssuedCertificate(r.string("key"), r.int32("version"), r.string("certificate"),
                r.string("ca_certificate"), r.string("serial"), r.string("subject"), r.strings("sans"),
                java.time.Instant.parse(r.string("not_before")), java.time.Instant.parse(r.string("not_after")),
                r.string("profile"), r.string("ca_chain"));
    }

    /**
     * The current CRL of each version of a CERT_AUTHORITY key that may have certificates in
     * use ({@code Kms.GetCrl}), signed inside the enclave by that version.
     *
     * @throws InvalidKeyUsageException the key is not a CERT_AUTHORITY key
     */
    public CertificateRevocationLists getCrl(String key) throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Reply r = call(KMS + "GetCrl", "key", key);
        List<CertificateRevocationLists.Crl> crls = new ArrayList<>();
        for (Reply c : r.objects("crls")) {
            crls.add(new CertificateRevocationLists.Crl(c.int32("version"), c.int64("number"),
                    c.instant("this_update"), c.instant("next_update"), c.int32("revoked"), c.string("pem")));
        }
        return new CertificateRevocationLists(r.string("key"), crls, r.string("pem"));
    }

    /**
     * Creates a CERT_AUTHORITY key that is an intermediate CA ({@code Admin.CreateKey} with
     * {@code ca_intermediate}): its versions get certificates from an external root through
     * {@link #getCaCsr} and {@link #importCaCertificate}, never self-signed ones.
     *
     * @param algorithm null for the default (EC_P256_SHA256)
     */
    public KeyDescription createIntermediateCaKey(String name, String algorithm) throws KmsException, IOException {
        Objects.requireNonNull(name, "name");
        Reply r = call(ADMIN + "CreateKey", "name", name, "purpose", "CERT_AUTHORITY", "algorithm", algorithm,
                "ca_intermediate", true);
        return keyDescription(r.object("key"));
    }

    /**
     * The PKCS#10 request of a version of an intermediate CA key, signed inside the enclave
     * ({@code Admin.GetCaCsr}), for an external root to sign.
     *
     * @param version null for the key's latest version
     * @param subject RFC 4514 DN, or null for {@code O=enclave-kms,CN=<key> v<version>}
     * @return the request, PEM
     */
    public String getCaCsr(String key, Integer version, String subject) throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        return call(ADMIN + "GetCaCsr", "key", key, "version", version, "subject", subject).string("csr");
    }

    /**
     * Stores the certificate an external root signed for a version of an intermediate CA key
     * ({@code Admin.ImportCaCertificate}).
     *
     * @param certificateChain PEM: the version's certificate, then its issuers up to and including the root
     * @return the subject of the version's certificate
     * @throws InvalidParameterException the chain does not fit the version (the message says how)
     */
    public String importCaCertificate(String key, int version, String certificateChain)
            throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(certificateChain, "certificateChain");
        return call(ADMIN + "ImportCaCertificate", "key", key, "version", version, "certificate_chain",
                certificateChain).string("subject");
    }

    /**
     * Revokes a certificate a CERT_AUTHORITY key issued ({@code Admin.RevokeCertificate}).
     *
     * @param serial hex, as {@link IssuedCertificate#serial()}
     * @param reason an RFC 5280 CRLReason name (e.g. {@code keyCompromise}), or null for unspecified
     * @throws CertificateNotFoundException no such certificate among the caller's CA keys
     */
    public RevokedCertificate revokeCertificate(String serial, String reason) throws KmsException, IOException {
        Objects.requireNonNull(serial, "serial");
        Reply r = call(ADMIN + "RevokeCertificate", "serial", serial, "reason", reason);
        return new RevokedCertificate(r.string("serial"), r.string("key"), r.int32("version"), r.string("reason"),
                r.instant("revoked"), r.instant("not_after"), r.bool("already_revoked"));
    }

    /**
     * Certifies the primary version of a TLS_SERVER or TLS_CLIENT key with a CERT_AUTHORITY
     * key ({@code Kms.IssueTlsCertificate}); the daemon makes the request inside the enclave
     * and stores the certificate on the token beside the private key.
     *
     * @param sans       {@code DNS:name} or {@code IP:address}; each must be allowed by a grant's san patterns
     * @param commonName the subject's CN, or null for the first SAN's name
     * @param ttlSeconds validity in seconds, or null for the daemon's default (24 h)
     * @throws CertificateRefusedException the CA refused; {@link CertificateRefusedException#reason()} says why
     * @throws InvalidKeyUsageException    key is not a TLS key, or ca not a CERT_AUTHORITY key
     */
    public IssuedTlsCertificate issueTlsCertificate(String key, String ca, List<String> sans, String commonName,
                                                    Long ttlSeconds) throws KmsException, IOException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(ca, "ca");
        Reply r = call(KMS + "IssueTlsCertificate", "key", key, "ca", ca, "sans",
                sans == null || sans.isEmpty() ? null : List.copyOf(sans), "common_name", commonName,
                "ttl_seconds", ttlSeconds);
        IssuedCertificate c = new IssuedCertificate(r.string("ca"), r.int32("ca_version"), r.string("certificate"),
                r.string("ca_certificate"), r.string("serial"), r.string("subject"), r.strings("sans"),
                java.time.Instant.parse(r.string("not_before")), java.time.Instant.parse(r.string("not_after")),
                r.string("profile"), r.string("ca_chain"));
        return new IssuedTlsCertificate(r.string("key"), r.int32("version"), c, r.string("alias"),
                r.string("pkcs11_uri"));
    }

    /**
     * Moves an envelope to the primary version of the key it names
     * ({@code Kms.ReEncrypt}); the plaintext never leaves the daemon. The new envelope is
     * bound to the same context.
     *
     * @see #reEncrypt(byte[], Map, String, Map)
     */
    public ReEncrypted reEncrypt(byte[] ciphertext, Map<String, String> context) throws KmsException, IOException {
        return reEncrypt(ciphertext, context, null, null);
    }

    /**
     * Moves an envelope to the primary version of {@code targetKey} (or of the key it
     * names, when null) inside the daemon ({@code Kms.ReEncrypt}): the plaintext never
     * leaves it. An envelope already on the target's primary version comes back unchanged
     * with {@link ReEncrypted#rewrapped()} false. A REVOKED source version is usable here
     * only by a caller holding the re-encryption grant.
     *
     * @param context    the context the envelope was made with; null for none
     * @param targetKey  the key to move to; null for the envelope's own key
     * @param newContext the context to bind the new envelope to; null to keep {@code context}
     * @throws DecryptionFailedException    malformed or tampered envelope, or a different context
     * @throws KeyVersionUnusableException  the source version's state forbids it (e.g. REVOKED
     *                                      without the re-encryption grant)
     * @throws KeyVersionDestroyedException the source version was destroyed
     * @throws InvalidKeyUsageException     the target is not an ENCRYPT key
     * @throws KmsException                 any other error of the IDL
     */
    public ReEncrypted reEncrypt(byte[] ciphertext, Map<String, String> context, String targetKey,
                                 Map<String, String> newContext) throws KmsException, IOException {
        Objects.requireNonNull(ciphertext, "ciphertext");
        Reply r = call(KMS + "ReEncrypt", "ciphertext", base64(ciphertext), "context", wireContext(context),
                "key", targetKey, "new_context", wireContext(newContext));
        return reEncrypted(r);
    }

    private static ReEncrypted reEncrypted(Reply r) throws IOException {
        return new ReEncrypted(r.string("key"), r.int32("version"), r.string("source_key"), r.int32("source_version"),
                r.bool("rewrapped"), r.bytes("ciphertext"));
    }

    /**
     * {@link #reEncrypt(byte[], Map, String, Map)} for up to 10,000 envelopes with one
     * context and one target in one round trip ({@code Kms.ReEncryptBatch}). Each new
     * envelope is bound to the same context as before. An entry that fails is a
     * {@link ReEncryptResult.Failure} in its place and does not fail the others.
     *
     * @param context   the context the envelopes were made with; null for none
     * @param targetKey the key to move to; null for each envelope's own key
     * @return one result per envelope, in order (unmodifiable)
     * @throws KmsException when the call as a whole is refused (e.g. too many entries,
     *                      permission denied, no such target key)
     * @throws IOException  on transport failure, or when the reply has a different number
     *                      of entries than were sent
     */
    public List<ReEncryptResult> reEncryptBatch(List<byte[]> ciphertexts, Map<String, String> context,
                                                String targetKey) throws KmsException, IOException {
        Objects.requireNonNull(ciphertexts, "ciphertexts");
        List<String> encoded = new ArrayList<>(ciphertexts.size());
        for (byte[] c : ciphertexts) {
            encoded.add(base64(Objects.requireNonNull(c, "ciphertext")));
        }
        Reply r = call(KMS + "ReEncryptBatch", "ciphertexts", encoded, "context", wireContext(context),
                "key", targetKey);
        List<Reply> entries = r.objects("results");
        if (entries.size() != ciphertexts.size()) {
            throw new IOException("malformed reply to " + KMS + "ReEncryptBatch: " + entries.size()
                    + " results for " + ciphertexts.size() + " ciphertexts");
        }
        List<ReEncryptResult> results = new ArrayList<>(entries.size());
        for (Reply e : entries) {
            String error = e.optString("error");
            if (error != null) {
                String message = e.optString("message");
                results.add(new ReEncryptResult.Failure(error, message == null ? error : message,
                        e.optString("source_key"), e.optInt32("source_version"), e.optString("key"),
                        e.optInt32("version")));
            } else {
                results.add(reEncrypted(e));
            }
        }
        return List.copyOf(results);
    }

    /**
     * The daemon's health ({@code Kms.Status}): version, uptime, enclave, key counts and
     * the registry/hardware mismatches found at startup.
     */
    public Status status() throws KmsException, IOException {
        Reply r = call(KMS + "Status");
        Reply e = r.object("enclave");
        return new Status(r.string("version"), r.int64("uptime_seconds"),
                new Status.Enclave(e.string("kind"), e.string("label"), e.string("manufacturer"),
                        e.string("model"), e.string("serial")),
                r.int64("keys"), r.int64("key_versions"), r.strings("orphans"), r.strings("missing"));
    }

    // ---------------------------------------------------------------- dev.enclavekms.Admin

    /**
     * Creates a key with the default algorithm for its purpose ({@code AES_256_GCM} for
     * ENCRYPT, {@code EC_P256_SHA256} for SIGN) and no required context.
     *
     * @see #createKey(String, String, String, String, List)
     */
    public KeyDescription createKey(String name, String purpose) throws KmsException, IOException {
        return createKey(name, purpose, null, null, null);
    }

    /**
     * Creates a key and its first version inside the enclave ({@code Admin.CreateKey}).
     * Needs an admin grant.
     *
     * @param purpose         {@code ENCRYPT} or {@code SIGN}
     * @param algorithm       null for the purpose's default
     * @param description     null for none
     * @param requiredContext context keys every Encrypt/Decrypt call must carry; null or
     *                        empty for none
     * @return the new key as the daemon recorded it
     * @throws KeyAlreadyExistsException a key of that name exists
     * @throws InvalidParameterException e.g. unknown purpose or algorithm, bad name
     * @throws PermissionDeniedException no admin grant
     */
    public KeyDescription createKey(String name, String purpose, String algorithm, String description,
                                    List<String> requiredContext) throws KmsException, IOException {
        return createKey(name, purpose, algorithm, description, requiredContext, null, null);
    }

    /**
     * As {@link #createKey(String, String, String, String, List)}, with the key's lifecycle
     * policy.
     *
     * @param rotationPeriod  rotate automatically this often (the daemon requires at least an
     *                        hour); null or zero: only on demand (and at the usage limit)
     * @param destroyWaitDays the waiting period before a scheduled destruction happens (the
     *                        daemon allows 7 to 3650 days); null for the daemon's default (30)
     * @throws IllegalArgumentException when {@code rotationPeriod} is negative or not whole seconds
     * @throws InvalidParameterException e.g. a period or waiting time out of the daemon's range
     */
    public KeyDescription createKey(String name, String purpose, String algorithm, String description,
                                    List<String> requiredContext, Duration rotationPeriod, Integer destroyWaitDays)
            throws KmsException, IOException {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(purpose, "purpose");
        List<String> required = requiredContext == null || requiredContext.isEmpty()
                ? null : List.copyOf(requiredContext);
        Long period = rotationPeriod == null || rotationPeriod.isZero() ? null : seconds(rotationPeriod);
        Reply r = call(ADMIN + "CreateKey", "name", name, "purpose", purpose, "algorithm", algorithm,
                "description", description, "required_context", required, "rotation_period_seconds", period,
                "destroy_wait_days", destroyWaitDays);
        return keyDescription(r.object("key"));
    }

    /**
     * Changes a key's lifecycle policy ({@code Admin.UpdateKeyPolicy}); what is null stays
     * as it is.
     *
     * @param rotationPeriod  the new automatic rotation period; {@link Duration#ZERO} turns
     *                        automatic rotation off; null leaves it
     * @param destroyWaitDays the new destruction waiting period in days; null leaves it.
     *                        Destructions already scheduled keep their date.
     * @return the key after the change
     * @throws IllegalArgumentException  when {@code rotationPeriod} is negative or not whole seconds
     * @throws InvalidParameterException a value out of the daemon's range
     * @throws KeyNotFoundException      no such key
     */
    public KeyDescription updateKeyPolicy(String name, Duration rotationPeriod, Integer destroyWaitDays)
            throws KmsException, IOException {
        Objects.requireNonNull(name, "name");
        Long period = rotationPeriod == null ? null : seconds(rotationPeriod);
        return keyDescription(call(ADMIN + "UpdateKeyPolicy", "name", name, "rotation_period_seconds", period,
                "destroy_wait_days", destroyWaitDays).object("key"));
    }

    /**
     * Creates a new version inside the enclave and makes it primary
     * ({@code Admin.RotateKey}). Older ENABLED versions keep decrypting and verifying,
     * but no longer encrypt or sign.
     *
     * @return the key after the rotation; its {@link KeyDescription#primaryVersion()} is the new version
     */
    public KeyDescription rotateKey(String name) throws KmsException, IOException {
        return rotateKey(name, false);
    }

    /**
     * As {@link #rotateKey(String)}; with {@code pending} (SIGN keys only) the new version
     * is PENDING: its public key is published ({@link #getPublicKeys}) while the old
     * primary keeps signing until {@link #promoteKeyVersion}.
     *
     * @throws InvalidKeyUsageException {@code pending} for a key that is not a SIGN key
     */
    public KeyDescription rotateKey(String name, boolean pending) throws KmsException, IOException {
        Objects.requireNonNull(name, "name");
        // "Not pending" has one spelling on the wire: the parameter is not sent.
        return keyDescription(call(ADMIN + "RotateKey", "name", name, "pending", pending ? Boolean.TRUE : null)
                .object("key"));
    }

    /**
     * Makes a PENDING version ENABLED and primary ({@code Admin.PromoteKeyVersion}).
     *
     * @throws InvalidStateTransitionException the version is not PENDING
     * @throws KeyVersionNotFoundException     no such version
     */
    public KeyDescription promoteKeyVersion(String name, int version) throws KmsException, IOException {
        return changeVersion("PromoteKeyVersion", name, version);
    }

    /**
     * Makes a DISABLED version ENABLED again ({@code Admin.EnableKeyVersion}).
     *
     * @throws InvalidStateTransitionException the version is not DISABLED
     */
    public KeyDescription enableKeyVersion(String name, int version) throws KmsException, IOException {
        return changeVersion("EnableKeyVersion", name, version);
    }

    /**
     * Makes an ENABLED version DISABLED ({@code Admin.DisableKeyVersion}); reversible with
     * {@link #enableKeyVersion}. Its ciphertexts and signatures are refused meanwhile.
     *
     * @throws InvalidStateTransitionException the version is not ENABLED, or is the primary
     */
    public KeyDescription disableKeyVersion(String name, int version) throws KmsException, IOException {
        return changeVersion("DisableKeyVersion", name, version);
    }

    /**
     * Revokes an ENABLED or DISABLED version ({@code Admin.RevokeKeyVersion}).
     * <strong>Irreversible</strong>: it no longer decrypts or verifies for ordinary
     * callers; {@link #reEncrypt} by a caller with the re-encryption grant may still use
     * it, to migrate data after a compromise. Not the primary: rotate first.
     *
     * @throws InvalidStateTransitionException the version's state does not allow it, or it is the primary
     */
    public KeyDescription revokeKeyVersion(String name, int version) throws KmsException, IOException {
        return changeVersion("RevokeKeyVersion", name, version);
    }

    /**
     * Schedules the destruction of a version after a waiting period
     * ({@code Admin.ScheduleKeyVersionDestruction}). Until then it is DESTROY_SCHEDULED:
     * unusable, and {@link #cancelKeyVersionDestruction} brings it back as DISABLED. After
     * the period the hardware object is destroyed and what the version protected is lost.
     * Not the primary version.
     *
     * @param waitDays the waiting period in days; null for the key's own (see
     *                 {@link KeyDescription#destroyWaitDays()}); never below the daemon's minimum of 7
     * @return the key after the change; the version's {@link KeyVersionInfo#destroyAt()} says when
     * @throws InvalidStateTransitionException the version is DESTROYED or already scheduled, or is the primary
     */
    public KeyDescription scheduleKeyVersionDestruction(String name, int version, Integer waitDays)
            throws KmsException, IOException {
        Objects.requireNonNull(name, "name");
        return keyDescription(call(ADMIN + "ScheduleKeyVersionDestruction", "name", name, "version", version,
                "wait_days", waitDays).object("key"));
    }

    /**
     * Cancels a scheduled destruction ({@code Admin.CancelKeyVersionDestruction}): the
     * version becomes DISABLED, never straight ENABLED.
     *
     * @throws InvalidStateTransitionException the version is not DESTROY_SCHEDULED
     */
    public KeyDescription cancelKeyVersionDestruction(String name, int version) throws KmsException, IOException {
        return changeVersion("CancelKeyVersionDestruction", name, version);
    }

    private KeyDescription changeVersion(String method, String name, int version) throws KmsException, IOException {
        Objects.requireNonNull(name, "name");
        return keyDescription(call(ADMIN + method, "name", name, "version", version).object("key"));
    }

    private static long seconds(Duration d) {
        if (d.isNegative() || d.getNano() != 0) {
            throw new IllegalArgumentException("a duration must be a non-negative whole number of seconds: " + d);
        }
        return d.getSeconds();
    }

    /**
     * Every key the caller may see ({@code Admin.ListKeys}), in the daemon's order.
     *
     * @return the keys (unmodifiable)
     */
    public List<KeySummary> listKeys() throws KmsException, IOException {
        Reply r = call(ADMIN + "ListKeys");
        List<KeySummary> keys = new ArrayList<>();
        for (Reply k : r.objects("keys")) {
            keys.add(new KeySummary(k.string("name"), k.string("purpose"), k.string("algorithm"),
                    k.int32("primary_version"), k.int32("versions")));
        }
        return List.copyOf(keys);
    }

    /**
     * A key's metadata and versions ({@code Admin.DescribeKey}).
     *
     * @throws KeyNotFoundException no such key
     */
    public KeyDescription describeKey(String name) throws KmsException, IOException {
        Objects.requireNonNull(name, "name");
        return keyDescription(call(ADMIN + "DescribeKey", "name", name).object("key"));
    }

    private static KeyDescription keyDescription(Reply k) throws IOException {
        List<KeyVersionInfo> versions = new ArrayList<>();
        for (Reply v : k.objects("versions")) {
            versions.add(new KeyVersionInfo(v.int32("version"), v.string("state"), v.instant("created"),
                    v.instant("state_changed"), v.optInstant("destroy_at"), v.int64("encryptions"),
                    v.string("object_id"), v.optString("pkcs11_uri")));
        }
        Long period = k.optInt64("rotation_period_seconds");
        return new KeyDescription(k.string("name"), k.string("purpose"), k.string("algorithm"),
                k.string("description"), k.instant("created"), k.int32("primary_version"),
                k.strings("required_context"), period == null ? null : Duration.ofSeconds(period),
                k.optInstant("next_rotation"), k.int32("destroy_wait_days"), versions);
    }

    // ----------------------------------------------------------------- ephemeral key sessions

    /** Largest chunk the daemon accepts in one {@link #putSessionMaterial} call. */
    public static final int MAX_SESSION_CHUNK = 1024 * 1024;

    /**
     * Opens an ephemeral key session for this connection's tenant ({@code Kms.OpenSession}).
     *
     * @param ttl how long it lives; null for the daemon's default (1 hour)
     * @throws InvalidParameterException    the ttl is longer than the daemon allows
     * @throws SessionLimitExceededException the tenant has the most open sessions allowed
     */
    public KeySession openSession(Duration ttl) throws KmsException, IOException {
        Reply r = ttl == null ? call(KMS + "OpenSession") : call(KMS + "OpenSession", "ttl_seconds", ttl.toSeconds());
        return new KeySession(r.string("session"), r.string("tenant"), r.instant("expires"), r.int64("ttl_seconds"));
    }

    /**
     * Appends one chunk (at most {@link #MAX_SESSION_CHUNK} bytes) to blob {@code name}.
     *
     * @param offset the blob's size so far
     * @param last   seals the blob: it can be read, and never changed
     * @return the blob's size after this chunk
     */
    public long putSessionMaterial(String session, String name, byte[] data, long offset, boolean last)
            throws KmsException, IOException {
        Objects.requireNonNull(session, "session");
        Objects.requireNonNull(name, "name");
        return call(KMS + "PutSessionMaterial", "session", session, "name", name, "data", base64(data),
                "offset", offset, "final", last).int64("size");
    }

    /**
     * Uploads all of {@code in} as blob {@code name} in chunks of {@link #MAX_SESSION_CHUNK}
     * and seals it; memory stays at one chunk.
     *
     * @return the blob's size
     */
    public long putSessionMaterial(String session, String name, java.io.InputStream in)
            throws KmsException, IOException {
        byte[] chunk = new byte[MAX_SESSION_CHUNK];
        byte[] next = new byte[MAX_SESSION_CHUNK];
        int n = in.readNBytes(chunk, 0, chunk.length);
        long offset = 0;
        while (true) {
            int m = n == chunk.length ? in.readNBytes(next, 0, next.length) : 0;
            boolean last = m == 0;
            byte[] data = n == chunk.length ? chunk : java.util.Arrays.copyOf(chunk, n);
            offset = putSessionMaterial(session, name, data, offset, last);
            if (last) {
                return offset;
            }
            byte[] t = chunk;
            chunk = next;
            next = t;
            n = m;
        }
    }

    /**
     * Streams sealed blob {@code name} into {@code out}, one chunk per reply, checking that
     * the chunks are contiguous and complete.
     *
     * @return the blob's size
     * @throws SessionMaterialNotFoundException no such sealed blob
     */
    public long getSessionMaterial(String session, String name, java.io.OutputStream out)
            throws KmsException, IOException {
        Objects.requireNonNull(session, "session");
        Objects.requireNonNull(name, "name");
        long[] got = {0, -1};
        try {
            varlink.callMore(KMS + "GetSessionMaterial", VarlinkClient.params("session", session, "name", name), p -> {
                try {
                    Reply r = new Reply(KMS + "GetSessionMaterial", p);
                    if (r.int64("offset") != got[0]) {
                        throw new IOException("GetSessionMaterial: chunk at offset " + r.int64("offset")
                                + ", expected " + got[0]);
                    }
                    byte[] data = Base64.getDecoder().decode(r.string("data"));
                    out.write(data);
                    got[0] += data.length;
                    got[1] = r.int64("size");
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        } catch (VarlinkError e) {
            throw KmsErrors.from(e);
        } catch (java.io.UncheckedIOException e) {
            throw e.getCause();
        }
        if (got[0] != got[1]) {
            throw new IOException("GetSessionMaterial: got " + got[0] + " of " + got[1] + " bytes");
        }
        return got[0];
    }

    /** Reads a whole (small) sealed blob into memory. */
    public byte[] getSessionMaterial(String session, String name) throws KmsException, IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        getSessionMaterial(session, name, out);
        return out.toByteArray();
    }

    /** Ends the session: its key is destroyed, then its material. */
    public void closeSession(String session) throws KmsException, IOException {
        call(KMS + "CloseSession", "session", Objects.requireNonNull(session, "session"));
    }

    /**
     * Ends every session of {@code tenant} ({@code Admin.RevokeSessions}; another tenant's
     * needs a grant with {@code all_tenants}).
     *
     * @return how many sessions were ended
     */
    public long revokeSessions(String tenant) throws KmsException, IOException {
        return call(ADMIN + "RevokeSessions", "tenant", Objects.requireNonNull(tenant, "tenant")).int64("revoked");
    }

    // ----------------------------------------------------------------- identity, tokens, policy

    /**
     * Presents a bearer token ({@code Kms.Authenticate}): from now on this connection acts
     * as the token's identity, with its tenant and grants, and no longer as the process's
     * unix user. Once per connection.
     *
     * @throws PermissionDeniedException the token is malformed, unknown, wrong, revoked or
     *                                   expired (the connection keeps its identity), or the
     *                                   connection already presented one
     */
    public Authenticated authenticate(String token) throws KmsException, IOException {
        Objects.requireNonNull(token, "token");
        Reply r = call(KMS + "Authenticate", "token", token);
        return new Authenticated(r.string("identity"), r.string("tenant"), r.string("token_id"), r.instant("expires"));
    }

    /**
     * Creates a bearer token for a token identity ({@code Admin.CreateToken}; needs a
     * grant with {@code token_admin}). The token is in the result and nowhere else.
     *
     * @param ttl how long it is valid (the daemon allows 1 minute to 366 days); null for its default, 90 days
     */
    public IssuedToken createToken(String identity, Duration ttl) throws KmsException, IOException {
        Objects.requireNonNull(identity, "identity");
        Reply r = call(ADMIN + "CreateToken", "identity", identity, "ttl_seconds", ttl == null ? null : seconds(ttl));
        return new IssuedToken(r.string("token"), tokenInfo(r.object("info")));
    }

    /** The tokens the caller may manage ({@code Admin.ListTokens}), revoked and expired ones included. */
    public List<TokenInfo> listTokens() throws KmsException, IOException {
        List<TokenInfo> out = new ArrayList<>();
        for (Reply t : call(ADMIN + "ListTokens").objects("tokens")) out.add(tokenInfo(t));
        return List.copyOf(out);
    }

    /**
     * Revokes a token for good ({@code Admin.RevokeToken}); connections that presented it
     * are refused from their next call.
     *
     * @throws InvalidParameterException no token with this id (among those the caller may manage)
     */
    public TokenInfo revokeToken(String id) throws KmsException, IOException {
        Objects.requireNonNull(id, "id");
        return tokenInfo(call(ADMIN + "RevokeToken", "id", id).object("info"));
    }

    private static TokenInfo tokenInfo(Reply t) throws IOException {
        return new TokenInfo(t.string("id"), t.string("identity"), t.string("tenant"), t.instant("created"),
                t.instant("expires"), t.optInstant("revoked"));
    }

    /**
     * Reads the daemon's policy file again and puts it in force ({@code Admin.ReloadPolicy}).
     *
     * @throws PolicyInvalidException the file has problems (each with its line); the policy in force stays
     */
    public PolicyStatus reloadPolicy() throws KmsException, IOException {
        Reply r = call(ADMIN + "ReloadPolicy");
        return new PolicyStatus(r.string("source"), r.optString("sha256"), r.int32("tenants"), r.int32("grants"),
                r.strings("warnings"));
    }

    /**
     * How the daemon's policy decides a call ({@code Admin.ExplainPolicy}), on the policy
     * alone (no key is looked up).
     *
     * @param identity {@code user:NAME}, {@code user:NAME,group:NAME}, {@code group:NAME} or {@code token:NAME}
     * @param method   as policies write it, e.g. {@code Kms.Decrypt}
     * @param key      the key's name, or null
     * @param purpose  the key's purpose ({@code ENCRYPT}, {@code SIGN}), or null for any
     * @param context  the call's context, or null
     */
    public PolicyExplanation explainPolicy(String identity, String method, String key, String purpose,
                                           Map<String, String> context) throws KmsException, IOException {
        Objects.requireNonNull(identity, "identity");
        Objects.requireNonNull(method, "method");
        Reply r = call(ADMIN + "ExplainPolicy", "identity", identity, "method", method, "key", key, "purpose", purpose,
                "context", wireContext(context));
        return new PolicyExplanation(r.bool("allowed"), r.optString("tenant"), r.optString("grant"),
                r.strings("explanation"));
    }

    // ----------------------------------------------------------------- the audit log (Admin)

    /**
     * The audit log's checkpoint signing key ({@code Admin.AuditPublicKey}): verify checkpoint
     * signatures with it ({@code kmsctl audit verify --public-key}).
     */
    public PublicKeyInfo auditPublicKey() throws KmsException, IOException {
        Reply r = call(ADMIN + "AuditPublicKey");
        return new PublicKeyInfo(r.string("key"), r.int32("version"), r.string("algorithm"), r.string("pem"));
    }

    /**
     * How the audit log shows {@code value} ({@code Admin.AuditHmac}):
     * {@code hmac-sha256:<hex>}, to search the log for a context value and the like.
     */
    public String auditHmac(String value) throws KmsException, IOException {
        Objects.requireNonNull(value, "value");
        return call(ADMIN + "AuditHmac", "value", value).string("hmac");
    }

    /** Has the daemon write a signed audit checkpoint now ({@code Admin.AuditCheckpoint}); returns it once durable. */
    public AuditCheckpoint auditCheckpoint() throws KmsException, IOException {
        Reply r = call(ADMIN + "AuditCheckpoint");
        return new AuditCheckpoint(r.int64("seq"), r.string("hash"), r.string("time"), r.string("file"));
    }

    // ----------------------------------------------------------------- org.varlink.service

    /** The implementation and the interfaces it serves ({@code org.varlink.service.GetInfo}). */
    public ServiceInfo getInfo() throws KmsException, IOException {
        Reply r = call(SERVICE + "GetInfo");
        return new ServiceInfo(r.string("vendor"), r.string("product"), r.string("version"), r.string("url"),
                r.strings("interfaces"));
    }

    /**
     * The varlink IDL of an interface the daemon serves
     * ({@code org.varlink.service.GetInterfaceDescription}).
     *
     * @param interfaceName fully qualified, e.g. {@code dev.enclavekms.Kms}
     * @throws KmsException {@code org.varlink.service.InterfaceNotFound} when not served
     */
    public String getInterfaceDescription(String interfaceName) throws KmsException, IOException {
        Objects.requireNonNull(interfaceName, "interfaceName");
        return call(SERVICE + "GetInterfaceDescription", "interface", interfaceName).string("description");
    }

    /** Closes the connection. Idempotent; a call blocked on another thread fails with IOException. */
    @Override
    public void close() throws IOException {
        varlink.close();
    }

    /** What {@link #watchRevocations} tells its caller. */
    public interface RevocationListener {
        /** The daemon confirmed the subscription: no revocation from now on is missed. */
        void subscribed();

        /** A version stopped being usable. */
        void revoked(Revocation revocation);
    }

    /**
     * Subscribes to {@code Kms.WatchRevocations} and blocks, calling {@code listener} on this
     * thread, until the stream ends (daemon shutdown, or this client fell too far behind) —
     * then it returns normally — or the connection fails or is {@link #close() closed}
     * (IOException). Use a connection of its own: the call holds it for as long as it runs.
     * After it returns or fails, assume revocations were missed.
     */
    public void watchRevocations(RevocationListener listener) throws KmsException, IOException {
        Objects.requireNonNull(listener, "listener");
        boolean[] first = {true};
        try {
            varlink.callMore(KMS + "WatchRevocations", Map.of(), p -> {
                if (first[0]) { // the first reply carries no event: the subscription is live
                    first[0] = false;
                    listener.subscribed();
                    return;
                }
                if (p.get("key") == null) {
                    return; // the final reply: the stream ended
                }
                Reply r = new Reply(KMS + "WatchRevocations", p);
                try {
                    listener.revoked(new Revocation(r.string("key"), r.int32("version"), r.string("state")));
                } catch (IOException malformed) {
                    throw new java.io.UncheckedIOException(malformed);
                }
            });
        } catch (VarlinkError e) {
            throw KmsErrors.from(e);
        } catch (java.io.UncheckedIOException e) {
            throw e.getCause();
        }
    }

    // -------------------------------------------------------------------------- plumbing

    private Reply call(String method, Object... keyValues) throws KmsException, IOException {
        try {
            return new Reply(method, varlink.call(method, VarlinkClient.params(keyValues)));
        } catch (VarlinkError e) {
            throw KmsErrors.from(e);
        }
    }

    private static String base64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    /** Null when there is no context, so that "none" has one spelling on the wire. */
    private static Map<String, String> wireContext(Map<String, String> context) {
        if (context == null || context.isEmpty()) {
            return null;
        }
        Map<String, String> copy = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : context.entrySet()) {
            copy.put(Objects.requireNonNull(e.getKey(), "context key"),
                    Objects.requireNonNull(e.getValue(), "context value"));
        }
        return copy;
    }
}
