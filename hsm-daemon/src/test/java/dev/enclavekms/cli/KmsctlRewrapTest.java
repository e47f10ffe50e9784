package dev.enclavekms.cli;

import dev.enclavekms.cli.KmsctlRunner.Run;
import dev.enclavekms.client.ContractServer;
import dev.enclavekms.format.Envelope;
import dev.enclavekms.format.MalformedEnvelopeException;
import dev.enclavekms.json.Json;
import dev.enclavekms.varlink.VarlinkError;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static dev.enclavekms.client.ContractServer.KMS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code kmsctl rewrap} on real files in a temp directory, against a {@link ContractServer}
 * whose ReEncryptBatch handler plays the daemon: it moves each envelope to its key's
 * primary version by rewriting the version field (keeping IV and ciphertext, so a test can
 * tell that the file holds the same sealed data, re-labelled), answers
 * {@code rewrapped = false} for envelopes already there, and fails the envelopes of two
 * special keys: {@code tampered} (DecryptionFailed) and {@code retired}
 * (KeyVersionDestroyed).
 */
@Timeout(120)
class KmsctlRewrapTest {
    private static final int PRIMARY = 4;

    @TempDir
    Path dir;
    ContractServer server;
    String socket;
    FakeDaemon daemon;

    @BeforeEach
    void start() throws Exception {
        server = ContractServer.start(dir.resolve("kms.sock"));
        socket = server.socket().toString();
        daemon = new FakeDaemon();
        server.on(KMS + ".ReEncryptBatch", daemon::reEncryptBatch);
    }

    @AfterEach
    void stop() {
        server.close();
        server.assertNoViolations();
    }

    // ------------------------------------------------------------------ the fake daemon

    static final class FakeDaemon {
        final Map<String, Integer> primary = new LinkedHashMap<>(Map.of("model-weights", PRIMARY, "other", 2));
        final AtomicInteger batches = new AtomicInteger();
        final List<Map<String, Object>> calls = new CopyOnWriteArrayList<>();
        /** 1-based number of the batch on which the connection is dropped; 0: never. */
        volatile int hangUpOnBatch;
        /** Runs inside the call, before answering (to change files behind kmsctl's back). */
        volatile Consumer<Integer> during = n -> { };
        volatile boolean answerGarbage;

        Map<String, Object> reEncryptBatch(Map<String, Object> p) throws VarlinkError, IOException {
            int n = batches.incrementAndGet();
            calls.add(p);
            if (n == hangUpOnBatch) throw ContractServer.hangUp();
            during.accept(n);
            String target = (String) p.get("key");
            List<Object> results = new ArrayList<>();
            for (Object c : (List<?>) p.get("ciphertexts")) {
                byte[] bytes = Base64.getDecoder().decode((String) c);
                Envelope e;
                try {
                    e = Envelope.parse(bytes);
                } catch (MalformedEnvelopeException bad) {
                    results.add(map("error", "DecryptionFailed", "message", "decryption failed"));
                    continue;
                }
                if (e.keyName().equals("tampered")) {
                    results.add(map("error", "DecryptionFailed", "message", "decryption failed"));
                    continue;
                }
                if (e.keyName().equals("retired")) {
                    results.add(map("error", "KeyVersionDestroyed", "message", "version " + e.keyVersion()
                            + " of key 'retired' was destroyed on 2026-03-15T00:00:00Z", "source_key", "retired",
                            "source_version", (long) e.keyVersion()));
                    continue;
                }
                String to = target != null ? target : e.keyName();
                int version = primary.get(to);
                boolean current = to.equals(e.keyName()) && version == e.keyVersion();
                byte[] out = current ? bytes
                        : new Envelope(to, version, e.scheme(), e.iv(), e.ciphertext()).encode();
                if (answerGarbage) out = "not an envelope".getBytes(StandardCharsets.US_ASCII);
                results.add(map("key", to, "version", (long) version, "source_key", e.keyName(),
                        "source_version", (long) e.keyVersion(), "rewrapped", !current, "ciphertext", b64(out)));
            }
            return map("results", results);
        }
    }

    // ------------------------------------------------------------------------ helpers

    private Run kmsctl(String... args) {
        return kmsctlWith(false, args);
    }

