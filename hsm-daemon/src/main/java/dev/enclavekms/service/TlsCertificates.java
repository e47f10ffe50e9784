package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.policy.Methods;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryStore;
import dev.enclavekms.registry.VersionState;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.Extensions;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.pkcs.PKCS10CertificationRequestBuilder;

import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.security.PublicKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Certificates for TLS_SERVER and TLS_CLIENT keys, whose key pairs the enclave generated
 * and whose private keys a TLS stack uses through the token's own PKCS#11 interface.
 *
 * <p>{@link #issue} makes a PKCS#10 request for the key's primary version <em>inside the
 * daemon</em>, signed by the enclave with that very key, and hands it to the
 * {@link CertificateAuthority} exactly as {@code Kms.IssueCertificate} would: the CA is asked
 * with the caller's identity under the method {@code Kms.IssueCertificate}, so the same
 * grants (key patterns, {@code san}) decide, and nothing is signed that the caller could
 * not have had signed with a CSR of its own. The certificate is then written to the token
 * beside the key (same CKA_ID and CKA_LABEL), where SunPKCS11's KeyStore and OpenSSL's
 * pkcs11 provider pair it with the private key.
 */
public final class TlsCertificates {
    private static final System.Logger LOG = System.getLogger(TlsCertificates.class.getName());
    public static final int MAX_SANS = 100;
    public static final int MAX_NAME_LENGTH = 253;

    /** A certificate for one TLS key version, and how PKCS#11 programs find its key. */
    public record Issued(String key, int version, CertificateAuthority.Issued certificate, String alias,
                         String pkcs11Uri) { }

    private final Enclave enclave;
    private final RegistryStore registry;
    private final KeyHealth health;
    private final Caller caller;

    public TlsCertificates(Enclave enclave, RegistryStore registry, KeyHealth health) {
        this(enclave, registry, health, Caller.system());
    }

    private TlsCertificates(Enclave enclave, RegistryStore registry, KeyHealth health, Caller caller) {
        this.enclave = enclave;
        this.registry = registry;
        this.health = health;
        this.caller = caller;
    }

    public TlsCertificates as(Caller caller) {
        return new TlsCertificates(enclave, registry, health, caller);
    }

    /**
     * Issues a certificate for the primary version of the TLS key {@code keyName}, signed by
     * the CERT_AUTHORITY key {@code caName}, and stores it on the token.
     *
     * @param commonName the subject's CN; null for the first SAN's name, or the key's name without SANs
     * @param sans       {@code DNS:name} or {@code IP:address}
     * @param ttl        null for the CA's default (24 h)
     * @param tokenLabel the token's label, for the PKCS#11 URI
     */
    public Issued issue(CertificateAuthority ca, String keyName, String caName, String commonName, List<String> sans,
                        Duration ttl, String tokenLabel) throws KmsError {
        KeyNames.check("key", keyName);
        if (KeyNames.reserved(keyName)) throw new KmsError.KeyNotFound(keyName);
        KeyRecord key = caller.resolve(registry, keyName, null);
        if (!key.purpose().tls()) {
            throw new KmsError.InvalidKeyUsage(keyName, "key '" + keyName + "' is a " + key.purpose()
                    + " key; TLS certificates are for TLS_SERVER and TLS_CLIENT keys");
        }
        GeneralNames names = generalNames(sans);
        KeyVersion v = key.primary();
        if (v.state() != VersionState.ENABLED || health.refusal(v.objectId()).isPresent()) {
            throw new KmsError.KeyVersionUnusable(key.name(), v.version(), v.state().name(), "version " + v.version()
                    + " of '" + key.name() + "' cannot be certified: it is " + v.state()
                    + health.refusal(v.objectId()).map(r -> " (" + r + ")").orElse(""));
        }
        String cn = commonName != null ? commonName : sans.isEmpty() ? key.name() : sans.get(0).substring(
                sans.get(0).indexOf(':') + 1);
        if (cn.isEmpty() || cn.length() > 64) {
            throw new KmsError.InvalidParameter("common_name", "common_name: 1 to 64 characters (X.520 ub-common-name)");
        }
        byte[] csr = request(key, v, cn, names);
        CertificateAuthority.Profile profile = key.purpose() == Purpose.TLS_SERVER
                ? CertificateAuthority.Profile.SERVER : CertificateAuthority.Profile.CLIENT;
        CertificateAuthority.Issued issued = ca.as(asCertificateRequester()).issue(caName, csr, ttl, profile);
        String label = KeyLifecycle.label(key.name(), v.version(), v.objectId());
        try {
            enclave.putCertificate(v.objectId(), label, der(issued.certificatePem()));
        } catch (EnclaveException e) {
            throw Failures.of(e, key.name());
        }
        LOG.log(System.Logger.Level.INFO, "stored certificate " + issued.serial().toString(16) + " for TLS key "
                + key.name() + " v" + v.version() + " on the token");
        return new Issued(key.name(), v.version(), issued, label, pkcs11Uri(tokenLabel, v.objectId(), label));
    }

    /** The caller as the CA sees it: asking for a certificate, under the grants of Kms.IssueCertificate. */
    private Caller asCertificateRequester() {
        if (caller.isSystem()) return caller;
        return Caller.of(caller.policy(), caller.identity(), Methods.KMS + ".IssueCertificate");
    }

    /** A PKCS#10 request for the version's public key, signed inside the enclave by its private key. */
    private byte[] request(KeyRecord key, KeyVersion v, String cn, GeneralNames names) throws KmsError {
        PublicKey pub;
        try {
            pub = enclave.publicKey(v.objectId(), key.algorithm());
        } catch (EnclaveException e) {
            throw Failures.of(e, key.name());
        }
        X500Name subject = new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.CN, cn).build();
        var builder = new PKCS10CertificationRequestBuilder(subject, SubjectPublicKeyInfo.getInstance(pub.getEncoded()));
        try {
            if (names != null) {
                builder.addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest,
                        new Extensions(new Extension(Extension.subjectAlternativeName, false, names.getEncoded())));
            }
            return builder.build(new EnclaveContentSigner(enclave, v.objectId(), key.algorithm())).getEncoded();
        } catch (EnclaveContentSigner.SigningFailed e) {
            throw Failures.of(e.enclaveException(), key.name());
        } catch (IOException e) {
            throw new KmsError.Internal("could not build the certificate request", e);
        }
    }

    /** {@code DNS:name} and {@code IP:address} strings as GeneralNames; null for none. */
    static GeneralNames generalNames(List<String> sans) throws KmsError {
        if (sans.size() > MAX_SANS) {
            throw new KmsError.InvalidParameter("sans", "sans: at most " + MAX_SANS + " names");
        }
        List<GeneralName> out = new ArrayList<>();
        for (String s : sans) {
            if (s.startsWith("DNS:") && s.length() > 4 && s.length() <= 4 + MAX_NAME_LENGTH
                    && s.substring(4).matches("(\\*\\.)?[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*")) {
                out.add(new GeneralName(GeneralName.dNSName, s.substring(4)));
            } else if (s.startsWith("IP:") && s.substring(3).matches("[0-9.]{7,15}|[0-9A-Fa-f:]{2,39}")) {
                try {
                    out.add(new GeneralName(GeneralName.iPAddress, s.substring(3)));
                } catch (IllegalArgumentException e) {
                    throw new KmsError.InvalidParameter("sans", "sans: '" + s + "' is not an IP address");
                }
            } else {
                throw new KmsError.InvalidParameter("sans", "sans: '" + s + "' is not DNS:host.name or IP:address");
            }
        }
        return out.isEmpty() ? null : new GeneralNames(out.toArray(GeneralName[]::new));
    }

    /**
     * The RFC 7512 URI of the version's private key on the token:
     * {@code pkcs11:token=T;id=%..;object=L;type=private}. Both id and object are given, so
     * programs that match on either (OpenSSL's pkcs11 provider, libp11, p11-kit) find it.
     */
    public static String pkcs11Uri(String tokenLabel, ObjectId id, String label) {
        StringBuilder idPct = new StringBuilder();
        for (byte b : id.bytes()) {
            idPct.append('%').append(String.format("%02x", b & 0xff));
        }
        return "pkcs11:token=" + pct(tokenLabel) + ";id=" + idPct + ";object=" + pct(label) + ";type=private";
    }

    /** Percent-encodes everything but RFC 3986 unreserved characters and ':' (allowed in a path attribute). */
    static String pct(String s) {
        StringBuilder out = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            char c = (char) (b & 0xff);
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "-._~:".indexOf(c) >= 0) {
                out.append(c);
            } else {
                out.append('%').append(String.format("%02X", b & 0xff));
            }
        }
        return out.toString();
    }

    private static byte[] der(String pem) throws KmsError {
        try (var reader = new org.bouncycastle.util.io.pem.PemReader(new StringReader(pem))) {
            return reader.readPemObject().getContent();
        } catch (IOException | RuntimeException e) {
            throw new KmsError.Internal("issued certificate is unreadable", e);
        }
    }
}
