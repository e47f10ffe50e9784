package dev.enclavekms.audit;

import dev.enclavekms.audit.AuditFixtures.JcaSigner;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static dev.enclavekms.audit.AuditFixtures.call;
import static dev.enclavekms.audit.AuditFixtures.records;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The zero padding the log keeps ahead of its last record (AuditPadding): there while the log
 * is written, gone from closed files, understood by the verifier and by the next start — also
 * after a crash that tore a write inside it. Real files; a crash is a copy of the directory
 * taken while the log is open (everything in it was made durable), then damaged as a torn
 * write would damage it.
 */
@Timeout(60)
class AuditPaddingTest {
    @TempDir
    Path dir;
    final JcaSigner signer = new JcaSigner();
    final List<AuditLog> opened = new ArrayList<>();

    @AfterEach
    void closeAll() {
        opened.forEach(AuditLog::close);
    }

    private AuditLog open(Path auditDir) throws IOException {
        return open(AuditLog.Options.defaults(auditDir));
    }

    private AuditLog open(AuditLog.Options options) throws IOException {
        AuditLog log = AuditLog.open(options, signer, Clock.systemUTC(), Map.of("daemon_version", "test"));
        opened.add(log);
        return log;
    }

    private AuditVerifier.Report verify(Path auditDir) throws IOException {
        return AuditVerifier.verify(List.of(auditDir), signer.publicKey(), null);
    }

    /** The log directory as a crash would leave it now: every file as it is on disk. */
    private Path crashImage(Path auditDir, String name) throws IOException {
        Path copy = dir.resolve(name);
        Files.createDirectories(copy);
        try (Stream<Path> s = Files.list(auditDir)) {
            for (Path f : s.toList()) Files.copy(f, copy.resolve(f.getFileName()), StandardCopyOption.COPY_ATTRIBUTES);
        }
        return copy;
    }

    private static Path onlyFile(Path auditDir) throws IOException {
        List<Path> files = AuditLog.logFiles(auditDir);
        assertEquals(1, files.size(), files.toString());
        return files.getFirst();
    }

    private static boolean hasNul(byte[] b) {
        for (byte x : b) if (x == 0) return true;
        return false;
    }

    /** Bytes of the file from {@code from} on are all zero. */
    private static boolean zerosFrom(byte[] b, int from) {
        for (int i = from; i < b.length; i++) if (b[i] != 0) return false;
        return true;
    }

    @Test
    void whileWriting_fileEndsInDurableZeroPaddingAfterTheLastRecord() throws Exception {
        Path audit = dir.resolve("audit");
        AuditLog log = open(audit);
        for (int i = 0; i < 5; i++) log.append(call("m"));

        byte[] raw = Files.readAllBytes(onlyFile(audit));
        AuditPadding.Tail tail = AuditPadding.tail(onlyFile(audit));

        assertTrue(raw.length >= tail.records() + AuditLog.PREALLOCATION_BYTES / 2,
                "the file is preallocated: " + raw.length + " bytes for " + tail.records() + " of records");
        assertEquals('\n', raw[(int) tail.records() - 1]);
        assertEquals(tail.records(), tail.data());
        assertTrue(zerosFrom(raw, (int) tail.records()));
        assertFalse(hasNul(Arrays.copyOf(raw, (int) tail.records())));
        assertEquals(6, AuditPadding.lines(onlyFile(audit)).size()); // start + 5 calls
    }

    @Test
    void verify_fileOfARunningLog_paddingIsNoProblem() throws Exception {
        Path audit = dir.resolve("audit");
        AuditLog log = open(audit);
        log.append(call("m"));
        log.checkpoint();

        AuditVerifier.Report r = verify(audit);

        assertNull(r.problem(), String.valueOf(r.problem()));
        assertEquals(3, r.records());
        assertTrue(r.notes().stream().anyMatch(n -> n.contains("ends in zero padding")), r.notes().toString());
        // Not stopped: incomplete, as for any running log, but nothing tampered.
        assertEquals(AuditVerifier.Status.INCOMPLETE, r.status());
    }