    private Run kmsctlWith(boolean stderrTerminal, String... args) {
        List<String> all = new ArrayList<>(List.of("--socket", socket, "rewrap"));
        all.addAll(List.of(args));
        return KmsctlRunner.run(new byte[0], Map.of(), false, stderrTerminal, all.toArray(String[]::new));
    }

    private static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    private static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    /** An envelope whose IV and sealed bytes are unique to {@code seed}. */
    private static Envelope envelope(String key, int version, int seed) {
        byte[] iv = new byte[12];
        byte[] ct = new byte[40];
        for (int i = 0; i < iv.length; i++) iv[i] = (byte) (seed * 31 + i);
        for (int i = 0; i < ct.length; i++) ct[i] = (byte) (seed * 7 + i * 13);
        return new Envelope(key, version, Envelope.SealingScheme.AES_256_GCM, iv, ct);
    }

    private static Path binary(Path file, Envelope e) throws IOException {
        Files.createDirectories(file.getParent());
        return Files.write(file, e.encode());
    }

    private static Path base64(Path file, Envelope e, String before, String after) throws IOException {
        Files.createDirectories(file.getParent());
        return Files.writeString(file, before + b64(e.encode()) + after, StandardCharsets.US_ASCII);
    }

    /** The file's envelope, read back in the form it was written in. */
    private static Envelope read(Path file, boolean base64, String before, String after) throws Exception {
        byte[] content = Files.readAllBytes(file);
        if (!base64) return Envelope.parse(content);
        String text = new String(content, StandardCharsets.US_ASCII);
        assertTrue(text.startsWith(before) && text.endsWith(after), file + ": whitespace not kept: " + text);
        return Envelope.parse(Base64.getDecoder().decode(text.substring(before.length(), text.length() - after.length())));
    }

    /** Same sealed data (IV and ciphertext), now on {@code key} version {@code version}. */
    private static void assertMoved(Envelope before, Envelope after, String key, int version) {
        assertEquals(key, after.keyName());
        assertEquals(version, after.keyVersion());
        assertArrayEquals(before.iv(), after.iv());
        assertArrayEquals(before.ciphertext(), after.ciphertext());
    }

