package dev.enclavekms.cli;

import dev.enclavekms.client.CaCertificates;
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
@Command(name = "ca", description = "Certificate authority: publish CA certificates, issue certificates for CSRs.",
        subcommands = {CaCommand.Certs.class, CaCommand.Issue.class})
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
}