    @Test
    void afterCleanClose_fileHoldsRecordsOnly_everyLineAJsonRecord() throws Exception {
        Path audit = dir.resolve("audit");
        AuditLog log = open(audit);
        for (int i = 0; i < 3; i++) log.append(call("m"));
        log.close();

        byte[] raw = Files.readAllBytes(onlyFile(audit));
        assertFalse(hasNul(raw));
        assertEquals('\n', raw[raw.length - 1]);
        List<String> lines = Files.readAllLines(onlyFile(audit), StandardCharsets.UTF_8); // as jq or tail see it
        assertEquals(5, lines.size());
        for (String l : lines) assertNotNull(CanonicalJson.parseCanonical(l).get("seq"));
        assertEquals(AuditVerifier.Status.INTACT, verify(audit).status());
    }

    @Test
    void rotation_closedFilesHoldRecordsOnly_theLastIsPadded() throws Exception {
        Path audit = dir.resolve("audit");
        AuditLog log = open(AuditLog.Options.defaults(audit).withMaxFileBytes(4096));
        for (int i = 0; i < 40; i++) log.append(call("m"));

        List<Path> files = AuditLog.logFiles(audit);
        assertTrue(files.size() >= 3, files.toString());
        for (Path f : files.subList(0, files.size() - 1)) {
            byte[] raw = Files.readAllBytes(f);
            assertFalse(hasNul(raw), f + " was closed with its padding");
            assertEquals('\n', raw[raw.length - 1]);
        }
        Path last = files.getLast();
        assertTrue(Files.size(last) > AuditPadding.tail(last).records(), "the file being written is padded");
        assertTrue(Files.size(last) <= 4096 + 3L * AuditRecords.MAX_LINE_BYTES, "padding stops near the file limit");
        log.close();
        assertEquals(AuditVerifier.Status.INTACT, verify(audit).status());
    }

    @Test
    void paddingGrows_recordsBeyondTheFirstPreallocation_chainIntact() throws Exception {
        Path audit = dir.resolve("audit");
        AuditLog log = open(AuditLog.Options.defaults(audit).withDurability(AuditLog.Durability.NONE));
        String filler = "x".repeat(500);
        int n = 3 * AuditLog.PREALLOCATION_BYTES / 600;
        for (int i = 0; i < n; i++) log.append(call("m", "detail", filler));
        AuditPadding.Tail tail = AuditPadding.tail(onlyFile(audit));
        assertTrue(tail.records() > 2L * AuditLog.PREALLOCATION_BYTES, "records: " + tail.records());
        assertTrue(tail.size() > tail.records(), "still padded after growing");

        log.close();

        assertEquals(AuditVerifier.Status.INTACT, verify(audit).status());
        assertTrue(verify(audit).records() >= n + 2);
    }

    @Test
    void restart_afterACrash_paddedFile_continuesTheChainAndCutsThePadding() throws Exception {
        Path audit = dir.resolve("audit");
        AuditLog log = open(audit);
        for (int i = 0; i < 3; i++) log.append(call("m"));
        Path crashed = crashImage(audit, "crashed");
        assertTrue(Files.size(onlyFile(crashed)) > AuditPadding.tail(onlyFile(crashed)).records());

        AuditLog again = open(crashed);
        Map<String, Object> start = records(crashed).getLast();
        assertEquals("start", start.get("type"));
        assertEquals(Boolean.TRUE, start.get("unclean_stop"));
        assertNull(start.get("truncated_bytes"), "padding is not a torn record");
        again.append(call("m"));
        again.close();

        assertEquals(AuditVerifier.Status.INTACT, verify(crashed).status());
        assertEquals(7, verify(crashed).records()); // start, 3 calls, start, call, stop
        assertFalse(hasNul(Files.readAllBytes(onlyFile(crashed))));
    }

