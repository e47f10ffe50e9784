package dev.enclavekms.cli;

import dev.enclavekms.client.IssuedTlsCertificate;
import dev.enclavekms.client.KmsException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code kmsctl tls}: certificates for TLS_SERVER / TLS_CLIENT keys kept in the HSM (docs/tls.md). */
@Command(name = "tls", description = "TLS keys in the HSM: issue and renew their certificates.",
        subcommands = {TlsCommand.Issue.class})
final class TlsCommand extends CommandGroup {

    @Command(name = "issue", description = {"Certify the primary version of a TLS_SERVER or TLS_CLIENT key with a "
            + "CERT_AUTHORITY key. The daemon makes the request inside the enclave, the CA checks it under your "
            + "grants (san patterns), and the certificate is also stored on the token beside the private key.",
            "With --renew-before and --out-chain, nothing is done while the certificate in that file is valid for "
            + "longer than the given time: run it from a timer (docs/tls.md)."})
    static final class Issue extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "KEY", description = "A TLS_SERVER or TLS_CLIENT key.")
        String key;

        @Option(names = "--ca", required = true, paramLabel = "CA", description = "The CERT_AUTHORITY key that signs.")
        String ca;

        @Option(names = "--san", paramLabel = "DNS:name|IP:address", description = "A subject alternative name "
                + "(repeatable).")
        List<String> sans = new ArrayList<>();

        @Option(names = "--cn", paramLabel = "NAME", description = "The subject's CN (default: the first SAN's name).")
        String commonName;

        @Option(names = "--ttl", paramLabel = "DURATION", converter = Durations.Converter.class,
                description = "Validity, e.g. 1h, 12h (default and maximum: 24h).")
        Duration ttl;

        @Option(names = "--out-cert", paramLabel = "FILE", description = "Write the certificate to FILE.")
        Path outCert;

        @Option(names = "--out-chain", paramLabel = "FILE", description = "Write the certificate and its CA "
                + "certificate to FILE (what a TLS server sends).")
        Path outChain;

        @Option(names = "--renew-before", paramLabel = "DURATION", converter = Durations.Converter.class,
                description = "Only issue when the certificate in --out-chain (or --out-cert) expires within "
                        + "DURATION, is missing or unreadable.")
        Duration renewBefore;

        @Override
        int run(Output output) throws KmsException, IOException {
            Path existing = outChain != null ? outChain : outCert;
            if (renewBefore != null) {
                if (existing == null) {
                    throw new CliFailure(Kmsctl.EXIT_USAGE, "--renew-before needs --out-chain or --out-cert");
                }
                Instant notAfter = notAfter(existing);
                if (notAfter != null && notAfter.isAfter(Instant.now().plus(renewBefore))) {
                    if (output.json()) {
                        output.json(Map.of("key", key, "renewed", false, "not_after", notAfter.toString()));
                    } else {
                        env().err().println("kmsctl: " + existing + " is valid until " + notAfter + "; not renewed");
                    }
                    return Kmsctl.EXIT_OK;
                }
            }
            IssuedTlsCertificate t = kms().issueTlsCertificate(key, ca, sans, commonName,
                    ttl == null || ttl.isZero() ? null : ttl.toSeconds());
            var c = t.certificate();
            if (outCert != null) replace(outCert, c.certificate());
            if (outChain != null) replace(outChain, t.chainPem());
            if (output.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("key", t.key());
                m.put("version", (long) t.version());
                m.put("ca", c.key());
                m.put("ca_version", (long) c.version());
                m.put("serial", c.serial());
                m.put("subject", c.subject());
                m.put("sans", c.sans());
                m.put("not_before", c.notBefore().toString());
                m.put("not_after", c.notAfter().toString());
                m.put("profile", c.profile());
                m.put("alias", t.alias());
                m.put("pkcs11_uri", t.pkcs11Uri());
                if (renewBefore != null) m.put("renewed", true);
                if (outCert == null && outChain == null) m.put("certificate", c.certificate());
                output.json(m);
            } else {
                if (outCert == null && outChain == null) output.text(c.certificate());
                env().err().println("kmsctl: serial " + c.serial() + " for " + t.key() + " v" + t.version()
                        + " (" + String.join(", ", c.sans()) + "), valid until " + c.notAfter() + ", signed by "
                        + c.key() + " v" + c.version());
                env().err().println("kmsctl: on the token as " + t.pkcs11Uri());
            }
            return Kmsctl.EXIT_OK;
        }

        /** The first certificate's notAfter, or null when the file is missing or holds no certificate. */
        private static Instant notAfter(Path file) {
            try {
                byte[] pem = Files.readAllBytes(file);
                var cert = (X509Certificate) CertificateFactory.getInstance("X.509")
                        .generateCertificate(new ByteArrayInputStream(pem));
                return cert.getNotAfter().toInstant();
            } catch (NoSuchFileException e) {
                return null;
            } catch (IOException | CertificateException | RuntimeException e) {
                return null; // unreadable: issue a fresh one
            }
        }

        /** Writes beside the file and renames over it: a server reloading never reads half a chain. */
        private static void replace(Path file, String pem) throws IOException {
            Path abs = file.toAbsolutePath();
            Path tmp = Files.createTempFile(abs.getParent(), "." + abs.getFileName(), ".tmp");
            try {
                Files.writeString(tmp, pem, StandardCharsets.US_ASCII);
                try { // certificates are public; a TLS server running as another user reads them
                    Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
                } catch (UnsupportedOperationException notPosix) {
                    // the platform's defaults apply
                }
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
        }
    }
}
