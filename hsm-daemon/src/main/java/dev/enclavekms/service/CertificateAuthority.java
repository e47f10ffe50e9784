package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryStore;
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
import java.util.Set;

/**
 * A certificate authority whose keys are CERT_AUTHORITY key versions in the enclave.
 * Each version has a self-signed root certificate, made when it is first needed (at key
 * creation, or for a version a rotation made) and kept in {@link CaCertificates}.
 * {@link #issue} signs PKCS#10 requests with the primary version: the request's own
 * signature and key strength are checked first, the profile fixes key usages, serials
 * are 128 bits from the enclave's generator, and the signature is computed by the
 * enclave through {@link EnclaveContentSigner}.
 *
 * <p>Each SAN must match a {@code san} pattern of a grant that allows the call (docs/policy.md).
 * Not yet: intermediates whose CSR goes to an external root, revocation (docs/tls.md).
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

    /** One version's CA certificate. */
    public record CaCertificate(int version, VersionState state, boolean primary, String pem) { }

    /** An issued certificate and the CA certificate that signed it. */
    public record Issued(String key, int version, String certificatePem, String caCertificatePem, BigInteger serial,
                         String subject, List<String> sans, Instant notBefore, Instant notAfter, Profile profile) { }

    private final Enclave enclave;
    private final RegistryStore registry;
    private final KeyHealth health;
    private final CaCertificates store;
    private final Clock clock;
    private final Duration maxTtl;
    private final Caller caller;

    public CertificateAuthority(Enclave enclave, RegistryStore registry, KeyHealth health, CaCertificates store,
                                Clock clock, Duration maxTtl) {
        this(enclave, registry, health, store, clock, maxTtl, Caller.system());
    }

    private CertificateAuthority(Enclave enclave, RegistryStore registry, KeyHealth health, CaCertificates store,
                                 Clock clock, Duration maxTtl, Caller caller) {
        this.enclave = enclave;
        this.registry = registry;
        this.health = health;
        this.store = store;
        this.clock = clock;
        this.maxTtl = maxTtl;
        this.caller = caller;
    }

    /** The same CA acting for one call's caller: its tenant's keys only, under its grants. */
    public CertificateAuthority as(Caller caller) {
        return new CertificateAuthority(enclave, registry, health, store, clock, maxTtl, caller);
    }

    /**
     * The CA certificates of every version a relying party should trust: ENABLED and
     * PENDING (a rotation publishes the new CA before it signs), primary first is not
     * promised — they come in version order. A version without a certificate gets its root now.
     */
    public List<CaCertificate> caCertificates(String keyName) throws KmsError {
        KeyRecord key = caKey(keyName);
        List<CaCertificate> out = new ArrayList<>();
        for (KeyVersion v : key.versions()) {
            if ((v.state() == VersionState.ENABLED || v.state() == VersionState.PENDING)
                    && health.refusal(v.objectId()).isEmpty()) {
                out.add(new CaCertificate(v.version(), v.state(), v.version() == key.primaryVersion(), root(key, v)));
            }
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
                    + " is longer than the maximum of " + maxTtl.toSeconds() + " seconds");
        }
        PKCS10CertificationRequest request = verifiedRequest(csr);
        SubjectPublicKeyInfo spki = request.getSubjectPublicKeyInfo();
        checkKeyStrength(spki);
        GeneralNames sans = requestedSans(request);
        List<String> sanStrings = sanStrings(sans);

        KeyRecord key = caKey(keyName);
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
        String caPem = root(key, v);
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
            LOG.log(System.Logger.Level.INFO, "issued certificate " + serial.toString(16) + " for "
                    + request.getSubject() + " " + sanStrings + " with " + key.name() + " v" + v.version());
            return new Issued(key.name(), v.version(), pem("CERTIFICATE", cert.getEncoded()), caPem, serial,
                    request.getSubject().toString(), sanStrings, now.minus(BACKDATE), notAfter, p);
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

    /** The version's root certificate, made and stored now if it has none. */
    private String root(KeyRecord key, KeyVersion v) throws KmsError {
        try {
            var stored = store.get(v.objectId());
            if (stored.isPresent()) return stored.get();
            return store.putIfAbsent(v.objectId(), selfSigned(key, v));
        } catch (IOException e) {
            throw new KmsError.Internal("CA certificate store failed", e);
        }
    }

    private String selfSigned(KeyRecord key, KeyVersion v) throws KmsError {
        PublicKey pub;
        try {
            pub = enclave.publicKey(v.objectId(), key.algorithm());
        } catch (EnclaveException e) {
            throw Failures.of(e, key.name());
        }
        SubjectPublicKeyInfo spki = SubjectPublicKeyInfo.getInstance(pub.getEncoded());
        X500Name subject = new X500NameBuilder(BCStyle.INSTANCE)
                .addRDN(BCStyle.O, "enclave-kms")
                .addRDN(BCStyle.CN, key.name() + " v" + v.version())
                .build();
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