    @Test
    void restart_recordTornInsideThePadding_cutOffKeptAsideLikeATornTail() throws Exception {
        Path audit = dir.resolve("audit");
        AuditLog log = open(audit);
        log.append(call("m"));
        Path crashed = crashImage(audit, "torn");
        Path file = onlyFile(crashed);
        long end = AuditPadding.tail(file).records();
        // The crash: the next write reached the disk only in part, inside the zeroed blocks.
        try (var ch = java.nio.channels.FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap("{\"half a rec".getBytes(StandardCharsets.UTF_8)), end);
        }
        AuditVerifier.Report before = verify(crashed);
        assertEquals(AuditVerifier.Status.TAMPERED, before.status());
        assertTrue(before.problem().reason().contains("the last line is incomplete"), before.problem().reason());

        open(crashed).close();

        Map<String, Object> start = records(crashed).get(2);
        assertEquals("start", start.get("type"));
        assertEquals(12L, start.get("truncated_bytes"));
        try (Stream<Path> aside = Files.list(crashed)) {
            Path torn = aside.filter(p -> p.getFileName().toString().contains(".torn-")).findFirst().orElseThrow();
            assertEquals("{\"half a rec", Files.readString(torn));
        }
        assertEquals(AuditVerifier.Status.INTACT, verify(crashed).status());
    }

    @Test
    void restart_tornWriteWithAHole_everythingAfterTheFirstZeroCutOff() throws Exception {
        Path audit = dir.resolve("audit");
        AuditLog log = open(audit);
        log.append(call("m"));
        Path crashed = crashImage(audit, "hole");
        Path file = onlyFile(crashed);
        long end = AuditPadding.tail(file).records();
        // A torn multi-block write: its first block and its third reached the disk, the second did not.
        byte[] first = "{\"torn".getBytes(StandardCharsets.UTF_8);
        byte[] third = "\"tail\":2}\n".getBytes(StandardCharsets.UTF_8);
        try (var ch = java.nio.channels.FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(first), end);
            ch.write(java.nio.ByteBuffer.wrap(third), end + 8192);
        }
        AuditVerifier.Report before = verify(crashed);
        assertEquals(AuditVerifier.Status.TAMPERED, before.status());

        open(crashed).close();

        Map<String, Object> start = records(crashed).get(2);
        assertEquals("start", start.get("type"));
        // Everything from the torn line on, the hole and the block after it included, is cut and kept aside.
        assertEquals(8192L + third.length, start.get("truncated_bytes"));
        try (Stream<Path> aside = Files.list(crashed)) {
            Path torn = aside.filter(p -> p.getFileName().toString().contains(".torn-")).findFirst().orElseThrow();
            byte[] kept = Files.readAllBytes(torn);
            assertTrue(new String(kept, StandardCharsets.UTF_8).startsWith("{\"torn"));
            assertTrue(new String(kept, StandardCharsets.UTF_8).endsWith("\"tail\":2}\n"));
        }
        assertFalse(hasNul(Files.readAllBytes(file)));
        assertEquals(AuditVerifier.Status.INTACT, verify(crashed).status());
    }

    @Test
    void verify_zerosFollowedByData_reportedAtThatLine() throws Exception {
        Path audit = dir.resolve("audit");
        AuditLog log = open(audit);
        log.append(call("m"));
        log.close();
        Path file = onlyFile(audit);
        Files.write(file, new byte[4096], StandardOpenOption.APPEND);
        Files.write(file, "{\"forged\":1}\n".getBytes(StandardCharsets.UTF_8), StandardOpenOption.APPEND);

        AuditVerifier.Report r = verify(audit);

        assertEquals(AuditVerifier.Status.TAMPERED, r.status());
        assertEquals(4, r.problem().line());
        assertTrue(r.problem().reason().contains("zero bytes followed by more data"), r.problem().reason());
    }

    @Test
    void lines_stopAtThePadding() throws Exception {
        Path f = dir.resolve("audit-00000000000000000001.jsonl");
        Files.write(f, "a\nb\n\0\0\0\0".getBytes(StandardCharsets.UTF_8));
        assertEquals(List.of("a", "b"), AuditPadding.lines(f));
        AuditPadding.Tail t = AuditPadding.tail(f);
        assertEquals(new AuditPadding.Tail(4, 4, 8), t);
    }
}
