package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.registry.CertificateRecord;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.RegistryException;
import dev.enclavekms.registry.RegistryStore;
import dev.enclavekms.registry.RevocationReason;
import dev.enclavekms.registry.VersionState;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.edec.EdECObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.sec.SECObjectIdentifiers;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.Extensions;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.PKCSException;

import java.io.IOException;
import java.io.StringReader;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.security.PublicKey;
import java.security.interfaces.RSAPublicKey;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * A certificate authority whose keys are CERT_AUTHORITY key versions in the enclave.
 * Each version of a root CA has a self-signed root certificate, made when it is first
 * needed (at key creation, or for a version a rotation made) and kept in {@link CaCertificates}.
 * {@link #issue} signs PKCS#10 requests with the primary version: the request's own
 * signature and key strength are checked first, the profile fixes key usages, serials
 * are 128 bits from the enclave's generator, and the signature is computed by the
 * enclave through {@link EnclaveContentSigner}.
 *
 * <p>Each SAN must match a {@code san} pattern of a grant that allows the call (docs/policy.md),
 * and the TTL the smaller of the daemon's and the grant's maximum.
 *
 * <p>A key created as an intermediate CA gets no self-signed roots: each version's request
 * ({@link #caCsr}) goes to an external root, and the signed certificate with its chain is
 * imported ({@link #importCaCertificate}); until then the version cannot issue. Every issued
 * serial is recorded in the registry before the certificate leaves, so that it can be
 * revoked ({@link #revoke}); each CA version publishes a CRL ({@link #crls}).
 */
public final class CertificateAuthority {
    private static final System.Logger LOG = System.getLogger(CertificateAuthority.class.getName());

    public static final Duration DEFAULT_TTL = Duration.ofHours(24);
    /** Longest TTL unless the daemon is configured otherwise: short-lived certificates rarely need revoking. */
    public static final Duration DEFAULT_MAX_TTL = Duration.ofHours(24);
    /** How long a root certificate is valid; the key's rotation, not this, normally retires it. */
    public static final Duration ROOT_VALIDITY = Duration.ofDays(3650);
    public static final int MAX_CSR_BYTES = 16 * 1024;
    public static final int MIN_RSA_BITS = 2048;
    /** Key types a subject may have: RSA of at least 2048 bits, P-256, P-384, Ed25519. */
    private static final Set<ASN1ObjectIdentifier> APPROVED_CURVES = Set.of(SECObjectIdentifiers.secp256r1,
            SECObjectIdentifiers.secp384r1);
    /** Backdating absorbs small clock differences between the CA and relying parties. */
    private static final Duration BACKDATE = Duration.ofMinutes(5);

    /** What an issued certificate may be used for. */
    public enum Profile {
        SERVER, CLIENT, BOTH;

        public static Profile parse(String s) throws KmsError {
            if (s == null) return SERVER;
            return switch (s) {
                case "server" -> SERVER;
                case "client" -> CLIENT;
                case "both" -> BOTH;
                default -> throw new KmsError.CertificateRefused(KmsError.CertificateRefused.Reason.BAD_PROFILE,
                        "profile: '" + s + "' is not one of server, client, both");
            };
        }
    }

    /**
     * One version's CA certificate.
     *
     * @param pem          the version's own certificate
     * @param chain        that certificate, then its issuers up to and including the root (one entry for a
     *                     self-signed root)
     * @param intermediate signed by an external root (imported), not self-signed
     */
    public record CaCertificate(int version, VersionState state, boolean primary, String pem, List<String> chain,
                                boolean intermediate) {
        public CaCertificate {
            chain = List.copyOf(chain);
        }

        /** The trust anchor: the self-signed certificate that ends the chain. */
        public String root() {
            return chain.getLast();
        }
    }

    /**
     * An issued certificate and the CA certificate that signed it.
     *
     * @param caChainPem the CA certificate and its issuers up to the root (what a TLS peer may send along)
     */
    public record Issued(String key, int version, String certificatePem, String caCertificatePem, BigInteger serial,
                         String subject, List<String> sans, Instant notBefore, Instant notAfter, Profile profile,
                         String caChainPem) { }

    /** A PKCS#10 request for an intermediate CA version, signed inside the enclave. */
    public record CaRequest(String key, int version, String subject, String csrPem) { }

    /** A revoked certificate; {@code alreadyRevoked} when an earlier call had revoked it (nothing changed). */
    public record Revocation(String serial, String key, int version, Instant revoked, RevocationReason reason,
                             Instant notAfter, boolean alreadyRevoked) { }

    private final Enclave enclave;
    private final RegistryStore registry;
    private final KeyHealth health;
    private final CaCertificates store;
    private final Clock clock;
    private final Duration maxTtl;
    private final Caller caller;
    private final RevocationLists crls;

    public CertificateAuthority(Enclave enclave, RegistryStore registry, KeyHealth health, CaCertificates store,
                                Clock clock, Duration maxTtl) {
        this(enclave, registry, health, store, clock, maxTtl, Caller.system(),
                new RevocationLists(enclave, registry, clock));
    }

    private CertificateAuthority(Enclave enclave, RegistryStore registry, KeyHealth health, CaCertificates store,
                                 Clock clock, Duration maxTtl, Caller caller, RevocationLists crls) {
        this.enclave = enclave;
        this.registry = registry;
        this.health = health;
        this.store = store;
        this.clock = clock;
        this.maxTtl = maxTtl;
        this.caller = caller;
        this.crls = crls;
    }

    /** The same CA acting for one call's caller: its tenant's keys only, under its grants. */
    public CertificateAuthority as(Caller caller) {
        return new CertificateAuthority(enclave, registry, health, store, clock, maxTtl, caller, crls);
    }

    /**
     * The CA certificates of every version a relying party should trust: ENABLED and
     * PENDING (a rotation publishes the new CA before it signs), primary first is not
     * promised — they come in version order. A version of a root CA without a certificate
     * gets its root now; a version of an intermediate CA awaiting its certificate is left
     * out (there is nothing to trust yet).
     */
    public List<CaCertificate> caCertificates(String keyName) throws KmsError {
        KeyRecord key = caKey(keyName);
        List<CaCertificate> out = new ArrayList<>();
        for (KeyVersion v : key.versions()) {
            if ((v.state() == VersionState.ENABLED || v.state() == VersionState.PENDING)
                    && health.refusal(v.objectId()).isEmpty()) {
                chain(key, v).ifPresent(chain -> out.add(new CaCertificate(v.version(), v.state(),
                        v.version() == key.primaryVersion(), chain.getFirst(), chain, intermediate(key))));
            }
        }
        return out;
    }

    /**
     * The versions of an intermediate CA key that await their certificate (ENABLED, PENDING
     * or DISABLED, nothing imported yet): what an operator still has to have signed.
     */
    public List<Integer> awaitingCertificate(String keyName) throws KmsError {
        KeyRecord key = caKey(keyName);
        List<Integer> out = new ArrayList<>();
        if (!intermediate(key)) return out;
        for (KeyVersion v : key.versions()) {
            boolean live = v.state() == VersionState.ENABLED || v.state() == VersionState.PENDING
                    || v.state() == VersionState.DISABLED;
            if (live && chain(key, v).isEmpty()) out.add(v.version());
        }
        return out;
    }

    /** Makes the root certificate of every version that lacks one (called after CreateKey and rotation). */
    public void ensureRoots(String keyName) throws KmsError {
        caCertificates(keyName);
    }

    /**
     * Signs a PKCS#10 request (PEM or DER) with the key's primary version.
     *
     * @param ttl     validity from now; null for {@link #DEFAULT_TTL}; at most the configured maximum
     * @param profile key usages: server (default), client or both
     */
    public Issued issue(String keyName, byte[] csr, Duration ttl, Profile profile) throws KmsError {
        Profile p = profile == null ? Profile.SERVER : profile;
        Duration life = ttl == null ? DEFAULT_TTL : ttl;
        if (life.isNegative() || life.isZero()) {
            throw new KmsError.InvalidParameter("ttl_seconds", "ttl_seconds: must be positive");
        }
        if (life.compareTo(maxTtl) > 0) {
            throw refused(KmsError.CertificateRefused.Reason.TTL_TOO_LONG, "ttl_seconds: " + life.toSeconds()
                    + " is longer than the maximum of " + maxTtl.toSeconds() + " seconds set by the daemon"
                    + " (ca.max-ttl-seconds)");
        }
        PKCS10CertificationRequest request = verifiedRequest(csr);
        SubjectPublicKeyInfo spki = request.getSubjectPublicKeyInfo();
        checkKeyStrength(spki);
        GeneralNames sans = requestedSans(request);
        List<String> sanStrings = sanStrings(sans);

        KeyRecord key = caKey(keyName);
        var grantLimit = caller.certificateTtlLimit(key);
        if (grantLimit.isPresent() && life.compareTo(grantLimit.get().maxTtl()) > 0) {
            throw refused(KmsError.CertificateRefused.Reason.TTL_TOO_LONG, "ttl_seconds: " + life.toSeconds()
                    + " is longer than the maximum of " + grantLimit.get().maxTtl().toSeconds()
                    + " seconds set by max_ttl_seconds of " + grantLimit.get().grant());
        }
        for (String san : sanStrings) {
            if (!caller.mayRequestSan(key, san)) {
                throw refused(KmsError.CertificateRefused.Reason.SAN_NOT_ALLOWED, "csr: the name " + san
                        + " is not one the caller's grants allow (grant field san)");
            }
        }
        // Legacy clients still match host names against the subject's CN: a CN that looks
        // like a host name or address is held to the same san patterns as a SAN.
        for (String cn : hostLikeCommonNames(request.getSubject())) {
            if (!caller.mayRequestSan(key, cn)) {
                throw refused(KmsError.CertificateRefused.Reason.SAN_NOT_ALLOWED, "csr: the subject's CN ("
                        + cn + ") is not a name the caller's grants allow (grant field san)");
            }
        }
        KeyVersion v = key.primary();
        if (v.state() != VersionState.ENABLED || health.refusal(v.objectId()).isPresent()) {
            throw new KmsError.KeyVersionUnusable(key.name(), v.version(), v.state().name(), "version " + v.version()
                    + " of '" + key.name() + "' cannot sign: it is " + v.state()
                    + health.refusal(v.objectId()).map(r -> " (" + r + ")").orElse(""));
        }
        List<String> chain = chain(key, v).orElseThrow(() -> refused(
                KmsError.CertificateRefused.Reason.CA_CERTIFICATE_MISSING, "version " + v.version() + " of '"
                        + key.name() + "' is an intermediate CA awaiting its certificate: export its request with"
                        + " Admin.GetCaCsr (kmsctl ca csr), have the external root sign it, and import the result"
                        + " with Admin.ImportCaCertificate (kmsctl ca import)"));
        String caPem = chain.getFirst();
        X509CertificateHolder ca = parseCertificate(caPem);
        Instant now = clock.instant();
        Instant notAfter = now.plus(life);
        if (notAfter.isAfter(ca.getNotAfter().toInstant())) {
            throw refused(KmsError.CertificateRefused.Reason.TTL_TOO_LONG, "ttl_seconds: the certificate would outlive"
                    + " its CA certificate (valid until " + ca.getNotAfter().toInstant() + ")");
        }
        BigInteger serial = serial();
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b = new X509v3CertificateBuilder(ca.getSubject(), serial,
                    Date.from(now.minus(BACKDATE)), Date.from(notAfter), request.getSubject(), spki);
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            b.addExtension(Extension.keyUsage, true, new KeyUsage(keyUsage(p, spki)));
            b.addExtension(Extension.extendedKeyUsage, false, extendedKeyUsage(p));
            b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(spki));
            b.addExtension(Extension.authorityKeyIdentifier, false,
                    ext.createAuthorityKeyIdentifier(ca.getSubjectPublicKeyInfo()));
            if (sans != null) {
                // Critical when the subject is empty (RFC 5280 4.2.1.6).
                b.addExtension(Extension.subjectAlternativeName, request.getSubject().getRDNs().length == 0, sans);
            }
            X509CertificateHolder cert = b.build(new EnclaveContentSigner(enclave, v.objectId(), key.algorithm()));
            // Recorded before it leaves: a certificate nobody can revoke must never be in anyone's hands.
            // (A crash after this line leaves a record of a certificate nobody received: harmless.)
            try {
                registry.apply(new RegistryCommand.RecordCertificate(serial.toString(16), key.name(), v.version(),
                        cert.getNotAfter().toInstant(), now));
            } catch (RegistryException e) {
                throw new KmsError.Internal("could not record certificate " + serial.toString(16)
                        + " in the registry; it is not issued", e);
            }
            LOG.log(System.Logger.Level.INFO, "issued certificate " + serial.toString(16) + " for "
                    + request.getSubject() + " " + sanStrings + " with " + key.name() + " v" + v.version());
            return new Issued(key.name(), v.version(), pem("CERTIFICATE", cert.getEncoded()), caPem, serial,
                    request.getSubject().toString(), sanStrings, now.minus(BACKDATE), notAfter, p,
                    String.join("", chain));
        } catch (EnclaveContentSigner.SigningFailed e) {
            throw Failures.of(e.enclaveException(), key.name());
        } catch (IOException | java.security.NoSuchAlgorithmException e) {
            throw new KmsError.Internal("could not build the certificate", e);
        }
    }

    private static KmsError.CertificateRefused refused(KmsError.CertificateRefused.Reason reason, String message) {
        return new KmsError.CertificateRefused(reason, message);
    }

    /** Parses the request and checks its self-signature: proof that the requester holds the private key. */
    static PKCS10CertificationRequest verifiedRequest(byte[] csr) throws KmsError {
        if (csr == null || csr.length == 0 || csr.length > MAX_CSR_BYTES) {
            throw refused(KmsError.CertificateRefused.Reason.BAD_CSR, "csr: a PKCS#10 request of 1 to "
                    + MAX_CSR_BYTES + " bytes, PEM or DER");
        }
        PKCS10CertificationRequest request;
        try {
            request = new PKCS10CertificationRequest(der(csr));
        } catch (IOException | RuntimeException e) {
            throw refused(KmsError.CertificateRefused.Reason.BAD_CSR, "csr: not a PKCS#10 certificate request ("
                    + e.getMessage() + ")");
        }
        boolean valid;
        try {
            valid = request.isSignatureValid(new JcaContentVerifierProviderBuilder()
                    .setProvider(new BouncyCastleProvider()).build(request.getSubjectPublicKeyInfo()));
        } catch (PKCSException | org.bouncycastle.operator.OperatorCreationException | RuntimeException e) {
            throw refused(KmsError.CertificateRefused.Reason.BAD_SIGNATURE, "csr: its signature cannot be checked ("
                    + e.getMessage() + ")");
        }
        if (!valid) {
            throw refused(KmsError.CertificateRefused.Reason.BAD_SIGNATURE,
                    "csr: its signature does not verify with the public key it contains");
        }
        return request;
    }

    private static byte[] der(byte[] csr) throws IOException {
        String text = new String(csr, StandardCharsets.US_ASCII);
        if (!text.contains("-----BEGIN")) {
            return csr;
        }
        try (var reader = new org.bouncycastle.util.io.pem.PemReader(new StringReader(text))) {
            var obj = reader.readPemObject();
            if (obj == null || !(obj.getType().equals("CERTIFICATE REQUEST")
                    || obj.getType().equals("NEW CERTIFICATE REQUEST"))) {
                throw new IOException("no CERTIFICATE REQUEST block");
            }
            return obj.getContent();
        }
    }

    static void checkKeyStrength(SubjectPublicKeyInfo spki) throws KmsError {
        ASN1ObjectIdentifier alg = spki.getAlgorithm().getAlgorithm();
        if (alg.equals(PKCSObjectIdentifiers.rsaEncryption)) {
            int bits;
            try {
                bits = org.bouncycastle.asn1.pkcs.RSAPublicKey.getInstance(spki.parsePublicKey()).getModulus().bitLength();
            } catch (IOException | RuntimeException e) {
                throw refused(KmsError.CertificateRefused.Reason.BAD_CSR, "csr: malformed RSA public key");
            }
            if (bits < MIN_RSA_BITS) {
                throw refused(KmsError.CertificateRefused.Reason.WEAK_KEY, "csr: RSA key of " + bits
                        + " bits; at least " + MIN_RSA_BITS + " required");
            }
        } else if (alg.equals(X9ObjectIdentifiers.id_ecPublicKey)) {
            var params = spki.getAlgorithm().getParameters();
            if (!(params instanceof ASN1ObjectIdentifier curve) || !APPROVED_CURVES.contains(curve)) {
                throw refused(KmsError.CertificateRefused.Reason.WEAK_KEY, "csr: EC key on curve " + params
                        + "; only named curves P-256 and P-384 are accepted");
            }
        } else if (!alg.equals(EdECObjectIdentifiers.id_Ed25519)) {
            throw refused(KmsError.CertificateRefused.Reason.WEAK_KEY, "csr: key algorithm " + alg
                    + " is not accepted (RSA >= 2048, EC P-256/P-384, Ed25519)");
        }
    }

    private static GeneralNames requestedSans(PKCS10CertificationRequest request) throws KmsError {
        Extensions ext = request.getRequestedExtensions();
        if (ext == null) return null;
        GeneralNames names = GeneralNames.fromExtensions(ext, Extension.subjectAlternativeName);
        if (names == null) return null;
        for (GeneralName n : names.getNames()) {
            if (n.getTagNo() != GeneralName.dNSName && n.getTagNo() != GeneralName.iPAddress) {
                throw refused(KmsError.CertificateRefused.Reason.SAN_NOT_ALLOWED,
                        "csr: only DNS and IP subject alternative names are signed, not " + n);
            }
        }
        return names;
    }

    /** CNs containing a '.' or ':' as {@code DNS:cn} or {@code IP:cn}; other CNs (user names) are not names of hosts. */
    static List<String> hostLikeCommonNames(X500Name subject) {
        List<String> out = new ArrayList<>();
        for (var rdn : subject.getRDNs(BCStyle.CN)) {
            for (var atv : rdn.getTypesAndValues()) {
                String cn = org.bouncycastle.asn1.x500.style.IETFUtils.valueToString(atv.getValue());
                if (cn.matches("[0-9.]+") || cn.contains(":")) {
                    out.add("IP:" + cn);
                } else if (cn.contains(".")) {
                    out.add("DNS:" + cn);
                }
            }
        }
        return out;
    }

    private static List<String> sanStrings(GeneralNames names) throws KmsError {
        List<String> out = new ArrayList<>();
        if (names == null) return out;
        for (GeneralName n : names.getNames()) {
            if (n.getTagNo() == GeneralName.dNSName) {
                out.add("DNS:" + n.getName().toString());
            } else {
                byte[] ip = org.bouncycastle.asn1.ASN1OctetString.getInstance(n.getName()).getOctets();
                try {
                    out.add("IP:" + InetAddress.getByAddress(ip).getHostAddress());
                } catch (java.net.UnknownHostException e) {
                    throw refused(KmsError.CertificateRefused.Reason.BAD_CSR, "csr: malformed IP address SAN");
                }
            }
        }
        return out;
    }

    private static int keyUsage(Profile p, SubjectPublicKeyInfo spki) {
        int ku = KeyUsage.digitalSignature;
        // RSA key transport (TLS 1.2 RSA key exchange) needs keyEncipherment on server certificates.
        if (p != Profile.CLIENT && spki.getAlgorithm().getAlgorithm().equals(PKCSObjectIdentifiers.rsaEncryption)) {
            ku |= KeyUsage.keyEncipherment;
        }
        return ku;
    }

    private static ExtendedKeyUsage extendedKeyUsage(Profile p) {
        return switch (p) {
            case SERVER -> new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth);
            case CLIENT -> new ExtendedKeyUsage(KeyPurposeId.id_kp_clientAuth);
            case BOTH -> new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth,
                    KeyPurposeId.id_kp_clientAuth});
        };
    }

    /** 128 random bits from the enclave; positive and non-zero as RFC 5280 requires. */
    private BigInteger serial() throws KmsError {
        while (true) {
            try (SecretBytes r = enclave.random(16)) {
                BigInteger s = new BigInteger(1, r.reveal());
                if (s.signum() > 0) return s;
            } catch (EnclaveException e) {
                throw Failures.of(e, "serial");
            }
        }
    }

    private KeyRecord caKey(String name) throws KmsError {
        KeyNames.check("key", name);
        if (KeyNames.reserved(name)) {
            throw new KmsError.KeyNotFound(name);
        }
        KeyRecord key = caller.resolve(registry, name, null);
        if (key.purpose() != Purpose.CERT_AUTHORITY) {
            throw new KmsError.InvalidKeyUsage(name, "key '" + name + "' is a " + key.purpose()
                    + " key; certificates need a CERT_AUTHORITY key");
        }
        return key;
    }

    /**
     * The version's certificate chain (its own certificate first, the root last): stored, or
     * for a root CA made and stored now; empty for an intermediate CA's version awaiting import.
     */
    Optional<List<String>> chain(KeyRecord key, KeyVersion v) throws KmsError {
        try {
            var stored = store.get(v.objectId());
            if (stored.isPresent()) return Optional.of(splitPem(stored.get()));
            if (intermediate(key)) return Optional.empty();
            return Optional.of(splitPem(store.putIfAbsent(v.objectId(), selfSigned(key, v))));
        } catch (IOException e) {
            throw new KmsError.Internal("CA certificate store failed", e);
        }
    }

    /** Whether {@code key} was created as an intermediate CA (its first version carries the marker). */
    private boolean intermediate(KeyRecord key) {
        return store.isIntermediate(key.versions().getFirst().objectId());
    }

    /**
     * Makes a new CERT_AUTHORITY key an intermediate CA: called right after Admin.CreateKey,
     * before anything can make a self-signed root for it.
     */
    public void markIntermediate(KeyRecord key) throws KmsError {
        try {
            store.markIntermediate(key.versions().getFirst().objectId());
        } catch (IOException e) {
            throw new KmsError.Internal("CA certificate store failed", e);
        }
    }

    /** The CERTIFICATE blocks of a PEM text, each re-encoded on its own. */
    static List<String> splitPem(String text) throws KmsError {
        List<String> out = new ArrayList<>();
        try (var reader = new org.bouncycastle.util.io.pem.PemReader(new StringReader(text))) {
            for (var o = reader.readPemObject(); o != null; o = reader.readPemObject()) {
                if (o.getType().equals("CERTIFICATE")) out.add(pem("CERTIFICATE", o.getContent()));
            }
        } catch (IOException | RuntimeException e) {
            throw new KmsError.Internal("stored CA certificate is unreadable", e);
        }
        if (out.isEmpty()) throw new KmsError.Internal("stored CA certificate file holds no certificate", null);
        return out;
    }

    // ------------------------------------------------------------ intermediates

    /**
     * A PKCS#10 request for version {@code version} of an intermediate CA key, signed by that
     * version inside the enclave, for an external root to sign. It asks for basicConstraints
     * CA:TRUE, pathlen:0 and keyUsage keyCertSign, cRLSign (the root decides what it signs).
     *
     * @param subject the subject DN (RFC 4514, e.g. {@code CN=edge CA,O=Acme}); null for
     *                {@code O=enclave-kms, CN=<key> v<version>}
     */
    public CaRequest caCsr(String keyName, int version, String subject) throws KmsError {
        KeyRecord key = caKey(keyName);
        KeyVersion v = awaitingVersion(key, version);
        X500Name name;
        if (subject == null) {
            name = defaultSubject(key, v);
        } else {
            try {
                name = new X500Name(BCStyle.INSTANCE, subject);
            } catch (IllegalArgumentException e) {
                throw new KmsError.InvalidParameter("subject", "subject: '" + subject
                        + "' is not a distinguished name (write e.g. CN=edge CA,O=Acme)");
            }
            if (name.getRDNs().length == 0) {
                throw new KmsError.InvalidParameter("subject", "subject: empty; a CA needs a subject name");
            }
        }
        try {
            PublicKey pub = enclave.publicKey(v.objectId(), key.algorithm());
            SubjectPublicKeyInfo spki = SubjectPublicKeyInfo.getInstance(pub.getEncoded());
            var ext = new org.bouncycastle.asn1.x509.ExtensionsGenerator();
            ext.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
            ext.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            ext.addExtension(Extension.subjectKeyIdentifier, false,
                    new JcaX509ExtensionUtils().createSubjectKeyIdentifier(spki));
            var builder = new org.bouncycastle.pkcs.PKCS10CertificationRequestBuilder(name, spki);
            builder.addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, ext.generate());
            var csr = builder.build(new EnclaveContentSigner(enclave, v.objectId(), key.algorithm()));
            LOG.log(System.Logger.Level.INFO, "made the CA request of " + key.name() + " v" + v.version()
                    + " for " + name);
            return new CaRequest(key.name(), v.version(), name.toString(), pem("CERTIFICATE REQUEST", csr.getEncoded()));
        } catch (EnclaveException e) {
            throw Failures.of(e, key.name());
        } catch (EnclaveContentSigner.SigningFailed e) {
            throw Failures.of(e.enclaveException(), key.name());
        } catch (IOException | java.security.NoSuchAlgorithmException e) {
            throw new KmsError.Internal("could not build the CA request", e);
        }
    }

    /**
     * Stores the certificate an external root signed for version {@code version} of an
     * intermediate CA key, with its chain: {@code chainPem} holds the version's certificate
     * first, then each issuer, ending with the self-signed root. Checked before anything is
     * stored: the first certificate's public key is the version's; every certificate is a CA
     * certificate (basicConstraints CA:TRUE) within its validity; the version's certificate
     * allows keyCertSign and cRLSign (it signs certificates and CRLs); each certificate is
     * signed by the next; the last is self-signed. A version keeps the first chain imported.
     */
    public CaCertificate importCaCertificate(String keyName, int version, String chainPem) throws KmsError {
        KeyRecord key = caKey(keyName);
        KeyVersion v = awaitingVersion(key, version);
        List<X509CertificateHolder> chain = CaChainCheck.parse(chainPem);
        PublicKey pub;
        try {
            pub = enclave.publicKey(v.objectId(), key.algorithm());
        } catch (EnclaveException e) {
            throw Failures.of(e, key.name());
        }
        CaChainCheck.check(chain, SubjectPublicKeyInfo.getInstance(pub.getEncoded()), clock.instant(), v.version());
        StringBuilder text = new StringBuilder();
        for (X509CertificateHolder c : chain) {
            try {
                text.append(pem("CERTIFICATE", c.getEncoded()));
            } catch (IOException e) {
                throw new KmsError.Internal("could not encode the CA certificate", e);
            }
        }
        String stored;
        try {
            stored = store.putIfAbsent(v.objectId(), text.toString());
        } catch (IOException e) {
            throw new KmsError.Internal("CA certificate store failed", e);
        }
        if (!stored.contentEquals(text)) {
            throw new KmsError.InvalidParameter("version", "version " + v.version() + " of '" + key.name()
                    + "' received its certificate in a concurrent call; a version keeps its first certificate");
        }
        LOG.log(System.Logger.Level.INFO, "imported the CA certificate of " + key.name() + " v" + v.version()
                + ": " + chain.getFirst().getSubject() + " issued by " + chain.getFirst().getIssuer());
        List<String> pems = splitPem(stored);
        return new CaCertificate(v.version(), v.state(), v.version() == key.primaryVersion(), pems.getFirst(), pems,
                true);
    }

    /** A version of an intermediate CA key that has no certificate yet, and whose key can still sign. */
    private KeyVersion awaitingVersion(KeyRecord key, int version) throws KmsError {
        KeyVersion v = key.version(version).orElseThrow(() -> new KmsError.KeyVersionNotFound(key.name(), version));
        if (!intermediate(key)) {
            throw new KmsError.InvalidKeyUsage(key.name(), "key '" + key.name() + "' is a root CA (each version has a"
                    + " self-signed certificate); only keys created with ca_intermediate: true take certificates"
                    + " from an external root");
        }
        if (v.state() != VersionState.ENABLED && v.state() != VersionState.PENDING
                && v.state() != VersionState.DISABLED) {
            throw new KmsError.KeyVersionUnusable(key.name(), v.version(), v.state().name(), "version " + v.version()
                    + " of '" + key.name() + "' is " + v.state() + " and will never be a CA again");
        }
        try {
            if (store.get(v.objectId()).isPresent()) {
                throw new KmsError.InvalidParameter("version", "version " + v.version() + " of '" + key.name()
                        + "' has its CA certificate already; a version keeps its first certificate (rotate the key"
                        + " for a new one)");
            }
        } catch (IOException e) {
            throw new KmsError.Internal("CA certificate store failed", e);
        }
        return v;
    }

    // ------------------------------------------------------------ revocation

    /**
     * Revokes the certificate of this serial (hex, colons allowed) for good. Revoking a
     * revoked certificate changes nothing and says so. The CRL of the CA version that issued
     * it is signed anew at the next {@link #crls} call.
     */
    public Revocation revoke(String serialText, RevocationReason reason) throws KmsError {
        String serial = normalSerial(serialText);
        CertificateRecord record;
        try {
            record = registry.findCertificate(serial).orElseThrow(() -> new KmsError.CertificateNotFound(serial));
        } catch (RegistryException e) {
            throw new KmsError.Internal("registry read failed", e);
        }
        try {
            caKey(record.key());
        } catch (KmsError.KeyNotFound | KmsError.PermissionDenied e) {
            throw new KmsError.CertificateNotFound(serial); // another tenant's certificate: as if unknown
        }
        if (record.isRevoked()) {
            return new Revocation(serial, record.key(), record.version(), record.revoked(), record.reason(),
                    record.notAfter(), true);
        }
        Instant now = clock.instant();
        try {
            registry.apply(new RegistryCommand.RevokeCertificate(serial, reason, now));
        } catch (RegistryException.Conflict e) {
            // revoked by a concurrent call: report what is stored
            return revokedMeanwhile(serial);
        } catch (RegistryException e) {
            throw new KmsError.Internal("registry write failed while revoking " + serial, e);
        }
        crls.invalidate(record.key(), record.version());
        LOG.log(System.Logger.Level.INFO, "revoked certificate " + serial + " of " + record.key() + " v"
                + record.version() + " (" + reason.rfcName() + ")");
        return new Revocation(serial, record.key(), record.version(), now, reason, record.notAfter(), false);
    }

    private Revocation revokedMeanwhile(String serial) throws KmsError {
        try {
            CertificateRecord r = registry.findCertificate(serial).orElseThrow(() -> new KmsError.CertificateNotFound(serial));
            return new Revocation(serial, r.key(), r.version(), r.revoked(), r.reason(), r.notAfter(), true);
        } catch (RegistryException e) {
            throw new KmsError.Internal("registry read failed", e);
        }
    }

    /** Lowercase hex without leading zeros, as IssueCertificate reports serials; colons and 0x allowed. */
    static String normalSerial(String text) throws KmsError {
        String hex = text == null ? "" : text.strip().replace(":", "").toLowerCase(java.util.Locale.ROOT);
        if (hex.startsWith("0x")) hex = hex.substring(2);
        if (hex.isEmpty() || hex.length() > 64 || !hex.matches("[0-9a-f]+")) {
            throw new KmsError.InvalidParameter("serial", "serial: a certificate serial number in hex (as"
                    + " IssueCertificate reports it, or openssl x509 -serial prints it)");
        }
        return new BigInteger(hex, 16).toString(16);
    }

    /**
     * The current CRL of every version GetCaCertificates lists (ENABLED and PENDING with a
     * certificate) and of DISABLED versions with one (their certificates may still be in use),
     * in version order; each signed inside the enclave by its version.
     */
    public List<RevocationLists.Crl> crls(String keyName) throws KmsError {
        KeyRecord key = caKey(keyName);
        List<RevocationLists.Crl> out = new ArrayList<>();
        for (KeyVersion v : key.versions()) {
            boolean live = v.state() == VersionState.ENABLED || v.state() == VersionState.PENDING
                    || v.state() == VersionState.DISABLED;
            if (!live || health.refusal(v.objectId()).isPresent()) continue;
            Optional<List<String>> chain = chain(key, v);
            if (chain.isEmpty()) continue;
            out.add(crls.current(key, v, parseCertificate(chain.get().getFirst())));
        }
        return out;
    }

    private String selfSigned(KeyRecord key, KeyVersion v) throws KmsError {
        PublicKey pub;
        try {
            pub = enclave.publicKey(v.objectId(), key.algorithm());
        } catch (EnclaveException e) {
            throw Failures.of(e, key.name());
        }
        SubjectPublicKeyInfo spki = SubjectPublicKeyInfo.getInstance(pub.getEncoded());
        X500Name subject = defaultSubject(key, v);
        Instant now = clock.instant();
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b = new X509v3CertificateBuilder(subject, serial(), Date.from(now.minus(BACKDATE)),
                    Date.from(now.plus(ROOT_VALIDITY)), subject, spki);
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
            b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(spki));
            X509CertificateHolder cert = b.build(new EnclaveContentSigner(enclave, v.objectId(), key.algorithm()));
            LOG.log(System.Logger.Level.INFO, "created root certificate for " + key.name() + " v" + v.version()
                    + (pub instanceof RSAPublicKey ? " (RSASSA-PSS)" : ""));
            return pem("CERTIFICATE", cert.getEncoded());
        } catch (EnclaveContentSigner.SigningFailed e) {
            throw Failures.of(e.enclaveException(), key.name());
        } catch (IOException | java.security.NoSuchAlgorithmException e) {
            throw new KmsError.Internal("could not build the root certificate", e);
        }
    }

    /** What a certificate says about itself, for replies. */
    public record CertificateFacts(String subject, String issuer, Instant notAfter) { }

    public static CertificateFacts facts(String pem) throws KmsError {
        X509CertificateHolder c = parseCertificate(pem);
        return new CertificateFacts(c.getSubject().toString(), c.getIssuer().toString(), c.getNotAfter().toInstant());
    }

    private static X500Name defaultSubject(KeyRecord key, KeyVersion v) {
        return new X500NameBuilder(BCStyle.INSTANCE)
                .addRDN(BCStyle.O, "enclave-kms")
                .addRDN(BCStyle.CN, key.name() + " v" + v.version())
                .build();
    }

    private static X509CertificateHolder parseCertificate(String pem) throws KmsError {
        try (var reader = new org.bouncycastle.util.io.pem.PemReader(new StringReader(pem))) {
            return new X509CertificateHolder(reader.readPemObject().getContent());
        } catch (IOException | RuntimeException e) {
            throw new KmsError.Internal("stored CA certificate is unreadable", e);
        }
    }

    static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }
}
