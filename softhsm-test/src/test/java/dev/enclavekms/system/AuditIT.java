package dev.enclavekms.system;

import dev.enclavekms.audit.AuditKeys;
import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.audit.AuditPadding;
import dev.enclavekms.audit.AuditRecords;
import dev.enclavekms.audit.CanonicalJson;
import dev.enclavekms.client.AuditUnavailableException;
import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.DecryptResult;
import dev.enclavekms.client.DecryptionFailedException;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.Signature;
import dev.enclavekms.json.Json;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The audit log of a real daemon process on its own SoftHSM token: a real workload (keys,
 * data keys, decryptions, a call denied to another Unix user, lifecycle changes), then
 * {@code bin/kmsctl audit verify} on the stopped daemon's log; each way of tampering with a
 * copy of it, detected and located; the daemon failing closed when its log cannot be written
 * (the directory replaced by a file; a full disk), and resuming; and no secret the test used
 * anywhere in the log.
 *
 * <p>The daemon runs with a checkpoint every 8 records and 4 KiB log files, so that the
 * workload spans several files and checkpoints.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AuditIT {
    private static final Map<String, String> CONTEXT = Map.of("model", "llama-3-8b", "tier", "hot");
    private static final String ADMIN = "dev.enclavekms.Admin.";
    private static final String KMS = "dev.enclavekms.Kms.";

    @TempDir
    static Path dir;
    static DaemonProcess daemon;
    static Path pem;
    /** Everything secret the test saw: data keys, plaintexts, ciphertexts, PINs. */
    static final List<byte[]> secrets = new ArrayList<>();
    /** Strings that must appear in the log only as HMACs. */
    static final List<String> hmacOnly = new ArrayList<>(CONTEXT.values());
    static String modelHmac;
    static Path mounted;
    static final List<Path> linkDirs = new ArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        daemon = DaemonProcess.start(dir, List.of("--test-audit-checkpoint-records", "8",
                "--test-audit-max-file-bytes", "4096"));
    }

    @AfterAll
    static void stop() throws Exception {
        daemon.close();
        if (mounted != null) {
            Commands.run("umount", mounted.toString());
        }
        for (Path d : linkDirs) {
            try (Stream<Path> s = Files.list(d)) {
                for (Path p : s.toList()) Files.delete(p);
            }
            Files.delete(d);
        }
    }

    /** How the verifier names a range of seqs: "7" or "7..9". */
    private static String range(long from, long to) {
        return from == to ? String.valueOf(from) : from + ".." + to;
    }

    private static Path auditDir() {
        return daemon.stateDir().resolve("audit");
    }

    private static KmsClient client() throws Exception {
        return KmsClient.connect(daemon.socket());
    }

    private static Commands.Result kmsctl(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Commands.repoFile("bin/kmsctl").toString(), "--socket",
                daemon.socket().toString()));
        cmd.addAll(List.of(args));
        return Commands.run(cmd, Map.of(), null);
    }

    private static List<Map<String, Object>> records(Path auditDir) throws Exception {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Path f : AuditLog.logFiles(auditDir)) {
            for (String line : AuditPadding.lines(f)) { // a running daemon's file ends in zero padding
                out.add(CanonicalJson.parseCanonical(line));
            }
        }
        return out;
    }

    private static void remember(byte[]... values) {
        for (byte[] v : values) secrets.add(v.clone());
    }

    // ------------------------------------------------------------------ workload

    @Test
    @Order(1)
    void realWorkload_runsAndThePublicKeyAndAnHmacAreExported() throws Exception {
        pem = dir.resolve("audit-public.pem");
        kmsctl("audit", "public-key", "--out", pem.toString()).requireSuccess();
        try (KmsClient kms = client()) {
            kms.createKey("weights", "ENCRYPT", null, "model weights", List.of("model"));
            kms.createKey("signer", "SIGN", "EC_P256_SHA256", null, null);
            List<byte[]> ciphertexts = new ArrayList<>();
            DataKey one = kms.generateDataKey("weights", CONTEXT);
            remember(one.plaintext(), one.ciphertext());
            ciphertexts.add(one.ciphertext());
            for (DataKey dk : kms.generateDataKeys("weights", 10, CONTEXT)) {
                remember(dk.plaintext(), dk.ciphertext());
                ciphertexts.add(dk.ciphertext());
            }
            byte[] secret = "the database password: hunter2-correct-horse".getBytes(StandardCharsets.UTF_8);
            remember(secret);
            byte[] sealed = kms.encrypt("weights", secret, CONTEXT).ciphertext();
            remember(sealed);
            remember(kms.decrypt(sealed, CONTEXT).plaintext());
            for (byte[] ct : ciphertexts.subList(0, 5)) {
                remember(kms.decrypt(ct, CONTEXT).plaintext());
            }
            for (DecryptResult r : kms.decryptBatch(ciphertexts, CONTEXT)) {
                remember(((dev.enclavekms.client.Plaintext) r).plaintext());
            }
            assertThrows(DecryptionFailedException.class, () -> kms.decrypt(sealed, Map.of("model", "other", "tier", "hot")));
            hmacOnly.add("other");
            byte[] message = "release manifest v7".getBytes(StandardCharsets.UTF_8);
            Signature sig = kms.sign("signer", message);
            remember(sig.signature());
            assertTrue(kms.verify("signer", sig.version(), sig.signature(), message));
            kms.getPublicKey("signer");
            kms.rotateKey("weights");
            kms.disableKeyVersion("weights", 1);
            kms.enableKeyVersion("weights", 1);
            kms.scheduleKeyVersionDestruction("weights", 1, 7);
            kms.cancelKeyVersionDestruction("weights", 1);
            kms.status();
        }
        remember(Files.readString(daemon.pinFile()).strip().getBytes(StandardCharsets.US_ASCII));
        remember(Files.readString(daemon.stateDir().resolve("so-pin")).strip().getBytes(StandardCharsets.US_ASCII));

        // Denied: another Unix user, who may connect (through a link to the socket in its
        // group) but holds no admin grant.
        Commands.Result denied = asNobody("dev.enclavekms.Admin.ListKeys");
        assertTrue(denied.stdout().contains("dev.enclavekms.Admin.PermissionDenied"), denied.stdout() + denied.stderr());

        Commands.Result hmac = kmsctl("audit", "hmac", "llama-3-8b").requireSuccess();
        modelHmac = hmac.stdout().strip();
        assertTrue(modelHmac.matches("hmac-sha256:[0-9a-f]{64}"), modelHmac);
    }

    /** One raw varlink call as user nobody, through a hard link to the socket that nobody's group may use. */
    private static Commands.Result asNobody(String method) throws Exception {
        // Not under the test's temporary directory: that is 0700, and nobody must reach the link.
        Path linkDir = Files.createTempDirectory("audit-it-nobody");
        linkDirs.add(linkDir);
        Files.setPosixFilePermissions(linkDir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path link = linkDir.resolve("kms.sock");
        Files.deleteIfExists(link);
        Files.createLink(link, daemon.socket());
        Commands.run("chgrp", "nogroup", link.toString()).requireSuccess();
        String script = "import json,socket,sys\n"
                + "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
                + "s.sendall(json.dumps({'method': sys.argv[2]}).encode() + b'\\0')\n"
                + "r=b''\n"
                + "while not r.endswith(b'\\0'):\n"
                + "    c=s.recv(65536)\n"
                + "    if not c: break\n"
                + "    r+=c\n"
                + "print(r.rstrip(b'\\0').decode())\n";
        Path py = linkDir.resolve("call.py");
        Files.writeString(py, script);
        return Commands.run(List.of("runuser", "-u", "nobody", "-g", "nogroup", "--", "python3", py.toString(),
                link.toString(), method), Map.of(), null);
    }

    // ------------------------------------------------------------------ verify

    @Test
    @Order(2)
    void stoppedDaemon_kmsctlAuditVerify_intactAcrossFilesWithEveryCheckpointSigned() throws Exception {
        daemon.stop();

        Commands.Result r = kmsctl("audit", "verify", "--public-key", pem.toString(), auditDir().toString());

        assertEquals(0, r.exit(), r.stdout() + r.stderr());
        assertTrue(r.stdout().startsWith("result:       INTACT\n"), r.stdout());
        List<Path> files = AuditLog.logFiles(auditDir());
        assertTrue(files.size() >= 3, "rotated into " + files.size() + " files");
        List<Map<String, Object>> all = records(auditDir());
        List<Object> reasons = all.stream().filter(m -> "checkpoint".equals(m.get("type"))).map(m -> m.get("reason")).toList();
        assertTrue(reasons.contains("count") && reasons.contains("rotate"), reasons.toString());
        assertEquals("stop", all.getLast().get("reason"));
    }

    @Test
    @Order(3)
    void records_holdIdentityMethodKeyVersionOutcome_andContextOnlyAsHmacs() throws Exception {
        List<Map<String, Object>> calls = records(auditDir()).stream().filter(m -> "call".equals(m.get("type"))).toList();

        Map<String, Object> gdk = only(calls, KMS + "GenerateDataKey");
        assertEquals("weights", gdk.get("key"));
        assertEquals(1L, gdk.get("version"));
        assertEquals("ok", gdk.get("outcome"));
        assertEquals("root", gdk.get("user"));
        assertEquals(modelHmac, ((Map<?, ?>) gdk.get("context")).get("model"), "searchable with kmsctl audit hmac");

        Map<String, Object> denied = calls.stream().filter(m -> "nobody".equals(m.get("user"))).findFirst().orElseThrow();
        assertEquals(ADMIN + "ListKeys", denied.get("method"));
        assertEquals(ADMIN + "PermissionDenied", denied.get("outcome"));

        assertTrue(calls.stream().anyMatch(m -> (KMS + "DecryptionFailed").equals(m.get("outcome"))));
        Map<String, Object> rotate = only(calls, ADMIN + "RotateKey");
        assertEquals("weights", rotate.get("key"));
        assertEquals(2L, rotate.get("version"));
        Map<String, Object> schedule = only(calls, ADMIN + "ScheduleKeyVersionDestruction");
        assertEquals(1L, schedule.get("version"));
        assertEquals(7L, schedule.get("wait_days"));
        Map<String, Object> batch = only(calls, KMS + "DecryptBatch");
        assertEquals(11L, batch.get("count"));
        assertEquals(0L, batch.get("failed"));
        assertTrue(calls.stream().anyMatch(m -> (ADMIN + "AuditHmac").equals(m.get("method"))));
    }

    private static Map<String, Object> only(List<Map<String, Object>> calls, String method) {
        List<Map<String, Object>> m = calls.stream().filter(c -> method.equals(c.get("method"))).toList();
        assertEquals(1, m.size(), method);
        return m.getFirst();
    }

    // ------------------------------------------------------------------ tampering

    /** A copy of the stopped daemon's log, tampered with by {@code how}, and what kmsctl says of it. */
    private static Commands.Result tampered(String name, Consumer<List<List<String>>> how, String... options)
            throws Exception {
        Path copy = dir.resolve("tampered-" + name);
        Files.createDirectories(copy);
        List<Path> files = AuditLog.logFiles(auditDir());
        List<List<String>> contents = new ArrayList<>();
        for (Path f : files) contents.add(new ArrayList<>(Files.readAllLines(f, StandardCharsets.UTF_8)));
        how.accept(contents);
        for (int i = 0; i < files.size(); i++) {
            if (!contents.get(i).isEmpty()) {
                Files.write(copy.resolve(files.get(i).getFileName()), contents.get(i), StandardCharsets.UTF_8);
            }
        }
        List<String> args = new ArrayList<>(List.of("audit", "verify", "--public-key", pem.toString()));
        args.addAll(List.of(options));
        args.add(copy.toString());
        return kmsctl(args.toArray(String[]::new));
    }

    private static Path second(String name) throws IOException {
        return dir.resolve("tampered-" + name).resolve(AuditLog.logFiles(auditDir()).get(1).getFileName());
    }

    private static long seqOf(String line) throws Exception {
        return (Long) Json.parseObject(line).get("seq");
    }

    /** The index of the first call record in {@code lines} after {@code from}. */
    private static int callAfter(List<String> lines, int from) {
        for (int i = from; i < lines.size(); i++) {
            if (lines.get(i).contains("\"type\":\"call\"")) return i;
        }
        throw new AssertionError("no call record");
    }

    private static void assertLocated(Commands.Result r, Path file, int line, long seq, String reason) {
        assertEquals(1, r.exit(), r.stdout() + r.stderr());
        assertTrue(r.stdout().contains("result:            TAMPERED\n"), r.stdout());
        assertTrue(r.stdout().contains("first bad record:  " + file + " line " + line + " (seq " + seq + ")\n"),
                r.stdout());
        assertTrue(r.stdout().contains(reason), r.stdout());
    }

    @Test
    @Order(4)
    void editAField_detectedAtThatRecord() throws Exception {
        List<String> f = Files.readAllLines(AuditLog.logFiles(auditDir()).get(1));
        int i = callAfter(f, 2);
        Commands.Result r = tampered("edit", c -> c.get(1).set(i, c.get(1).get(i).replace("\"user\":\"root\"",
                "\"user\":\"alice\"")));

        assertLocated(r, second("edit"), i + 1, seqOf(f.get(i)), "does not match its hash");
    }

    @Test
    @Order(5)
    void deleteALine_detectedWhereTheGapIs() throws Exception {
        List<String> f = Files.readAllLines(AuditLog.logFiles(auditDir()).get(1));
        int i = callAfter(f, 2);
        Commands.Result r = tampered("delete", c -> c.get(1).remove(i));

        assertLocated(r, second("delete"), i + 1, seqOf(f.get(i)) + 1, "record " + seqOf(f.get(i)) + " is missing");
    }

    @Test
    @Order(6)
    void swapTwoLines_detectedAtTheFirstOutOfPlace() throws Exception {
        List<String> f = Files.readAllLines(AuditLog.logFiles(auditDir()).get(1));
        int i = callAfter(f, 2);
        Commands.Result r = tampered("swap", c -> {
            List<String> lines = c.get(1);
            String a = lines.get(i);
            lines.set(i, lines.get(i + 1));
            lines.set(i + 1, a);
        });

        assertLocated(r, second("swap"), i + 1, seqOf(f.get(i)) + 1, "is missing");
    }

    @Test
    @Order(7)
    void insertAForgedLine_detectedAsInserted() throws Exception {
        List<String> f = Files.readAllLines(AuditLog.logFiles(auditDir()).get(1));
        int i = callAfter(f, 2);
        // A forger who knows the format: a record chained to its predecessor, with the next seq.
        Map<String, Object> forged = new LinkedHashMap<>(Json.parseObject(f.get(i)));
        forged.put("user", "root");
        forged.put("method", ADMIN + "ListKeys");
        forged.put("prev", Json.parseObject(f.get(i - 1)).get("hash"));
        forged.put("hash", AuditRecords.hash(forged));
        String line = CanonicalJson.write(forged);
        Commands.Result r = tampered("insert", c -> c.get(1).add(i, line));

        assertLocated(r, second("insert"), i + 1, seqOf(f.get(i)), "was inserted");
    }

    @Test
    @Order(8)
    void truncateAfterACheckpoint_recordsItCoveredMissing_detected() throws Exception {
        // Cut the records between two checkpoints, keep the later one: it covered them.
        List<Map<String, Object>> all = records(auditDir());
        List<Long> checkpoints = all.stream().filter(m -> "checkpoint".equals(m.get("type")))
                .map(m -> (Long) m.get("seq")).toList();
        int k = 0;
        while (checkpoints.get(k + 1) - checkpoints.get(k) < 3) k++; // two checkpoints with records between
        long from = checkpoints.get(k) + 1;
        long to = checkpoints.get(k + 1) - 1;
        Commands.Result r = tampered("cut-middle", c -> c.forEach(lines -> lines.removeIf(l -> {
            try {
                long s = seqOf(l);
                return s >= from && s <= to;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        })));

        assertEquals(1, r.exit(), r.stdout());
        assertTrue(r.stdout().contains("records " + range(from, to) + " are missing"), r.stdout());
        assertTrue(r.stdout().contains("(seq " + (to + 1) + ")"), r.stdout());
    }

    @Test
    @Order(9)
    void truncateTheTailAfterACheckpoint_incompleteAlone_tamperedAgainstTheSavedHead() throws Exception {
        List<Map<String, Object>> all = records(auditDir());
        Map<String, Object> head = all.getLast();
        long lastCheckpoint = all.stream().filter(m -> "checkpoint".equals(m.get("type"))
                && !"stop".equals(m.get("reason"))).map(m -> (Long) m.get("seq")).reduce((a, b) -> b).orElseThrow();
        Consumer<List<List<String>>> cut = c -> c.forEach(lines -> lines.removeIf(l -> {
            try {
                return seqOf(l) > lastCheckpoint;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }));

        Commands.Result alone = tampered("cut-tail", cut);
        assertEquals(5, alone.exit(), alone.stdout() + alone.stderr());
        assertTrue(alone.stdout().contains("does not end with a stop checkpoint"), alone.stdout());

        Commands.Result withHead = tampered("cut-tail-head", cut, "--head", head.get("seq") + ":" + head.get("hash"));
        assertEquals(1, withHead.exit(), withHead.stdout());
        assertTrue(withHead.stdout().contains("records " + range(lastCheckpoint + 1, (Long) head.get("seq"))
                + " were cut off"), withHead.stdout());
    }

    @Test
    @Order(10)
    void reSignWithAnotherKey_theFirstCheckpointFailsWithTheExportedKey() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair attacker = g.generateKeyPair();
        String attackerId = AuditKeys.keyId(attacker.getPublic());
        Commands.Result r = tampered("resign", c -> {
            String prev = null;
            for (List<String> lines : c) {
                for (int i = 0; i < lines.size(); i++) {
                    try {
                        Map<String, Object> m = new LinkedHashMap<>(Json.parseObject(lines.get(i)));
                        if (prev != null) m.put("prev", prev);
                        if ("checkpoint".equals(m.get("type"))) {
                            m.put("key_id", attackerId);
                            java.security.Signature s = java.security.Signature.getInstance("SHA256withECDSA");
                            s.initSign(attacker.getPrivate());
                            s.update(AuditRecords.signedBytes(m));
                            m.put("signature", Base64.getEncoder().encodeToString(s.sign()));
                        }
                        m.put("hash", AuditRecords.hash(m));
                        prev = (String) m.get("hash");
                        lines.set(i, CanonicalJson.write(m));
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                }
            }
        });

        long firstCheckpoint = records(auditDir()).stream().filter(m -> "checkpoint".equals(m.get("type")))
                .map(m -> (Long) m.get("seq")).findFirst().orElseThrow();
        assertEquals(1, r.exit(), r.stdout());
        assertTrue(r.stdout().contains("(seq " + firstCheckpoint + ")"), r.stdout());
        assertTrue(r.stdout().contains("signature does not verify with the given public key"), r.stdout());
        assertTrue(r.stdout().contains(attackerId), r.stdout());
    }

    // ------------------------------------------------------------------ failing closed

    @Test
    @Order(11)
    void auditDirectoryReplacedByAFile_everyCallRefusedAndNotRun_thenResumes() throws Exception {
        daemon.restart();
        Path audit = auditDir();
        Path moved = daemon.stateDir().resolve("audit.moved");
        try (KmsClient kms = client()) {
            kms.status();
            // A real failure for root too: the directory the log is in is no longer there.
            Files.move(audit, moved);
            Files.writeString(audit, "not a directory");

            // A call that releases something waits for its durable record, so it is the first
            // refused (Status would be answered before its record's fsync: docs/audit.md).
            AuditUnavailableException first = assertThrows(AuditUnavailableException.class,
                    () -> kms.generateDataKey("weights", CONTEXT));
            assertTrue(first.getMessage().contains("audit log cannot be written"), first.getMessage());
            // From then on every call is refused before it runs, deferred ones included.
            assertThrows(AuditUnavailableException.class, kms::status);
            AuditUnavailableException create = assertThrows(AuditUnavailableException.class,
                    () -> kms.createKey("made-during-outage", "ENCRYPT"));
            assertTrue(create.getMessage().contains(audit.toString()), create.getMessage());
            assertThrows(AuditUnavailableException.class, () -> kms.generateDataKey("weights", CONTEXT));
            assertTrue(daemon.output().contains("audit log unwritable"), "the daemon says why in its log");

            Files.delete(audit);
            Files.move(moved, audit);

            kms.status();
            assertTrue(kms.listKeys().stream().noneMatch(k -> k.name().equals("made-during-outage")),
                    "a call refused while the log was down did not run");
        }
        List<Map<String, Object>> r = records(audit);
        Map<String, Object> resumed = r.stream().filter(m -> "resumed".equals(m.get("type"))).findFirst().orElseThrow();
        assertTrue((Long) resumed.get("refused_calls") >= 2, String.valueOf(resumed));
        assertTrue(daemon.output().contains("audit log writable again"));
    }

    @Test
    @Order(12)
    void diskFull_onATinyTmpfs_callsRefusedWithNoSpace_thenResumeWhenSpaceIsFreed() throws Exception {
        daemon.stop();
        Path audit = auditDir();
        Path onDisk = daemon.stateDir().resolve("audit.disk");
        Files.move(audit, onDisk);
        Files.createDirectories(audit);
        // root may mount here (the test suite runs as root); a tmpfs of 512 KiB fills quickly.
        Commands.run("mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", audit.toString()).requireSuccess();
        mounted = audit;
        try {
            for (Path f : AuditLog.logFiles(onDisk)) {
                Files.copy(f, audit.resolve(f.getFileName()));
            }
            daemon.restart();
            try (KmsClient kms = client()) {
                kms.status();
                fill(audit.resolve("filler"));
                AuditUnavailableException refused = null;
                for (int i = 0; i < 200 && refused == null; i++) {
                    try {
                        kms.generateDataKey("weights", CONTEXT); // fits into the file's last page until that is full
                    } catch (AuditUnavailableException e) {
                        refused = e;
                    }
                }
                assertTrue(refused != null, "no call was refused on a full disk");
                assertTrue(refused.getMessage().contains("No space left on device"), refused.getMessage());
                assertThrows(AuditUnavailableException.class, () -> kms.createKey("made-on-full-disk", "ENCRYPT"));

                Files.delete(audit.resolve("filler"));
                kms.status();
                assertTrue(kms.listKeys().stream().noneMatch(k -> k.name().equals("made-on-full-disk")));
            }
            daemon.stop();
            // Back onto the disk, for the final verification of the whole log.
            try (Stream<Path> s = Files.list(onDisk)) {
                for (Path p : s.toList()) Files.delete(p);
            }
            for (Path f : AuditLog.logFiles(audit)) {
                Files.copy(f, onDisk.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            daemon.stop();
            Commands.run("umount", audit.toString()).requireSuccess();
            mounted = null;
        }
        Files.delete(audit);
        Files.move(onDisk, audit);
        assertTrue(records(audit).stream().anyMatch(m -> "resumed".equals(m.get("type"))
                && ((String) m.get("reason")).contains("No space left on device")));
    }

    private static void fill(Path filler) {
        byte[] chunk = new byte[4096];
        try (OutputStream out = Files.newOutputStream(filler)) {
            while (true) {
                out.write(chunk);
                out.flush();
            }
        } catch (IOException full) {
            // the file system is full now
        }
    }

    // ------------------------------------------------------------------ the whole log, and secrets

    @Test
    @Order(13)
    void wholeLogWithBothOutages_verifiesIntact() throws Exception {
        daemon.stop();

        Commands.Result r = kmsctl("audit", "verify", "--public-key", pem.toString(), auditDir().toString());

        assertEquals(0, r.exit(), r.stdout() + r.stderr());
        assertEquals(2, records(auditDir()).stream().filter(m -> "resumed".equals(m.get("type"))).count());
    }

    @Test
    @Order(14)
    void noSecretTheTestUsed_inAnyAuditRecordOrTheDaemonLog() throws Exception {
        StringBuilder all = new StringBuilder();
        try (Stream<Path> s = Files.walk(auditDir())) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                all.append(Files.readString(p, StandardCharsets.UTF_8)).append('\n');
            }
        }
        String log = all.toString();
        String daemonOutput = daemon.output();
        assertTrue(secrets.size() > 40, secrets.size() + " secrets");
        List<String> found = new ArrayList<>();
        for (byte[] secret : secrets) {
            for (String form : List.of(HexFormat.of().formatHex(secret), HexFormat.of().withUpperCase().formatHex(secret),
                    Base64.getEncoder().encodeToString(secret), Base64.getUrlEncoder().withoutPadding().encodeToString(secret),
                    new String(secret, StandardCharsets.ISO_8859_1))) {
                if (form.length() >= 8 && (log.contains(form) || daemonOutput.contains(form))) {
                    found.add(form);
                }
            }
        }
        for (String value : hmacOnly) {
            if (log.contains("\"" + value + "\"")) found.add("context value in clear: " + value);
        }
        assertEquals(List.of(), found);
        assertFalse(log.contains("plaintext"), "no plaintext field");
        assertFalse(log.contains("ciphertext"), "no ciphertext field");
    }
}
