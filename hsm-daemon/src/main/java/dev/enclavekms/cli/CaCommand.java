package dev.enclavekms.cli;

import dev.enclavekms.client.CaCertificates;
import dev.enclavekms.client.CertificateRevocationLists;
import dev.enclavekms.client.RevokedCertificate;
import dev.enclavekms.client.IssuedCertificate;
import dev.enclavekms.client.KmsException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code kmsctl ca}: the certificate authority of CERT_AUTHORITY keys (docs/tls.md). */
@Command(name = "ca", description = "Certificate authority: publish CA certificates, issue certificates for CSRs, "
        + "revoke them and publish CRLs; intermediate CAs under an external root.",
        subcommands = {CaCommand.Certs.class, CaCommand.Issue.class, CaCommand.Revoke.class, CaCommand.Crl.class,
                CaCommand.CreateIntermediate.class, CaCommand.Csr.class, CaCommand.Import.class})
final class CaCommand extends CommandGroup {

    @Command(name = "certs", description = {"Print the CA certificates of every ENABLED or PENDING version of a "
            + "CERT_AUTHORITY key, concatenated: a CA file for relying parties.",
            "With --out, write them to FILE instead."})
    static final class Certs extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "KEY", description = "A CERT_AUTHORITY key.")
        String key;

        @Option(names = "--out", paramLabel = "FILE", description = "Write the PEM bundle to FILE.")
        Path out;

        @Override
        int run(Output output) throws KmsException, IOException {
            CaCertificates cas = kms().getCaCertificates(key);
            if (out != null) {
                Output.writeFile(out, cas.pem().getBytes(StandardCharsets.US_ASCII), false);
            }
            for (int v : cas.awaitingCertificate()) {
                env().err().println("kmsctl: " + cas.key() + " v" + v + " awaits its certificate from the external"
                        + " root (kmsctl ca csr, kmsctl ca import)");
            }
            if (output.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("key", cas.key());
                m.put("algorithm", cas.algorithm());
                List<Object> versions = new ArrayList<>();
                for (CaCertificates.Version v : cas.certificates()) {
                    versions.add(Map.of("version", (long) v.version(), "state", v.state(), "primary", v.primary()));
                }
                m.put("certificates", versions);
                if (out == null) m.put("pem", cas.pem());
                output.json(m);
            } else if (out == null) {
                output.text(cas.pem());
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "issue", description = {"Have a CERT_AUTHORITY key sign the PKCS#10 request in CSR (PEM; - for "
            + "standard input) and print the certificate.",
            "The request's signature, key strength, SANs (your grants' san patterns) and TTL are checked by the "
            + "daemon; a refusal is CertificateRefused with its reason."})
    static final class Issue extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "KEY", description = "A CERT_AUTHORITY key.")
        String key;

        @Parameters(index = "1", paramLabel = "CSR", description = "The request, PEM, or - for standard input.")
        Path csr;

        @Option(names = "--ttl", paramLabel = "DURATION", converter = Durations.Converter.class,
                description = "Validity, e.g. 1h, 12h (default and maximum: 24h).")
        Duration ttl;

        @Option(names = "--profile", paramLabel = "server|client|both", description = "Key usages (default server).")
        String profile;

        @Option(names = "--out", paramLabel = "FILE", description = "Write the certificate to FILE.")
        Path out;

        @Override
        int run(Output output) throws KmsException, IOException {
            byte[] request = csr.toString().equals("-") ? Inputs.readStdin(env()) : Inputs.read(env(), csr);
            IssuedCertificate c = kms().issueCertificate(key, new String(request, StandardCharsets.US_ASCII),
                    ttl == null || ttl.isZero() ? null : ttl.toSeconds(), profile);
            if (out != null) {
                Output.writeFile(out, c.certificate().getBytes(StandardCharsets.US_ASCII), false);
            }
            if (output.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("key", c.key());
                m.put("version", (long) c.version());
                m.put("serial", c.serial());
                m.put("subject", c.subject());
                m.put("sans", c.sans());
                m.put("not_before", c.notBefore().toString());
                m.put("not_after", c.notAfter().toString());
                m.put("profile", c.profile());
                if (out == null) m.put("certificate", c.certificate());
                output.json(m);
            } else {
                if (out == null) output.text(c.certificate());
                env().err().println("kmsctl: serial " + c.serial() + " for " + c.subject()
                        + (c.sans().isEmpty() ? "" : " " + String.join(", ", c.sans())) + ", valid until "
                        + c.notAfter() + " (" + c.key() + " v" + c.version() + ")");
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "revoke", description = {"Revoke the certificate of serial SERIAL (hex, as ca issue prints it; "
            + "colons allowed) for good.",
            "The CRL of the CA version that issued it lists it from now on (kmsctl ca crl)."})
    static final class Revoke extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "SERIAL", description = "The certificate's serial number, hex.")
        String serial;

        @Option(names = "--reason", paramLabel = "REASON", description = "RFC 5280 CRLReason: unspecified (default), "
                + "keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, "
                + "privilegeWithdrawn, aACompromise.")
        String reason;

        @Override
        int run(Output output) throws KmsException, IOException {
            RevokedCertificate r = kms().revokeCertificate(serial, reason);
            if (output.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("serial", r.serial());
                m.put("key", r.key());
                m.put("version", (long) r.version());
                m.put("reason", r.reason());
                m.put("revoked", r.revoked().toString());
                m.put("not_after", r.notAfter().toString());
                m.put("already_revoked", r.alreadyRevoked());
                output.json(m);
            } else {
                output.text((r.alreadyRevoked() ? "already revoked: " : "revoked: ") + r.serial() + " of " + r.key()
                        + " v" + r.version() + " (" + r.reason() + ", " + r.revoked() + ")\n");
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "crl", description = {"Print the current CRL of every CA version of a CERT_AUTHORITY key "
            + "(PEM, concatenated): what openssl verify -crl_check -CRLfile reads.",
            "With --out, write them to FILE instead."})
    static final class Crl extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "KEY", description = "A CERT_AUTHORITY key.")
        String key;

        @Option(names = "--out", paramLabel = "FILE", description = "Write the CRLs to FILE.")
        Path out;

        @Override
        int run(Output output) throws KmsException, IOException {
            CertificateRevocationLists crls = kms().getCrl(key);
            if (out != null) {
                Output.writeFile(out, crls.pem().getBytes(StandardCharsets.US_ASCII), false);
            }
            if (output.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("key", crls.key());
                List<Object> list = new ArrayList<>();
                for (CertificateRevocationLists.Crl c : crls.crls()) {
                    Map<String, Object> e = new LinkedHashMap<>();
                    e.put("version", (long) c.version());
                    e.put("number", c.number());
                    e.put("this_update", c.thisUpdate().toString());
                    e.put("next_update", c.nextUpdate().toString());
                    e.put("revoked", (long) c.revoked());
                    list.add(e);
                }
                m.put("crls", list);
                if (out == null) m.put("pem", crls.pem());
                output.json(m);
            } else if (out == null) {
                output.text(crls.pem());
            } else {
                for (CertificateRevocationLists.Crl c : crls.crls()) {
                    env().err().println("kmsctl: " + crls.key() + " v" + c.version() + ": CRL " + c.number()
                            + ", " + c.revoked() + " revoked, next update " + c.nextUpdate());
                }
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "create-intermediate", description = {"Create a CERT_AUTHORITY key that is an intermediate CA: "
            + "no self-signed root; each version's request (kmsctl ca csr) is signed by an external root and "
            + "imported (kmsctl ca import) before the version can issue."})
    static final class CreateIntermediate extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "KEY", description = "The new key's name.")
        String key;

        @Option(names = "--algorithm", paramLabel = "ALG",
                description = "EC_P256_SHA256 (default), EC_P384_SHA384 or RSA_3072_PSS_SHA256.")
        String algorithm;

        @Override
        int run(Output output) throws KmsException, IOException {
            KeyTables.describe(output, kms().createIntermediateCaKey(key, algorithm));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "csr", description = {"Print the PKCS#10 request of a version of an intermediate CA key, signed "
            + "inside the enclave, for the external root to sign (CA:TRUE, keyCertSign, cRLSign)."})
    static final class Csr extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "KEY", description = "An intermediate CERT_AUTHORITY key.")
        String key;

        @Option(names = "--version", paramLabel = "N", description = "The key version (default: the latest).")
        Integer version;

        @Option(names = "--subject", paramLabel = "DN", description = "Subject, e.g. 'CN=Edge CA,O=Acme' "
                + "(default O=enclave-kms,CN=KEY vN).")
        String subject;

        @Option(names = "--out", paramLabel = "FILE", description = "Write the request to FILE.")
        Path out;

        @Override
        int run(Output output) throws KmsException, IOException {
            String csr = kms().getCaCsr(key, version, subject);
            if (out != null) {
                Output.writeFile(out, csr.getBytes(StandardCharsets.US_ASCII), false);
            }
            if (output.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("key", key);
                if (out == null) m.put("csr", csr);
                output.json(m);
            } else if (out == null) {
                output.text(csr);
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "import", description = {"Import the certificate the external root signed for a version of an "
            + "intermediate CA key: CHAIN is PEM, the version's certificate first, then its issuers up to and "
            + "including the root (- for standard input)."})
    static final class Import extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "KEY", description = "An intermediate CERT_AUTHORITY key.")
        String key;

        @Parameters(index = "1", paramLabel = "VERSION", description = "The key version the certificate is for.")
        int version;

        @Parameters(index = "2", paramLabel = "CHAIN", description = "The chain, PEM, or - for standard input.")
        Path chain;

        @Override
        int run(Output output) throws KmsException, IOException {
            byte[] text = chain.toString().equals("-") ? Inputs.readStdin(env()) : Inputs.read(env(), chain);
            String subject = kms().importCaCertificate(key, version, new String(text, StandardCharsets.US_ASCII));
            if (output.json()) {
                output.json(Map.of("key", key, "version", (long) version, "subject", subject));
            } else {
                output.text("imported: " + key + " v" + version + " is " + subject + "\n");
            }
            return Kmsctl.EXIT_OK;
        }
    }
}