    private static List<Path> temps(Path root) throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".rewrap-tmp")).toList();
        }
    }

    private static String perms(Path p) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
    }

    private record Written(Path path, Envelope envelope, boolean base64, String before, String after) { }

    // -------------------------------------------------------------------------- tests

    @Test
    void rewrap_treeOfEnvelopes_rewrapsStaleKeepsFormAndModeLeavesCurrentSkipsOthersReportsFailures() throws Exception {
        Path root = dir.resolve("data");
        List<Written> stale = new ArrayList<>();
        String[] modes = {"rw-------", "rw-r-----", "r--r--r--", "rw-rw-r--"};
        for (int i = 0; i < 120; i++) {
            Envelope e = envelope("model-weights", 1 + i % 3, i);
            Path f = binary(root.resolve("bin").resolve("shard-%03d.key".formatted(i)), e);
            Files.setPosixFilePermissions(f, PosixFilePermissions.fromString(modes[i % modes.length]));
            stale.add(new Written(f, e, false, "", ""));
        }
        String[][] spacing = {{"", "\n"}, {"", ""}, {"", "\r\n"}, {" \t", "  \n\n"}};
        for (int i = 0; i < 100; i++) {
            Envelope e = envelope("model-weights", 1 + i % 3, 1000 + i);
            String[] s = spacing[i % spacing.length];
            Path f = base64(root.resolve("b64/nested/deep/k-%03d.b64".formatted(i)), e, s[0], s[1]);
            Files.setPosixFilePermissions(f, PosixFilePermissions.fromString(modes[(i + 1) % modes.length]));
            stale.add(new Written(f, e, true, s[0], s[1]));
        }
        List<Path> current = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            Envelope e = envelope("model-weights", PRIMARY, 2000 + i);
            Path f = i % 2 == 0 ? binary(root.resolve("current/c-%02d.key".formatted(i)), e)
                    : base64(root.resolve("current/c-%02d.b64".formatted(i)), e, "", "\n");
            Files.setLastModifiedTime(f, FileTime.from(Instant.parse("2020-01-01T00:00:00Z")));
            current.add(f);
        }
        Map<Path, byte[]> currentBefore = new LinkedHashMap<>();
        Map<Path, Object> currentInodes = new LinkedHashMap<>();
        for (Path f : current) {
            currentBefore.put(f, Files.readAllBytes(f));
            currentInodes.put(f, Files.readAttributes(f, PosixFileAttributes.class).fileKey());
        }
        Path other = Files.createDirectories(root.resolve("other"));
        Map<Path, byte[]> notEnvelopes = new LinkedHashMap<>();
        notEnvelopes.put(other.resolve("readme.txt"), "hello\n".getBytes(StandardCharsets.US_ASCII));
        byte[] random = new byte[256];
        for (int i = 0; i < random.length; i++) random[i] = (byte) (0x80 + i * 37);
        notEnvelopes.put(other.resolve("random.bin"), random);
        notEnvelopes.put(other.resolve("empty"), new byte[0]);
        notEnvelopes.put(other.resolve("plain.b64"), (b64("not an envelope at all".getBytes(StandardCharsets.US_ASCII))
                + "\n").getBytes(StandardCharsets.US_ASCII));
        byte[] format2 = envelope("model-weights", 1, 1).encode();
        format2[3] = 2;
        notEnvelopes.put(other.resolve("format2.bin"), format2);
        byte[] big = Arrays.copyOf(envelope("model-weights", 1, 2).encode(), EnvelopeFile.MAX_FILE_BYTES + 1);
        notEnvelopes.put(other.resolve("big.bin"), big);
        for (var e : notEnvelopes.entrySet()) Files.write(e.getKey(), e.getValue());
        Path tampered = binary(root.resolve("bad/tampered.key"), envelope("tampered", 1, 3));
        Path retired = base64(root.resolve("bad/retired.b64"), envelope("retired", 1, 4), "", "\n");
        Path outside = binary(dir.resolve("outside/elsewhere.key"), envelope("model-weights", 1, 5));
        Files.createSymbolicLink(root.resolve("link-to-file"), stale.getFirst().path().toAbsolutePath());
        Files.createSymbolicLink(root.resolve("link-to-outside"), outside.getParent().toAbsolutePath());
        Path leftover = Files.writeString(root.resolve("bin/.shard-001.key.rewrap-tmp"), "half written");

        Run r = kmsctl("--context", "model=m", "--batch", "50", root.toString());

        assertEquals(4, r.code(), r.stderr());
        List<String> lines = r.stdout().lines().toList();
        assertEquals("rewrapped 220, already current 40, skipped 8, failed 2", lines.getFirst());
        assertEquals(List.of(
                "failed: " + retired + ": KeyVersionDestroyed: version 1 of key 'retired' was destroyed on 2026-03-15T00:00:00Z",
                "failed: " + tampered + ": DecryptionFailed: decryption failed"), lines.subList(1, lines.size()).stream().sorted().toList());
        for (Written w : stale) {
            assertMoved(w.envelope(), read(w.path(), w.base64(), w.before(), w.after()), "model-weights", PRIMARY);
        }
        for (int i = 0; i < stale.size(); i++) {
            Written w = stale.get(i);
            String want = i < 120 ? modes[i % modes.length] : modes[(i - 120 + 1) % modes.length];
            assertEquals(want, perms(w.path()), w.path().toString());
        }
        for (Path f : current) {
            assertArrayEquals(currentBefore.get(f), Files.readAllBytes(f), f.toString());
            assertEquals(FileTime.from(Instant.parse("2020-01-01T00:00:00Z")), Files.getLastModifiedTime(f), f.toString());
            assertEquals(currentInodes.get(f), Files.readAttributes(f, PosixFileAttributes.class).fileKey(), f.toString());
        }
        for (var e : notEnvelopes.entrySet()) assertArrayEquals(e.getValue(), Files.readAllBytes(e.getKey()));
        assertEquals(1, Envelope.parse(Files.readAllBytes(tampered)).keyVersion());
        assertEquals(1, read(outside, false, "", "").keyVersion(), "a linked directory must not be followed");
        assertTrue(Files.isSymbolicLink(root.resolve("link-to-file")), "the link itself must stay a link");
        assertFalse(Files.exists(leftover));
        assertEquals(List.of(), temps(dir));
        assertEquals(6, daemon.batches.get());
        for (Map<String, Object> call : daemon.calls) {
            assertTrue(((List<?>) call.get("ciphertexts")).size() <= 50);
            assertEquals(map("model", "m"), call.get("context"));
            assertFalse(call.containsKey("key"));
        }
        assertTrue(r.stderr().contains("rewrap: removed 1 leftover temp file(s) of an interrupted run\n"), r.stderr());
    }

    @Test
    void rewrap_interruptedByLostConnection_exits3_rerunFinishesAndCleansUp() throws Exception {
        Path root = dir.resolve("data");
        List<Written> files = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            Envelope e = envelope("model-weights", 1 + i % 3, i);
            files.add(i % 2 == 0 ? new Written(binary(root.resolve("d%d/e-%03d".formatted(i % 7, i)), e), e, false, "", "")
                    : new Written(base64(root.resolve("d%d/e-%03d".formatted(i % 7, i)), e, "", "\n"), e, true, "", "\n"));
        }
        daemon.hangUpOnBatch = 3;

        Run first = kmsctl("--batch", "40", root.toString());

        assertEquals(3, first.code(), first.stderr());
        assertEquals("rewrapped 80, already current 0, skipped 0, failed 0\n", first.stdout());
        assertTrue(first.stderr().contains("220 file(s) not done: run the same command again to finish"), first.stderr());
        long moved = 0;
        for (Written w : files) {
            Envelope now = read(w.path(), w.base64(), w.before(), w.after());
            if (now.keyVersion() == PRIMARY) {
                moved++;
            } else {
                assertEquals(w.envelope(), now, "a file not rewrapped is untouched");
            }
        }
        assertEquals(80, moved);
        // A SIGKILL in the middle of a write leaves a temp file beside an intact original.
        Path killedA = EnvelopeFile.tempFor(files.get(200).path());
        Path killedB = EnvelopeFile.tempFor(files.get(299).path());
        Files.write(killedA, Arrays.copyOf(files.get(200).envelope().encode(), 10));
        Files.writeString(killedB, "");

        daemon.hangUpOnBatch = 0;
        Run second = kmsctl("--batch", "40", root.toString());

        assertEquals(0, second.code(), second.stderr());
        assertEquals("rewrapped 220, already current 80, skipped 0, failed 0\n", second.stdout());
        assertTrue(second.stderr().contains("removed 2 leftover temp file(s)"), second.stderr());
        for (Written w : files) {
            assertMoved(w.envelope(), read(w.path(), w.base64(), w.before(), w.after()), "model-weights", PRIMARY);
        }
        assertEquals(List.of(), temps(dir));
    }

    @Test
    void rewrap_dryRun_changesNoFileAndKeepsLeftovers() throws Exception {
        Path root = dir.resolve("data");
        Map<Path, byte[]> before = new LinkedHashMap<>();
        for (int i = 0; i < 10; i++) {
            Path f = binary(root.resolve("e-" + i), envelope("model-weights", 1, i));
            before.put(f, Files.readAllBytes(f));
        }
        Path leftover = Files.writeString(root.resolve(".e-1.rewrap-tmp"), "x");

        Run r = kmsctl("--dry-run", root.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals("would rewrap 10, already current 0, skipped 0, failed 0 (dry run: no file was changed)\n", r.stdout());
        for (var e : before.entrySet()) assertArrayEquals(e.getValue(), Files.readAllBytes(e.getKey()));
        assertTrue(Files.exists(leftover));
        assertEquals(1, daemon.batches.get());
    }

    @Test
    void rewrap_json_printsSummaryAndFailures() throws Exception {
        Path root = dir.resolve("data");
        binary(root.resolve("a"), envelope("model-weights", 1, 1));
        binary(root.resolve("b"), envelope("model-weights", PRIMARY, 2));
        Path bad = binary(root.resolve("c"), envelope("tampered", 1, 3));
        Files.writeString(root.resolve("d.txt"), "text");

        Run r = kmsctl("--json", root.toString());

        assertEquals(4, r.code(), r.stderr());
        assertEquals(map("rewrapped", 1L, "already_current", 1L, "skipped", 1L, "failed", 1L, "dry_run", false,
                "removed_temp_files", 0L, "failures", List.of(map("path", bad.toString(), "error", "DecryptionFailed",
                        "message", "decryption failed"))), Json.parseObject(r.stdout().strip()));
    }

    @Test
    void rewrap_verbose_listsEveryFileWithItsOutcome() throws Exception {
        Path root = dir.resolve("data");
        Path stale = binary(root.resolve("a"), envelope("model-weights", 2, 1));
        Path current = binary(root.resolve("b"), envelope("model-weights", PRIMARY, 2));
        Path text = Files.writeString(root.resolve("c.txt"), "text");

        Run r = kmsctl("-v", root.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals("skipped    " + text + ": not an envelope\n"
                + "rewrapped  " + stale + "  (model-weights v2 -> model-weights v4)\n"
                + "current    " + current + "\n"
                + "rewrapped 1, already current 1, skipped 1, failed 0\n", r.stdout());
    }

    @Test
    void rewrap_toKey_sendsTargetAndMovesEnvelopesToIt() throws Exception {
        Path root = dir.resolve("data");
        Envelope e = envelope("model-weights", 1, 1);
        Path f = base64(root.resolve("a.b64"), e, "", "\n");

        Run r = kmsctl("--to-key", "other", "--context", "tier=gold", f.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals("other", daemon.calls.getFirst().get("key"));
        assertMoved(e, read(f, true, "", "\n"), "other", 2);
    }

    @Test
    void rewrap_fileChangedDuringTheCall_isLeftToItsWriterAndReported() throws Exception {
        Path root = dir.resolve("data");
        Path f = binary(root.resolve("a"), envelope("model-weights", 1, 1));
        byte[] newer = envelope("model-weights", PRIMARY, 99).encode();
        daemon.during = n -> {
            try {
                Files.write(f, Arrays.copyOf(newer, newer.length)); // someone else writes a new envelope meanwhile
                Files.setLastModifiedTime(f, FileTime.from(Instant.parse("2030-01-01T00:00:00Z")));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        };

        Run r = kmsctl(root.toString());

        assertEquals(4, r.code(), r.stderr());
        assertTrue(r.stdout().contains("failed: " + f + ": ChangedDuringRewrap: "), r.stdout());
        assertArrayEquals(newer, Files.readAllBytes(f));
        assertEquals(List.of(), temps(dir));
    }

    @Test
    void rewrap_daemonAnswersSomethingNotAnEnvelope_fileIsNotOverwritten() throws Exception {
        Path root = dir.resolve("data");
        Path f = binary(root.resolve("a"), envelope("model-weights", 1, 1));
        byte[] before = Files.readAllBytes(f);
        daemon.answerGarbage = true;

        Run r = kmsctl(root.toString());

        assertEquals(4, r.code());
        assertTrue(r.stdout().contains("failed: " + f + ": MalformedReply: "), r.stdout());
        assertArrayEquals(before, Files.readAllBytes(f));
    }

    @Test
    void rewrap_batchRefusedAsAWhole_stopsExits4AndTouchesNothing() throws Exception {
        Path root = dir.resolve("data");
        Path f = binary(root.resolve("a"), envelope("model-weights", 1, 1));
        byte[] before = Files.readAllBytes(f);
        server.on(KMS + ".ReEncryptBatch", p -> {
            throw ContractServer.error(KMS + ".PermissionDenied", "message", "no re-encryption grant for uid 1000");
        });

        Run r = kmsctl(root.toString());

        assertEquals(4, r.code());
        assertEquals("rewrapped 0, already current 0, skipped 0, failed 0\n", r.stdout());
        assertTrue(r.stderr().contains("kmsctl: PermissionDenied: no re-encryption grant for uid 1000; 1 file(s) not done"),
                r.stderr());
        assertArrayEquals(before, Files.readAllBytes(f));
    }

    @Test
    void rewrap_ownerAndGroupOfAnotherUser_arePreserved() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "only root can give files to another user");
        Path root = dir.resolve("data");
        Path f = binary(root.resolve("a"), envelope("model-weights", 1, 1));
        var lookup = f.getFileSystem().getUserPrincipalLookupService();
        UserPrincipal owner = lookup.lookupPrincipalByName("12345");
        GroupPrincipal group = lookup.lookupPrincipalByGroupName("23456");
        PosixFileAttributeView view = Files.getFileAttributeView(f, PosixFileAttributeView.class);
        view.setOwner(owner);
        view.setGroup(group);
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r-----"));

        Run r = kmsctl(root.toString());

        assertEquals(0, r.code(), r.stderr());
        PosixFileAttributes after = Files.readAttributes(f, PosixFileAttributes.class);
        assertEquals(PRIMARY, Envelope.parse(Files.readAllBytes(f)).keyVersion());
        assertEquals(owner, after.owner());
        assertEquals(group, after.group());
        assertEquals("rw-r-----", PosixFilePermissions.toString(after.permissions()));
    }

    @Test
    void rewrap_plainProgress_printsLinesOnStderr() throws Exception {
        Path root = dir.resolve("data");
        for (int i = 0; i < 5; i++) binary(root.resolve("e-" + i), envelope("model-weights", 1, i));

        Run r = kmsctl("--progress-interval", "0", "--batch", "2", root.toString());

        assertEquals(0, r.code(), r.stderr());
        List<String> lines = r.stderr().lines().toList();
        assertEquals("rewrap: 5 file(s) to examine", lines.getFirst());
        for (String line : lines.subList(1, lines.size())) {
            assertTrue(line.matches("rewrap: [1-5]/5 files \\(\\d+%\\), \\d+ files/s, ETA \\S+"), line);
        }
        assertEquals("rewrap: 5/5 files (100%)", lines.getLast().substring(0, "rewrap: 5/5 files (100%)".length()));
        assertTrue(lines.contains(lines.getLast()) && lines.size() >= 3, r.stderr());
        assertFalse(r.stderr().contains("\r"), "no bar when stderr is not a terminal");
    }

    @Test
    void rewrap_terminal_drawsABarAndClearsIt() throws Exception {
        Path root = dir.resolve("data");
        for (int i = 0; i < 5; i++) binary(root.resolve("e-" + i), envelope("model-weights", 1, i));

        Run r = kmsctlWith(true, root.toString());

        assertEquals(0, r.code(), r.stderr());
        assertTrue(r.stderr().contains("\r[" + "#".repeat(30) + "] 5/5 files (100%), "), r.stderr());
        assertTrue(r.stderr().endsWith("\r\u001b[K"), r.stderr());
        assertEquals("rewrapped 5, already current 0, skipped 0, failed 0\n", r.stdout());
    }

    @Test
    void rewrap_onlyNonEnvelopes_needsNoDaemon() throws Exception {
        Path root = dir.resolve("data");
        Files.createDirectories(root);
        Files.writeString(root.resolve("a.txt"), "hello");
        Files.write(root.resolve("b.bin"), new byte[] {1, 2, 3});

        Run r = KmsctlRunner.run(new byte[0], Map.of(), false, false,
                "--socket", dir.resolve("absent.sock").toString(), "rewrap", root.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals("rewrapped 0, already current 0, skipped 2, failed 0\n", r.stdout());
    }

    @Test
    void rewrap_missingPath_exits1BeforeConnecting() {
        Path missing = dir.resolve("nope");

        Run r = kmsctl(missing.toString());

        assertEquals(1, r.code());
        assertEquals("kmsctl: cannot read " + missing + ": no such file or directory\n", r.stderr());
        assertEquals(0, daemon.batches.get());
    }

    @Test
    void rewrap_batchOutOfRange_exits2() {
        for (String n : List.of("0", "10001")) {
            Run r = kmsctl("--batch", n, dir.toString());

            assertEquals(2, r.code(), n);
            assertTrue(r.stderr().startsWith("kmsctl: --batch must be 1 to 10000"), r.stderr());
        }
    }

    @Test
    void rewrap_argumentThatIsALink_isFollowedAndTheTargetRewritten() throws Exception {
        Path target = binary(dir.resolve("real/a.key"), envelope("model-weights", 1, 1));
        Path link = Files.createSymbolicLink(dir.resolve("link.key"), target.toAbsolutePath());

        Run r = kmsctl(link.toString());

        assertEquals(0, r.code(), r.stderr());
        assertTrue(Files.isSymbolicLink(link));
        assertEquals(PRIMARY, Envelope.parse(Files.readAllBytes(target)).keyVersion());
        assertNotEquals(0, daemon.batches.get());
    }
}
