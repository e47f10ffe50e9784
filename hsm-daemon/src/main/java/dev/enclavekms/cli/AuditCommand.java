package dev.enclavekms.cli;

import dev.enclavekms.audit.AuditVerifier;
import dev.enclavekms.client.AuditCheckpoint;
import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.PublicKeyInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code kmsctl audit ...}: verify the audit log offline, and the daemon's audit methods
 * (public key, HMAC of a value to search for, checkpoint on demand). docs/audit.md.
 */
@Command(name = "audit", description = "Verify the audit log; export its public key; HMAC a value to search it for.",
        subcommands = {AuditCommand.Verify.class, AuditCommand.Hmac.class, AuditCommand.PublicKeyExport.class,
                AuditCommand.Checkpoint.class})
final class AuditCommand extends CommandGroup {

    /** {@code audit verify}: the log is intact and its end accounted for. */
    static final int EXIT_INTACT = Kmsctl.EXIT_OK;
    /** {@code audit verify}: a record failed (the first bad one is printed), or a file cannot be read. */
    static final int EXIT_TAMPERED = Kmsctl.EXIT_FAILED;
    /** {@code audit verify}: nothing failed, but not everything could be proven. */
    static final int EXIT_INCOMPLETE = 5;

    private static final Pattern HEAD = Pattern.compile("(\\d{1,19}):([0-9a-f]{64})");

    @Command(name = "verify", description = {
            "Check audit log files offline: every record's hash, the chain of hashes across files, sequence"
                    + " numbers without gap, and every checkpoint's signature. Reports the first bad record.",
            "Exit 0: intact, every signature verified, and the end of the log accounted for (the daemon's stop"
                    + " checkpoint, or --head/--daemon found). Exit 1: tampered or damaged (the first bad record"
                    + " is printed), or a file cannot be read. Exit 5: nothing failed but not everything is"
                    + " proven: no --public-key, or records after the last checkpoint that no signature or head"
                    + " covers (the daemon is running, or crashed)."})
    static final class Verify extends DaemonCommand {
        @Parameters(arity = "1..*", paramLabel = "DIR|FILE", description = "The audit directory, or log files.")
        List<Path> inputs;

        @Option(names = "--public-key", paramLabel = "PEM", description = "The audit public key (kmsctl audit"
                + " public-key --out), exported beforehand and kept apart from the log.")
        Path publicKey;

        @Option(names = "--head", paramLabel = "SEQ:HASH", description = "A head the log must reach, e.g. from"
                + " kmsctl audit checkpoint, saved elsewhere: detects records cut off its end.")
        String head;

        @Option(names = "--daemon", description = "Ask the running daemon for a checkpoint now and require the log"
                + " to reach it (and, without --public-key, take the public key from the daemon).")
        boolean daemon;

        @Override
        int run(Output output) throws KmsException, IOException {
            AuditVerifier.ExpectedHead expected = head == null ? null : parseHead(head);
            if (head != null && daemon) {
                throw new picocli.CommandLine.ParameterException(commandLine(), "give --head or --daemon, not both");
            }
            PublicKey key = publicKey == null ? null : readPublicKey(publicKey);
            List<String> sources = new ArrayList<>();
            if (daemon) {
                AuditCheckpoint c = kms().auditCheckpoint();
                expected = new AuditVerifier.ExpectedHead(c.seq(), c.hash());
                sources.add("head from the daemon: checkpoint seq " + c.seq() + " (" + c.file() + ")");
                if (key == null) {
                    key = toKey(kms().auditPublicKey().pem(), "the daemon's public key");
                    sources.add("public key from the daemon (a copy exported beforehand, --public-key, is stronger)");
                }
            }
            AuditVerifier.Report report;
            try {
                report = AuditVerifier.verify(inputs, key, expected);
            } catch (IOException e) {
                throw CliFailure.local("cannot read the audit log: " + e.getMessage());
            }
            print(output, report, sources);
            return switch (report.status()) {
                case INTACT -> EXIT_INTACT;
                case TAMPERED -> EXIT_TAMPERED;
                case INCOMPLETE -> EXIT_INCOMPLETE;
            };
        }

        private AuditVerifier.ExpectedHead parseHead(String s) {
            Matcher m = HEAD.matcher(s.strip());
            if (!m.matches()) {
                throw new picocli.CommandLine.ParameterException(commandLine(),
                        "--head: expected SEQ:HASH (a number, a colon, 64 lower-case hex digits)");
            }
            return new AuditVerifier.ExpectedHead(Long.parseLong(m.group(1)), m.group(2));
        }

        private PublicKey readPublicKey(Path file) {
            return toKey(new String(Inputs.read(env(), file), StandardCharsets.US_ASCII), file.toString());
        }

        private static PublicKey toKey(String pem, String what) {
            try {
                return new PublicKeyInfo("audit", 1, "EC_P256_SHA256", pem).toPublicKey();
            } catch (GeneralSecurityException e) {
                throw CliFailure.local(what + " is not an EC P-256 public key in PEM: " + e.getMessage());
            }
        }

