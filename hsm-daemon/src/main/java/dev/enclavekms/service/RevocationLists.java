package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.registry.CertificateRecord;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.RegistryException;
import dev.enclavekms.registry.RegistryStore;
import dev.enclavekms.registry.RevocationReason;
import org.bouncycastle.asn1.x509.CRLNumber;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.X509CRLHolder;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v2CRLBuilder;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;

import java.io.IOException;
import java.math.BigInteger;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One X.509 v2 CRL per CA key version, signed inside the enclave by that version (the one
 * that issued the certificates it lists; relying parties match it by issuer name and
 * authority key identifier). Each CRL is valid for {@link #VALIDITY} and signed anew when
 * half of that has passed, or after a revocation; between those it is served from memory.
 * Its CRL number comes from the registry and only ever rises (a restart signs a new CRL
 * with the next number). Certificates drop off the CRL once they have expired.
 */
public final class RevocationLists {
    private static final System.Logger LOG = System.getLogger(RevocationLists.class.getName());

    /** thisUpdate to nextUpdate. */
    static final Duration VALIDITY = Duration.ofHours(24);
    /** Age at which a CRL is signed anew, well before relying parties would find it stale. */
    static final Duration REFRESH = Duration.ofHours(12);

    /** One signed CRL. */
    public record Crl(String key, int version, long number, Instant thisUpdate, Instant nextUpdate, int revoked,
                      String pem) { }

    private final Enclave enclave;
    private final RegistryStore registry;
    private final Clock clock;
    private final Map<String, Crl> current = new HashMap<>();

    RevocationLists(Enclave enclave, RegistryStore registry, Clock clock) {
        this.enclave = enclave;
        this.registry = registry;
        this.clock = clock;
    }

    /** The version's current CRL, signed now if it has none, it is half-way stale, or something was revoked. */
    synchronized Crl current(KeyRecord key, KeyVersion v, X509CertificateHolder ca) throws KmsError {
        String id = id(key.name(), v.version());
        Instant now = clock.instant();
        Crl c = current.get(id);
        if (c != null && !now.isBefore(c.thisUpdate()) && now.isBefore(c.thisUpdate().plus(REFRESH))) {
            return c;
        }
        c = sign(key, v, ca, now.truncatedTo(ChronoUnit.SECONDS));
        current.put(id, c);
        return c;
    }

    /**
     * Forgets a version's CRL after a revocation. Holding the same lock as {@link #current}
     * matters: a CRL being signed from a list read before the revocation is dropped here,
     * never kept.
     */
    synchronized void invalidate(String key, int version) {
        current.remove(id(key, version));
    }

    private Crl sign(KeyRecord key, KeyVersion v, X509CertificateHolder ca, Instant now) throws KmsError {
        long number;
        List<CertificateRecord> revoked;
        try {
            revoked = registry.revokedCertificates(key.name(), v.version(), now);
            // The number is made durable before it is used: a crash may skip a number, never reuse one.
            number = registry.crlNumber(key.name(), v.version()) + 1;
            registry.apply(new RegistryCommand.AdvanceCrlNumber(key.name(), v.version(), number));
        } catch (RegistryException e) {
            throw new KmsError.Internal("registry failed while making the CRL of " + key.name() + " v"
                    + v.version(), e);
        }
        Instant next = now.plus(VALIDITY);
        try {
            X509v2CRLBuilder b = new X509v2CRLBuilder(ca.getSubject(), Date.from(now));
            b.setNextUpdate(Date.from(next));
            for (CertificateRecord r : revoked) {
                // RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent (BC omits reason 0).
                b.addCRLEntry(new BigInteger(r.serial(), 16), Date.from(r.revoked()),
                        r.reason() == RevocationReason.UNSPECIFIED ? 0 : r.reason().code());
            }
            b.addExtension(Extension.authorityKeyIdentifier, false,
                    new JcaX509ExtensionUtils().createAuthorityKeyIdentifier(ca.getSubjectPublicKeyInfo()));
            b.addExtension(Extension.cRLNumber, false, new CRLNumber(BigInteger.valueOf(number)));
            X509CRLHolder crl = b.build(new EnclaveContentSigner(enclave, v.objectId(), key.algorithm()));
            LOG.log(System.Logger.Level.INFO, "signed CRL " + number + " of " + key.name() + " v" + v.version()
                    + " listing " + revoked.size() + " revoked certificate(s)");
            return new Crl(key.name(), v.version(), number, now, next, revoked.size(),
                    CertificateAuthority.pem("X509 CRL", crl.getEncoded()));
        } catch (EnclaveContentSigner.SigningFailed e) {
            throw Failures.of(e.enclaveException(), key.name());
        } catch (IOException | java.security.NoSuchAlgorithmException e) {
            throw new KmsError.Internal("could not build the CRL", e);
        }
    }

    private static String id(String key, int version) {
        return version + ":" + key;
    }
}
