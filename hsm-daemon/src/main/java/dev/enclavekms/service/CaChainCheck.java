package dev.enclavekms.service;

import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;

import java.io.IOException;
import java.io.StringReader;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The checks a certificate chain for an intermediate CA version passes before it is
 * stored (Admin.ImportCaCertificate). Each refusal is InvalidParameter on
 * {@code certificate_chain} with a message saying which certificate failed and why.
 */
final class CaChainCheck {
    static final int MAX_CHAIN_BYTES = 64 * 1024;
    static final int MAX_CERTIFICATES = 8;
    /** A certificate made minutes ago by a root whose clock runs ahead is still accepted. */
    private static final Duration SKEW = Duration.ofMinutes(5);
    private static final String PARAMETER = "certificate_chain";

    private CaChainCheck() {
    }

    /** The CERTIFICATE blocks of a PEM text, in order. */
    static List<X509CertificateHolder> parse(String pem) throws KmsError {
        if (pem == null || pem.isEmpty() || pem.length() > MAX_CHAIN_BYTES) {
            throw invalid("PEM text of 1 to " + MAX_CHAIN_BYTES + " bytes: the CA version's certificate, then"
                    + " its issuers up to the root");
        }
        List<X509CertificateHolder> out = new ArrayList<>();
        try (var reader = new org.bouncycastle.util.io.pem.PemReader(new StringReader(pem))) {
            for (var o = reader.readPemObject(); o != null; o = reader.readPemObject()) {
                if (!o.getType().equals("CERTIFICATE")) continue;
                if (out.size() == MAX_CERTIFICATES) throw invalid("more than " + MAX_CERTIFICATES + " certificates");
                out.add(new X509CertificateHolder(o.getContent()));
            }
        } catch (IOException | RuntimeException e) {
            throw invalid("not PEM certificates (" + e.getMessage() + ")");
        }
        if (out.isEmpty()) throw invalid("no CERTIFICATE block");
        return out;
    }

    /**
     * @param versionKey the public key of the CA version the first certificate must certify
     */
    static void check(List<X509CertificateHolder> chain, SubjectPublicKeyInfo versionKey, Instant now, int version)
            throws KmsError {
        X509CertificateHolder first = chain.getFirst();
        if (!first.getSubjectPublicKeyInfo().equals(versionKey)) {
            throw invalid("the first certificate (" + first.getSubject() + ") certifies another public key than"
                    + " version " + version + "'s; it must be the certificate signed for that version's request");
        }
        for (int i = 0; i < chain.size(); i++) {
            X509CertificateHolder c = chain.get(i);
            String which = (i == 0 ? "the CA certificate" : "issuer certificate " + i) + " (" + c.getSubject() + ")";
            BasicConstraints bc = BasicConstraints.fromExtensions(c.getExtensions());
            if (bc == null || !bc.isCA()) {
                throw invalid(which + " is not a CA certificate (it needs basicConstraints CA:TRUE)");
            }
            // Position i has i CA certificates below it in any path through this CA.
            if (i > 0 && bc.getPathLenConstraint() != null && bc.getPathLenConstraint().intValue() < i) {
                throw invalid(which + " has pathlen " + bc.getPathLenConstraint() + ", too small for " + i
                        + " CA certificate(s) below it");
            }
            KeyUsage ku = KeyUsage.fromExtensions(c.getExtensions());
            if (i == 0 && (ku == null || !ku.hasUsages(KeyUsage.keyCertSign | KeyUsage.cRLSign))) {
                throw invalid(which + " must have keyUsage keyCertSign and cRLSign: the CA signs certificates"
                        + " and CRLs with it");
            }
            if (i > 0 && ku != null && !ku.hasUsages(KeyUsage.keyCertSign)) {
                throw invalid(which + " lacks keyUsage keyCertSign");
            }
            if (now.plus(SKEW).isBefore(c.getNotBefore().toInstant())) {
                throw invalid(which + " is not valid before " + c.getNotBefore().toInstant());
            }
            if (!now.isBefore(c.getNotAfter().toInstant())) {
                throw invalid(which + " expired at " + c.getNotAfter().toInstant());
            }
            X509CertificateHolder issuer = i + 1 < chain.size() ? chain.get(i + 1) : c;
            if (!c.getIssuer().equals(issuer.getSubject())) {
                throw invalid(i + 1 < chain.size()
                        ? which + " was issued by " + c.getIssuer() + ", not by the next certificate ("
                                + issuer.getSubject() + "); give the chain in order, up to the root"
                        : "the chain ends with " + which + ", which is not self-signed; add its issuers up to the"
                                + " root");
            }
            if (!signedBy(c, issuer)) {
                throw invalid("the signature of " + which + " does not verify with the key of "
                        + (issuer == c ? "itself" : issuer.getSubject().toString()));
            }
        }
    }

    private static boolean signedBy(X509CertificateHolder c, X509CertificateHolder issuer) {
        try {
            return c.isSignatureValid(new JcaContentVerifierProviderBuilder().setProvider(new BouncyCastleProvider())
                    .build(issuer.getSubjectPublicKeyInfo()));
        } catch (Exception e) {
            return false;
        }
    }

    private static KmsError.InvalidParameter invalid(String why) {
        return new KmsError.InvalidParameter(PARAMETER, PARAMETER + ": " + why);
    }
}