        private static void print(Output out, AuditVerifier.Report r, List<String> sources) {
            if (out.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("status", r.status().name());
                if (r.problem() != null) {
                    Map<String, Object> p = new LinkedHashMap<>();
                    p.put("file", r.problem().file().toString());
                    p.put("line", r.problem().line());
                    if (r.problem().seq() != null) p.put("seq", r.problem().seq());
                    p.put("reason", r.problem().reason());
                    m.put("first_bad_record", p);
                }
                m.put("records", r.records());
                if (r.firstSeq() != null) m.put("first_seq", r.firstSeq());
                if (r.lastSeq() != null) m.put("last_seq", r.lastSeq());
                if (r.lastHash() != null) m.put("last_hash", r.lastHash());
                m.put("checkpoints", (long) r.checkpoints());
                m.put("signatures_verified", (long) r.signaturesVerified());
                if (r.lastCheckpointSeq() != null) m.put("last_checkpoint_seq", r.lastCheckpointSeq());
                m.put("uncovered_records", r.uncovered());
                m.put("stopped", r.stopped());
                List<String> notes = new ArrayList<>(sources);
                notes.addAll(r.notes());
                m.put("notes", notes);
                out.json(m);
                return;
            }
            Output.Fields f = new Output.Fields();
            f.add("result", switch (r.status()) {
                case INTACT -> "INTACT";
                case TAMPERED -> "TAMPERED";
                case INCOMPLETE -> "INCOMPLETE (nothing failed, but not everything is proven)";
            });
            if (r.problem() != null) {
                f.add("first bad record", r.problem().file() + " line " + r.problem().line()
                        + (r.problem().seq() == null ? "" : " (seq " + r.problem().seq() + ")"));
                f.add("reason", r.problem().reason());
            }
            f.add("records", r.records() + (r.firstSeq() == null ? "" : " (seq " + r.firstSeq() + ".." + r.lastSeq() + ")"));
            f.add("checkpoints", r.checkpoints() + ", " + r.signaturesVerified() + " signatures verified");
            if (r.problem() == null && r.lastHash() != null) {
                f.add("head", r.lastSeq() + ":" + r.lastHash());
            }
            out.fields(f);
            for (String s : sources) out.line("note: " + s);
            for (String n : r.notes()) out.line("note: " + n);
        }
    }

    @Command(name = "hmac", description = "Print how the audit log shows VALUE (hmac-sha256:<hex>, the HMAC under"
            + " the audit key inside the enclave), to search the log for it. Admin.")
    static final class Hmac extends DaemonCommand {
        @Parameters(index = "0", arity = "0..1", paramLabel = "VALUE",
                description = "The value, e.g. a context value; read from standard input (one line) when omitted,"
                        + " so that it stays out of the process list.")
        String value;

        @Override
        int run(Output output) throws KmsException, IOException {
            String v = value;
            if (v == null) {
                String in = new String(Inputs.readStdin(env()), StandardCharsets.UTF_8);
                v = in.endsWith("\n") ? in.substring(0, in.length() - (in.endsWith("\r\n") ? 2 : 1)) : in;
            }
            String mac = kms().auditHmac(v);
            if (output.json()) {
                output.json(Map.of("hmac", mac));
            } else {
                output.line(mac);
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "public-key", description = "Print the audit log's public key (PEM), which audit verify checks"
            + " checkpoint signatures with. Export it once and keep it where whoever can change the log cannot. Admin.")
    static final class PublicKeyExport extends DaemonCommand {
        @Option(names = "--out", paramLabel = "FILE", description = "Write the PEM to FILE.")
        Path out;

        @Override
        int run(Output output) throws KmsException, IOException {
            PublicKeyInfo p = kms().auditPublicKey();
            String pem = p.pem().endsWith("\n") ? p.pem() : p.pem() + "\n";
            if (out != null) {
                Output.writeFile(out, pem.getBytes(StandardCharsets.US_ASCII), false);
            }
            if (output.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("key", p.key());
                m.put("version", (long) p.version());
                m.put("algorithm", p.algorithm());
                if (out != null) m.put("out", out.toString());
                else m.put("pem", p.pem());
                output.json(m);
            } else if (out != null) {
                output.fields(new Output.Fields().add("key", p.key()).add("version", p.version())
                        .add("algorithm", p.algorithm()).add("pem", "written to " + out));
            } else {
                output.text(pem);
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "checkpoint", description = "Have the daemon write a signed checkpoint now; print it as SEQ:HASH."
            + " Saved elsewhere, it is a head audit verify --head can prove the log reaches. Admin.")
    static final class Checkpoint extends DaemonCommand {
        @Override
        int run(Output output) throws KmsException, IOException {
            AuditCheckpoint c = kms().auditCheckpoint();
            if (output.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("seq", c.seq());
                m.put("hash", c.hash());
                m.put("time", c.time());
                m.put("file", c.file());
                output.json(m);
            } else {
                output.line(c.seq() + ":" + c.hash());
            }
            return Kmsctl.EXIT_OK;
        }
    }
}
