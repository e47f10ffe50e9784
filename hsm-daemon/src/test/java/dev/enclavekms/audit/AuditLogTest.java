package dev.enclavekms.audit;

import dev.enclavekms.audit.AuditFixtures.FaultyDisk;
import dev.enclavekms.audit.AuditFixtures.JcaSigner;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static dev.enclavekms.audit.AuditFixtures.call;
import static dev.enclavekms.audit.AuditFixtures.records;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The writer: chain, group commit, checkpoints, rotation, start and failing closed — on real files. */
@Timeout(60)
class AuditLogTest {
    @TempDir
    Path dir;
    final JcaSigner signer = new JcaSigner();
    final List<AuditLog> opened = new ArrayList<>();

    @AfterEach
    void closeAll() {
        opened.forEach(AuditLog::close);
    }

    private AuditLog open(AuditLog.Options options) throws IOException {
        return open(options, FileChannelOpener.REAL);
    }

    private AuditLog open(AuditLog.Options options, AuditLog.ChannelOpener opener) throws IOException {
        AuditLog log = AuditLog.open(options, signer, Clock.systemUTC(), Map.of("daemon_version", "test"), opener);
        opened.add(log);
        return log;
    }

    /** On {@code disk}, with a watchdog that refuses records not confirmed within a second. */
    private AuditLog openWithMaxWaitOneSecond(AuditLog.ChannelOpener disk) throws IOException {
        AuditLog.Options o = options();
        return open(new AuditLog.Options(o.dir(), o.maxFileBytes(), o.checkpointRecords(),
                o.checkpointInterval(), Duration.ofSeconds(1), o.maxQueue()), disk);
    }

    private AuditLog.Options options() {
        return AuditLog.Options.defaults(dir.resolve("audit"));
    }

    private AuditVerifier.Report verify() throws IOException {
        return AuditVerifier.verify(List.of(dir.resolve("audit")), signer.publicKey(), null);
    }

    private enum FileChannelOpener implements AuditLog.ChannelOpener {
        REAL;

        @Override
        public java.nio.channels.FileChannel open(Path file, java.nio.file.OpenOption... options) throws IOException {
            return java.nio.channels.FileChannel.open(file, options);
        }
    }

    // ------------------------------------------------------------------ chain

    @Test
    void appendThenClose_startCallsAndStopCheckpointChainedFromGenesis() throws Exception {
        AuditLog log = open(options());
        long a = log.append(call("dev.enclavekms.Kms.Status"));
        long b = log.append(call("dev.enclavekms.Kms.Encrypt", "key", "weights"));
        log.close();

        List<Map<String, Object>> r = records(dir.resolve("audit"));
        assertEquals(List.of("start", "call", "call", "checkpoint"), r.stream().map(m -> m.get("type")).toList());
        assertEquals(List.of(1L, 2L, 3L, 4L), r.stream().map(m -> m.get("seq")).toList());
        assertEquals(2, a);
        assertEquals(3, b);
        assertEquals(AuditRecords.GENESIS, r.getFirst().get("prev"));
        for (int i = 1; i < r.size(); i++) {
            assertEquals(r.get(i - 1).get("hash"), r.get(i).get("prev"), "record " + (i + 1) + " links to the one before");
            assertEquals(AuditRecords.hash(r.get(i)), r.get(i).get("hash"));
        }
        assertEquals("stop", r.getLast().get("reason"));
        assertEquals(3L, r.getLast().get("head_seq"));
        assertEquals("test", r.getFirst().get("daemon_version"));
        assertEquals(AuditVerifier.Status.INTACT, verify().status());
    }

    @Test
    void append_reservedField_refusedAndNothingWritten() throws Exception {
        AuditLog log = open(options());
        long before = log.head().seq();
        for (String reserved : List.of("seq", "hash", "prev", "time", "v")) {
            assertThrows(AuditUnavailableException.class, () -> log.append(call("m", reserved, "forged")), reserved);
        }
        assertEquals(before, log.head().seq());
    }

    @Test
    void reopen_afterCleanStop_continuesTheChainWithAStartRecord() throws Exception {
        AuditLog first = open(options());
        first.append(call("one"));
        first.close();
        String lastHash = first.head().hash();

        AuditLog second = open(options());
        second.append(call("two"));
        second.close();

        List<Map<String, Object>> r = records(dir.resolve("audit"));
        Map<String, Object> start = r.get(3);
        assertEquals("start", start.get("type"));
        assertEquals(lastHash, start.get("prev"));
        assertFalse(start.containsKey("unclean_stop"), "the first run stopped cleanly");
        assertEquals(AuditVerifier.Status.INTACT, verify().status());
    }

    // ------------------------------------------------------------------ group commit

    @Test
    void concurrentAppends_64ThreadsTimes50_allDurableInOrderWithFewerFsyncsThanRecords() throws Exception {
        AuditLog log = open(options().withCheckpoints(100_000, Duration.ofHours(1)));
        long fsyncsBefore = log.fsyncCount();
        int threads = 64;
        int each = 50;
        Set<Long> seqs = java.util.concurrent.ConcurrentHashMap.newKeySet();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                done.add(pool.submit(() -> {
                    for (int i = 0; i < each; i++) {
                        long seq = log.append(call("m", "thread", (long) thread, "i", (long) i));
                        // Durable before append returned: it is in the file already.
                        assertTrue(log.head().seq() >= seq);
                        seqs.add(seq);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) f.get();
        }
        long fsyncs = log.fsyncCount() - fsyncsBefore;

        int n = threads * each;
        assertEquals(n, seqs.size(), "every append got its own seq");
        List<Map<String, Object>> r = records(dir.resolve("audit"));
        assertEquals(n + 1, r.size());
        for (int i = 0; i < r.size(); i++) {
            assertEquals((long) i + 1, r.get(i).get("seq"));
        }
        // Each thread's records appear in the order it appended them.
        Map<Long, Long> lastOfThread = new java.util.HashMap<>();
        for (Map<String, Object> m : r.subList(1, r.size())) {
            Long prev = lastOfThread.put((Long) m.get("thread"), (Long) m.get("i"));
            assertEquals(prev == null ? 0L : prev + 1, m.get("i"));
        }
        assertTrue(fsyncs < n, fsyncs + " fsyncs for " + n + " records: no group commit");
        assertEquals(AuditVerifier.Status.INCOMPLETE, verify().status(), "intact, but not stopped yet");
        assertEquals(null, verify().problem());
    }

    // ------------------------------------------------------------------ checkpoints

    @Test
    void checkpointEvery10Records_signedAndVerifiableWithThePublicKey() throws Exception {
        AuditLog log = open(options().withCheckpoints(10, Duration.ofHours(1)));
        for (int i = 0; i < 34; i++) {
            log.append(call("m", "i", (long) i));
        }
        log.close();

        List<Map<String, Object>> r = records(dir.resolve("audit"));
        List<Long> checkpoints = r.stream().filter(m -> "checkpoint".equals(m.get("type")))
                .map(m -> (Long) m.get("seq")).toList();
        // start + 9 calls = 10 records, checkpoint 11; 10 more, checkpoint 22; ... stop at the end.
        assertEquals(List.of(11L, 22L, 33L, 39L), checkpoints);
        AuditVerifier.Report report = verify();
        assertEquals(AuditVerifier.Status.INTACT, report.status(), String.valueOf(report));
        assertEquals(4, report.signaturesVerified());
        assertTrue(report.stopped());
    }

    @Test
    void checkpointInterval_recordsLeftUncovered_checkpointWrittenWithoutFurtherCalls() throws Exception {
        AuditLog log = open(options().withCheckpoints(1000, Duration.ofMillis(50)));
        long seq = log.append(call("m"));

        assertTrue(AuditFixtures.eventually(Duration.ofSeconds(10), () -> log.head().seq() > seq),
                "no timed checkpoint");
        Map<String, Object> last = records(dir.resolve("audit")).getLast();
        assertEquals("checkpoint", last.get("type"));
        assertEquals("interval", last.get("reason"));
        assertEquals(seq, last.get("head_seq"));
    }

    @Test
    void checkpointRequested_returnsItsHeadOnceDurable() throws Exception {
        AuditLog log = open(options());
        log.append(call("m"));

        AuditLog.Head head = log.checkpoint();

        Map<String, Object> last = records(dir.resolve("audit")).getLast();
        assertEquals(head.seq(), last.get("seq"));
        assertEquals(head.hash(), last.get("hash"));
        assertEquals("request", last.get("reason"));
    }

    @Test
    void signerFails_recordsStillDurableUncovered_checkpointFollowsOnceItSignsAgain() throws Exception {
        java.util.concurrent.atomic.AtomicBoolean broken = new java.util.concurrent.atomic.AtomicBoolean(true);
        CheckpointSigner flaky = new CheckpointSigner() {
            @Override
            public Map<String, Object> keyFields() {
                return signer.keyFields();
            }

            @Override
            public byte[] sign(byte[] message) throws Exception {
                if (broken.get()) throw new IllegalStateException("enclave unreachable");
                return signer.sign(message);
            }

            @Override
            public java.security.PublicKey publicKey() {
                return signer.publicKey();
            }
        };
        AuditLog log = AuditLog.open(options().withCheckpoints(2, Duration.ofHours(1)), flaky, Clock.systemUTC(),
                Map.of(), FileChannelOpener.REAL);
        opened.add(log);
        for (int i = 0; i < 3; i++) {
            log.append(call("m", "i", (long) i));
        }
        AuditUnavailableException e = assertThrows(AuditUnavailableException.class, log::checkpoint);
        assertTrue(e.getMessage().contains("enclave unreachable"), e.getMessage());
        assertEquals(List.of("start", "call", "call", "call"),
                records(dir.resolve("audit")).stream().map(m -> m.get("type")).toList());

        broken.set(false);
        AuditLog.Head head = log.checkpoint();
        log.close();

        assertEquals(5, head.seq(), "the checkpoint covers the four records written while signing failed");
        assertEquals(AuditVerifier.Status.INTACT, verify().status(), String.valueOf(verify()));
    }

    // ------------------------------------------------------------------ rotation

    @Test
    void rotation_smallFiles_eachNamedForItsFirstSeqAndTheChainRunsAcross() throws Exception {
        AuditLog log = open(options().withMaxFileBytes(4096));
        for (int i = 0; i < 120; i++) {
            log.append(call("dev.enclavekms.Kms.Encrypt", "key", "weights-" + i, "outcome", "ok"));
        }
        log.close();

        List<Path> files = AuditLog.logFiles(dir.resolve("audit"));
        assertTrue(files.size() >= 4, files.size() + " files");
        String lastHashOfPrevious = null;
        for (Path f : files) {
            List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
            Map<String, Object> first = CanonicalJson.parseCanonical(lines.getFirst());
            assertEquals(AuditRecords.firstSeqOf(f).orElseThrow(), first.get("seq"), f + " is named for its first seq");
            if (lastHashOfPrevious != null) {
                assertEquals(lastHashOfPrevious, first.get("prev"), f + " continues the chain");
            }
            Map<String, Object> last = CanonicalJson.parseCanonical(lines.getLast());
            assertEquals("checkpoint", last.get("type"), f + " ends with a checkpoint");
            assertTrue(Files.size(f) <= 4096 + AuditRecords.MAX_LINE_BYTES);
            lastHashOfPrevious = (String) last.get("hash");
        }
        AuditVerifier.Report report = verify();
        assertEquals(AuditVerifier.Status.INTACT, report.status(), String.valueOf(report));
        assertEquals(121, report.records() - report.checkpoints(), "the start record and 120 calls");
    }

    // ------------------------------------------------------------------ start

    @Test
    void open_lastLineTorn_cutOffKeptAsideAndRecordedInTheStartRecord() throws Exception {
        AuditLog first = open(options());
        first.append(call("m"));
        Path file = first.head().file();
        first.close();
        Files.writeString(file, "{\"half a rec", StandardOpenOption.APPEND);

        open(options()).close();

        List<Map<String, Object>> r = records(dir.resolve("audit"));
        Map<String, Object> start = r.get(3);
        assertEquals("start", start.get("type"));
        assertEquals(12L, start.get("truncated_bytes"));
        try (var aside = Files.list(dir.resolve("audit"))) {
            Path torn = aside.filter(p -> p.getFileName().toString().contains(".torn-")).findFirst().orElseThrow();
            assertEquals("{\"half a rec", Files.readString(torn));
        }
        assertEquals(AuditVerifier.Status.INTACT, verify().status());
    }

    @Test
    void open_afterACrash_startRecordSaysTheStopWasUnclean() throws Exception {
        AuditLog first = open(options());
        first.append(call("m"));
        // A crash: the process ends without close(); here the stop checkpoint is removed by hand.
        first.close();
        Path file = first.head().file();
        List<String> lines = Files.readAllLines(file);
        Files.write(file, lines.subList(0, lines.size() - 1));

        open(options());

        Map<String, Object> start = records(dir.resolve("audit")).getLast();
        assertEquals(Boolean.TRUE, start.get("unclean_stop"));
    }

    @Test
    void open_lastRecordEdited_refusedSayingTheLogWasAltered() throws Exception {
        AuditLog first = open(options());
        first.append(call("m", "key", "weights"));
        Path file = first.head().file();
        first.close();
        String text = Files.readString(file);
        Files.writeString(file, text.replace("\"reason\":\"stop\"", "\"reason\":\"stip\""));

        IOException e = assertThrows(IOException.class, () -> open(options()));
        assertTrue(e.getMessage().contains("does not match its hash"), e.getMessage());
    }

    @Test
    void open_directoryIsAFile_refusedSayingWhy() throws Exception {
        Files.writeString(dir.resolve("audit"), "not a directory");

        IOException e = assertThrows(IOException.class, () -> open(options()));
        assertTrue(e.getMessage().contains("cannot create the audit directory"), e.getMessage());
    }

    // ------------------------------------------------------------------ failing closed

    @Test
    void diskFails_callsRefusedWithTheReasonUntilItRecovers_thenResumedRecordAndChainIntact() throws Exception {
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = open(options(), disk);
        log.append(call("before"));

        disk.partialBytes = 20; // the failing write leaves half a record behind
        disk.failure.set(new IOException("No space left on device"));
        AuditUnavailableException e = assertThrows(AuditUnavailableException.class, () -> log.append(call("lost")));
        assertTrue(e.getMessage().contains("No space left on device"), e.getMessage());
        assertNotNull(log.failure());
        for (int i = 0; i < 3; i++) {
            AuditUnavailableException refused = assertThrows(AuditUnavailableException.class, log::requireWritable);
            assertTrue(refused.getMessage().contains("refuses every call"), refused.getMessage());
        }
        assertThrows(AuditUnavailableException.class, () -> log.append(call("also lost")));

        disk.failure.set(null);
        log.requireWritable();
        long after = log.append(call("after"));

        List<Map<String, Object>> r = records(dir.resolve("audit"));
        assertEquals(List.of("start", "call", "resumed", "call"), r.stream().map(m -> m.get("type")).toList());
        assertEquals(List.of("before", "after"), r.stream().filter(m -> "call".equals(m.get("type")))
                .map(m -> m.get("method")).toList(), "no refused call was recorded, and no half record is left");
        Map<String, Object> resumed = r.get(2);
        assertTrue(((String) resumed.get("reason")).contains("No space left on device"));
        assertTrue((Long) resumed.get("refused_calls") >= 4, String.valueOf(resumed.get("refused_calls")));
        assertEquals(after, r.getLast().get("seq"));
        log.close();
        assertEquals(AuditVerifier.Status.INTACT, verify().status(), String.valueOf(verify()));
    }

    @Test
    void fileRemovedWhileOpen_recordsNotConfirmed_thenContinuesInANewFile() throws Exception {
        AuditLog log = open(options());
        long seq = log.append(call("m"));
        String hash = log.head().hash();
        Path file = log.head().file();
        Files.move(file, dir.resolve("moved-away.jsonl"));

        AuditUnavailableException e = assertThrows(AuditUnavailableException.class, () -> log.append(call("lost")));
        assertTrue(e.getMessage().contains("is gone"), e.getMessage());

        log.requireWritable(); // a new file, named for the next seq
        log.append(call("after"));
        log.close();
        Path next = dir.resolve("audit").resolve(AuditRecords.fileName(seq + 1));
        Map<String, Object> resumed = CanonicalJson.parseCanonical(Files.readAllLines(next).getFirst());
        assertEquals("resumed", resumed.get("type"));
        assertEquals(seq + 1, resumed.get("seq"));
        // The chain goes on from the last confirmed record; "lost", written into the removed
        // file but never confirmed, is no part of it.
        assertEquals(hash, resumed.get("prev"));
    }

    @Test
    void closed_appendRefused() throws Exception {
        AuditLog log = open(options());
        log.close();

        AuditUnavailableException e = assertThrows(AuditUnavailableException.class, () -> log.append(call("m")));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        Set<Object> types = new HashSet<>();
        records(dir.resolve("audit")).forEach(m -> types.add(m.get("type")));
        assertEquals(Set.of("start", "checkpoint"), types);
    }

    // ------------------------------------------------------------------ deferred and non-durable

    @Test
    void appendDeferred_returnsAtOnce_recordTakesItsPlaceInTheChainAndBecomesDurable() throws Exception {
        AuditLog log = open(options());
        log.appendDeferred(call("dev.enclavekms.Kms.Status"));
        long after = log.append(call("dev.enclavekms.Kms.Decrypt", "key", "weights"));
        // The durable call after it covers it: the deferred record is before it in the chain.
        assertEquals(3, after);
        List<Map<String, Object>> r = records(dir.resolve("audit"));
        assertEquals(List.of("dev.enclavekms.Kms.Status", "dev.enclavekms.Kms.Decrypt"),
                r.subList(1, 3).stream().map(m -> m.get("method")).toList());
        // Alone, it is written by the appender without anyone waiting.
        log.appendDeferred(call("dev.enclavekms.Kms.Status"));
        dev.enclavekms.server.varlink.Await.until("the appender to write the deferred record",
                java.time.Duration.ofSeconds(20), () -> log.head().seq() >= 4);
        assertEquals(4, log.head().seq());
        log.close();
        assertEquals(AuditVerifier.Status.INTACT, verify().status());
    }

    @Test
    void appendDeferred_fasterThanTheDisk_waitsInsteadOfFillingTheQueue() throws Exception {
        AuditLog.Options o = options();
        // A queue of 16: without back-pressure, three threads appending deferred records
        // in a loop fill it within one fsync and get AuditUnavailable.
        AuditLog log = open(new AuditLog.Options(o.dir(), o.maxFileBytes(), o.checkpointRecords(),
                o.checkpointInterval(), o.maxWait(), 16));
        int threads = 3;
        int each = 2000;
        List<java.util.concurrent.Future<?>> done = new ArrayList<>();
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(threads)) {
            for (int t = 0; t < threads; t++) {
                done.add(pool.submit(() -> {
                    for (int i = 0; i < each; i++) log.appendDeferred(call("dev.enclavekms.Kms.Status"));
                    return null;
                }));
            }
            for (var f : done) f.get(); // rethrows an AuditUnavailableException
        }
        long last = log.append(call("dev.enclavekms.Kms.Decrypt"));
        assertTrue(last >= 1 + threads * each + 1, "every deferred record is in the chain: " + last);
        log.close();
        assertEquals(AuditVerifier.Status.INTACT, verify().status());
    }

    @Test
    void appendDeferred_unwritableLog_refused() throws Exception {
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = open(options(), disk);
        disk.failure.set(new IOException("No space left on device"));
        assertThrows(AuditUnavailableException.class, () -> log.append(call("m")));
        assertThrows(AuditUnavailableException.class, () -> log.appendDeferred(call("dev.enclavekms.Kms.Status")));
    }

    // ------------------------------------------------------------------ appendThen (asynchronous)

    /** What one {@link AuditLog#appendThen} learned, on which thread, and what the file held then. */
    private record Settled(AuditUnavailableException refusal, String thread, String fileThen) {
    }

    private static String fileText(Path file) {
        try {
            return Files.readString(file, StandardCharsets.ISO_8859_1); // the padding is zeros, not UTF-8
        } catch (IOException e) {
            return "unreadable: " + e;
        }
    }

    @Test
    void appendThen_returnsAtOnce_confirmedOnlyOnceDurable_onTheAppender_inChainOrder() throws Exception {
        AuditLog log = open(options());
        Path file = log.head().file();
        int n = 20;
        List<java.util.concurrent.CompletableFuture<Settled>> outcomes = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            var outcome = new java.util.concurrent.CompletableFuture<Settled>();
            // Confirmed means durable: the record is in the file when its confirmation runs.
            log.appendThen(call("dev.enclavekms.Kms.Decrypt", "i", (long) i), refusal -> outcome.complete(
                    new Settled(refusal, Thread.currentThread().getName(), fileText(file))));
            outcomes.add(outcome);
        }
        for (int i = 0; i < n; i++) {
            Settled s = outcomes.get(i).get(20, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals(null, s.refusal(), "record " + i);
            assertTrue(s.fileThen().contains("\"i\":" + i + ","), "record " + i + " was in the file when confirmed");
            // Written by an appender: the caller never led the write, nor waited for it.
            assertTrue(s.thread().startsWith("audit-appender"), "record " + i + " on " + s.thread());
        }
        List<Map<String, Object>> r = records(dir.resolve("audit"));
        assertEquals(n + 1, r.size());
        for (int i = 0; i < n; i++) {
            assertEquals((long) i, r.get(i + 1).get("i"), "records in the order they were appended");
        }
        log.close();
        assertEquals(AuditVerifier.Status.INTACT, verify().status());
    }

    @Test
    void appendThen_aFailedWrite_refusesEveryRecordOfThatWrite_noneConfirmed_chainIntactAfterRecovery()
            throws Exception {
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = open(options(), disk);
        disk.writeGate = new java.util.concurrent.CountDownLatch(1);
        // The appender takes "first" and waits inside its write; "a" to "e" queue behind it
        // and go out together in the next write, which the disk fails ("first" is flushed
        // meanwhile: writes fail, fsync works).
        var first = new java.util.concurrent.CompletableFuture<AuditUnavailableException>();
        log.appendThen(call("first"), first::complete);
        assertTrue(disk.writeHeld.await(20, java.util.concurrent.TimeUnit.SECONDS), "the appender writes \"first\"");
        List<java.util.concurrent.CompletableFuture<AuditUnavailableException>> queued = new ArrayList<>();
        java.util.concurrent.atomic.AtomicInteger calledTwice = new java.util.concurrent.atomic.AtomicInteger();
        for (String m : List.of("a", "b", "c", "d", "e")) {
            var f = new java.util.concurrent.CompletableFuture<AuditUnavailableException>();
            log.appendThen(call(m), refusal -> {
                if (!f.complete(refusal)) calledTwice.incrementAndGet();
            });
            queued.add(f);
        }
        assertFalse(first.isDone(), "appendThen returned while its record was still being written");
        disk.partialBytes = 20; // the failing write leaves part of a record behind
        disk.writeFailure.set(new IOException("No space left on device"));
        disk.writeGate.countDown();

        assertEquals(null, first.get(20, java.util.concurrent.TimeUnit.SECONDS), "the write before the failure is confirmed");
        for (var f : queued) {
            AuditUnavailableException refusal = f.get(20, java.util.concurrent.TimeUnit.SECONDS);
            assertNotNull(refusal, "a record of the failed write was confirmed");
            assertTrue(refusal.getMessage().contains("No space left on device"), refusal.getMessage());
        }
        assertNotNull(log.failure());
        // While unwritable, appendThen refuses at once, on the caller's thread.
        var refusedNow = new java.util.concurrent.atomic.AtomicReference<AuditUnavailableException>();
        log.appendThen(call("while failed"), refusedNow::set);
        assertNotNull(refusedNow.get());

        disk.writeFailure.set(null);
        log.requireWritable();
        var after = new java.util.concurrent.CompletableFuture<AuditUnavailableException>();
        log.appendThen(call("after"), after::complete);
        assertEquals(null, after.get(20, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(0, calledTwice.get(), "each confirmation runs once");
        List<Map<String, Object>> r = records(dir.resolve("audit"));
        assertEquals(List.of("first", "after"), r.stream().filter(m -> "call".equals(m.get("type")))
                .map(m -> m.get("method")).toList(), "no record of the failed write is in the chain");
        log.close();
        assertEquals(AuditVerifier.Status.INTACT, verify().status(), String.valueOf(verify()));
    }

    @Test
    void appendThen_aWriteThatHangsPastMaxWait_refusedByTheWatchdog_onceOnly() throws Exception {
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = openWithMaxWaitOneSecond(disk);
        disk.writeGate = new java.util.concurrent.CountDownLatch(1); // a disk that does not return
        java.util.concurrent.atomic.AtomicInteger told = new java.util.concurrent.atomic.AtomicInteger();
        var outcome = new java.util.concurrent.CompletableFuture<AuditUnavailableException>();
        log.appendThen(call("held"), refusal -> {
            told.incrementAndGet();
            outcome.complete(refusal);
        });
        AuditUnavailableException refusal = outcome.get(20, java.util.concurrent.TimeUnit.SECONDS);
        assertNotNull(refusal, "not confirmed while the write hangs");
        assertTrue(refusal.getMessage().contains("did not confirm the record within 1 s"), refusal.getMessage());
        disk.writeGate.countDown(); // the disk returns: the record lands, but was already refused
        long seq = log.append(call("next"));
        assertEquals(seq - 1, records(dir.resolve("audit")).stream().filter(m -> "held".equals(m.get("method")))
                .findFirst().orElseThrow().get("seq"));
        assertEquals(1, told.get(), "told once");
    }

    @Test
    void appendThen_closedLog_refusedAtOnceOnTheCallersThread() throws Exception {
        AuditLog log = open(options());
        log.close();
        var refusal = new java.util.concurrent.atomic.AtomicReference<AuditUnavailableException>();
        var thread = new java.util.concurrent.atomic.AtomicReference<Thread>();
        log.appendThen(call("m"), e -> {
            refusal.set(e);
            thread.set(Thread.currentThread());
        });
        assertNotNull(refusal.get(), "refused before appendThen returned");
        assertTrue(refusal.get().getMessage().contains("closed"), refusal.get().getMessage());
        assertEquals(Thread.currentThread(), thread.get());
    }

    @Test
    void appendThen_fasterThanTheDisk_waitsInsteadOfFillingTheQueue_everyRecordConfirmed() throws Exception {
        AuditLog.Options o = options();
        // A queue of 16: three threads appending in a loop without waiting would fill it
        // within one fsync and be refused; past the high-water mark they wait instead.
        AuditLog log = open(new AuditLog.Options(o.dir(), o.maxFileBytes(), o.checkpointRecords(),
                o.checkpointInterval(), o.maxWait(), 16));
        int threads = 3;
        int each = 2000;
        java.util.concurrent.atomic.AtomicInteger confirmed = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.ConcurrentLinkedQueue<AuditUnavailableException> refusals =
                new java.util.concurrent.ConcurrentLinkedQueue<>();
        List<java.util.concurrent.Future<?>> done = new ArrayList<>();
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(threads)) {
            for (int t = 0; t < threads; t++) {
                done.add(pool.submit(() -> {
                    for (int i = 0; i < each; i++) {
                        log.appendThen(call("dev.enclavekms.Kms.Decrypt"), e -> {
                            if (e == null) confirmed.incrementAndGet();
                            else refusals.add(e);
                        });
                    }
                    return null;
                }));
            }
            for (var f : done) f.get();
        }
        dev.enclavekms.server.varlink.Await.until("every record confirmed", Duration.ofSeconds(30),
                () -> confirmed.get() + refusals.size() == threads * each);
        assertEquals(List.of(), List.copyOf(refusals));
        log.close();
        assertEquals(AuditVerifier.Status.INTACT, verify().status());
        assertEquals(threads * each, records(dir.resolve("audit")).stream()
                .filter(m -> "call".equals(m.get("type"))).count());
    }

    // ------------------------------------------------------------------ overlapping commits

    /** What was confirmed or refused, in the order it was told. */
    private record Told(String method, AuditUnavailableException refusal) {
    }

    private java.util.concurrent.CompletableFuture<AuditUnavailableException> appendThenTelling(
            AuditLog log, String method, List<Told> told) {
        var outcome = new java.util.concurrent.CompletableFuture<AuditUnavailableException>();
        log.appendThen(call(method), refusal -> {
            synchronized (told) {
                told.add(new Told(method, refusal));
            }
            outcome.complete(refusal);
        });
        return outcome;
    }

    @Test
    void overlap_theNextCommitIsWrittenAndFlushedWhileOneFlushes_confirmedOnlyAfterIt_inWriteOrder() throws Exception {
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = open(options(), disk);
        Path file = log.head().file();
        List<Told> told = new ArrayList<>();
        var gate = new java.util.concurrent.CountDownLatch(1);
        disk.forceGate.set(gate); // "first"'s fdatasync does not return until the gate opens
        var first = appendThenTelling(log, "first", told);
        assertTrue(disk.forceHeld.await(20, java.util.concurrent.TimeUnit.SECONDS), "\"first\" is being flushed");
        int forcesBefore = disk.forcesDone.get();

        var second = appendThenTelling(log, "second", told);
        // Not behind "first"'s flush: written, and flushed by a fdatasync of its own, meanwhile.
        assertTrue(AuditFixtures.eventually(Duration.ofSeconds(20),
                () -> fileText(file).contains("\"method\":\"second\"") && disk.forcesDone.get() > forcesBefore),
                "\"second\" was not written and flushed while \"first\" was flushing");
        Thread.sleep(50);
        assertFalse(second.isDone(), "\"second\" was confirmed before \"first\", whose flush has not ended");
        assertFalse(first.isDone());
        assertEquals(1, log.head().seq(), "the durable head stays at the start record");

        gate.countDown();
        assertEquals(null, first.get(20, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(null, second.get(20, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(List.of(new Told("first", null), new Told("second", null)), told, "confirmed in chain order");
        assertEquals(3, log.head().seq());
        log.close();
        assertEquals(List.of("first", "second"), records(dir.resolve("audit")).stream()
                .filter(m -> "call".equals(m.get("type"))).map(m -> m.get("method")).toList());
        assertEquals(AuditVerifier.Status.INTACT, verify().status(), String.valueOf(verify()));
    }

    @Test
    void overlap_underLoad_aRecordArrivingDuringALargeCommitsFlushWaitsForIt_noSecondFlush() throws Exception {
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = open(options(), disk);
        Path file = log.head().file();
        List<Told> told = new ArrayList<>();
        // A commit of more than LARGE_COMMIT records: they queue while "a" is held mid-write.
        var aWrite = new java.util.concurrent.CountDownLatch(1);
        disk.writeGate = aWrite;
        var a = appendThenTelling(log, "a", told);
        assertTrue(disk.writeHeld.await(20, java.util.concurrent.TimeUnit.SECONDS), "\"a\" is being written");
        List<java.util.concurrent.CompletableFuture<AuditUnavailableException>> large = new ArrayList<>();
        List<String> order = new ArrayList<>(List.of("a"));
        for (int i = 0; i < AuditLog.LARGE_COMMIT + 6; i++) {
            large.add(appendThenTelling(log, "b" + i, told));
            order.add("b" + i);
        }
        var bWrite = new java.util.concurrent.CountDownLatch(1);
        disk.writeGate = bWrite; // the write of the b-records waits too, until its flush is armed
        aWrite.countDown();
        assertEquals(null, a.get(20, java.util.concurrent.TimeUnit.SECONDS));
        var bFlush = new java.util.concurrent.CountDownLatch(1);
        disk.forceGate.set(bFlush);
        bWrite.countDown();
        assertTrue(disk.forceHeld.await(20, java.util.concurrent.TimeUnit.SECONDS), "the large commit is being flushed");
        assertTrue(fileText(file).contains("\"method\":\"b" + (AuditLog.LARGE_COMMIT + 5) + "\""),
                "the b-records went in one commit");
        int forcesBefore = disk.forcesDone.get();

        var c = appendThenTelling(log, "c", told);
        order.add("c");
        // Give a wrongly started second lane 300 ms to show itself (written, flushed or
        // confirmed), returning as soon as it does; the assertions below say which.
        AuditFixtures.eventually(Duration.ofMillis(300), () -> fileText(file).contains("\"method\":\"c\"")
                || disk.forcesDone.get() != forcesBefore || c.isDone());
        assertFalse(fileText(file).contains("\"method\":\"c\""),
                "\"c\" was written on the second lane while a large commit flushed");
        assertEquals(forcesBefore, disk.forcesDone.get(), "a second flush ran while a large commit flushed");
        assertFalse(c.isDone());

        bFlush.countDown();
        for (var b : large) {
            assertEquals(null, b.get(20, java.util.concurrent.TimeUnit.SECONDS));
        }
        assertEquals(null, c.get(20, java.util.concurrent.TimeUnit.SECONDS), "\"c\" went with the lane's next commit");
        assertEquals(order, told.stream().map(Told::method).toList(), "confirmed in chain order");
        assertTrue(told.stream().allMatch(x -> x.refusal() == null), String.valueOf(told));
        log.close();
        assertEquals(order, records(dir.resolve("audit")).stream()
                .filter(m -> "call".equals(m.get("type"))).map(m -> m.get("method")).toList());
        assertEquals(AuditVerifier.Status.INTACT, verify().status(), String.valueOf(verify()));
    }

    @Test
    void overlap_aCallerOnAVirtualThread_leavesTheSecondLaneToAnAppender() throws Exception {
        // Its fdatasync would pin its carrier while the first commit's may pin the other one.
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = open(options(), disk);
        List<Told> told = new ArrayList<>();
        var gate = new java.util.concurrent.CountDownLatch(1);
        disk.forceGate.set(gate);
        var first = appendThenTelling(log, "first", told);
        assertTrue(disk.forceHeld.await(20, java.util.concurrent.TimeUnit.SECONDS));
        int forcesBefore = disk.forcesDone.get();
        var seq = new java.util.concurrent.CompletableFuture<Long>();
        Thread.ofVirtual().start(() -> {
            try {
                seq.complete(log.append(call("second")));
            } catch (AuditUnavailableException e) {
                seq.completeExceptionally(e);
            }
        });
        assertTrue(AuditFixtures.eventually(Duration.ofSeconds(20), () -> disk.forcesDone.get() > forcesBefore),
                "the lone call's record was not flushed while the first commit flushed");
        assertTrue(List.copyOf(disk.forcedBy).getLast().startsWith("audit-appender"), String.valueOf(disk.forcedBy));
        assertFalse(seq.isDone(), "append returned before the commit before it was durable");
        gate.countDown();
        assertEquals(3L, seq.get(20, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(null, first.get(20, java.util.concurrent.TimeUnit.SECONDS));
    }

    @Test
    void overlap_aFailedFlush_failsItsCommitAndEveryCommitWrittenAfterIt_evenOnesWhoseOwnFlushSucceeded()
            throws Exception {
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = open(options(), disk);
        log.append(call("before"));
        List<Told> told = new ArrayList<>();
        var gate = new java.util.concurrent.CountDownLatch(1);
        disk.heldForceFailure = new IOException("Input/output error");
        disk.forceGate.set(gate);
        var first = appendThenTelling(log, "first", told);
        assertTrue(disk.forceHeld.await(20, java.util.concurrent.TimeUnit.SECONDS));
        int forcesBefore = disk.forcesDone.get();
        var second = appendThenTelling(log, "second", told);
        assertTrue(AuditFixtures.eventually(Duration.ofSeconds(20), () -> disk.forcesDone.get() > forcesBefore),
                "\"second\" was not flushed while \"first\" was flushing");

        gate.countDown(); // "first"'s fdatasync fails: "second" may not be durable either
        for (var f : List.of(first, second)) {
            AuditUnavailableException refusal = f.get(20, java.util.concurrent.TimeUnit.SECONDS);
            assertNotNull(refusal, "a commit at or after the failed flush was confirmed");
            assertTrue(refusal.getMessage().contains("Input/output error"), refusal.getMessage());
        }
        assertEquals(List.of("first", "second"), told.stream().map(Told::method).toList(), "told in chain order");
        assertNotNull(log.failure(), "a failed flush makes the log unwritable");
        var refusedNow = new java.util.concurrent.atomic.AtomicReference<AuditUnavailableException>();
        log.appendThen(call("refused while failed"), refusedNow::set);
        assertNotNull(refusedNow.get(), "taken while unwritable");

        log.requireWritable(); // the disk works again: cut back to "before", a resumed record
        long after = log.append(call("after"));
        List<Map<String, Object>> r = records(dir.resolve("audit"));
        assertEquals(List.of("start", "call", "resumed", "call"), r.stream().map(m -> m.get("type")).toList());
        assertEquals(List.of("before", "after"), r.stream().filter(m -> "call".equals(m.get("type")))
                .map(m -> m.get("method")).toList(), "nothing of the failed or later commit is in the chain");
        assertEquals(after, r.getLast().get("seq"));
        log.close();
        assertEquals(AuditVerifier.Status.INTACT, verify().status(), String.valueOf(verify()));
    }

    @Test
    void overlap_aFlushThatHangs_holdsTheCommitsAfterIt_watchdogRefusesThemPastMaxWait() throws Exception {
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = openWithMaxWaitOneSecond(disk);
        List<Told> told = new ArrayList<>();
        var gate = new java.util.concurrent.CountDownLatch(1);
        disk.forceGate.set(gate); // a fdatasync that does not return
        var first = appendThenTelling(log, "first", told);
        assertTrue(disk.forceHeld.await(20, java.util.concurrent.TimeUnit.SECONDS));
        var second = appendThenTelling(log, "second", told); // its own flush ends, but it is behind "first"
        for (var f : List.of(first, second)) {
            AuditUnavailableException refusal = f.get(20, java.util.concurrent.TimeUnit.SECONDS);
            assertNotNull(refusal, "confirmed while an earlier flush hangs");
            assertTrue(refusal.getMessage().contains("did not confirm the record within 1 s"), refusal.getMessage());
        }
        gate.countDown(); // the disk returns: both land, already refused, each told once
        long seq = log.append(call("next"));
        assertEquals(seq, log.head().seq());
        assertEquals(2, told.size(), String.valueOf(told));
    }

    @Test
    void overlap_closeWhileAFlushIsInProgress_waitsForItThenStops() throws Exception {
        FaultyDisk disk = new FaultyDisk();
        AuditLog log = open(options(), disk);
        List<Told> told = new ArrayList<>();
        var gate = new java.util.concurrent.CountDownLatch(1);
        disk.forceGate.set(gate);
        var first = appendThenTelling(log, "first", told);
        assertTrue(disk.forceHeld.await(20, java.util.concurrent.TimeUnit.SECONDS));
        var second = appendThenTelling(log, "second", told);
        Thread closer = Thread.ofPlatform().start(log::close);
        closer.join(300);
        assertTrue(closer.isAlive(), "close did not wait for the flush in progress");
        gate.countDown();
        closer.join(20_000);
        assertFalse(closer.isAlive());
        assertEquals(null, first.get(20, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(null, second.get(20, java.util.concurrent.TimeUnit.SECONDS));
        List<Map<String, Object>> r = records(dir.resolve("audit"));
        assertEquals("stop", r.getLast().get("reason"));
        assertEquals(AuditVerifier.Status.INTACT, verify().status(), String.valueOf(verify()));
    }

    @Test
    void overlap_concurrentLoad_nativeFlushes_everyRecordConfirmedOnceDurable_chainVerifies() throws Exception {
        // The daemon's own opener: fdatasync natively, one descriptor per lane.
        AuditLog log = AuditLog.open(options().withMaxFileBytes(256 * 1024), signer, Clock.systemUTC(),
                Map.of("daemon_version", "test"));
        opened.add(log);
        int threads = 8;
        int each = 300;
        java.util.concurrent.ConcurrentLinkedQueue<String> problems = new java.util.concurrent.ConcurrentLinkedQueue<>();
        java.util.concurrent.atomic.AtomicInteger confirmed = new java.util.concurrent.atomic.AtomicInteger();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                done.add(pool.submit(() -> {
                    for (int i = 0; i < each; i++) {
                        if (thread % 2 == 0) {
                            long seq = log.append(call("m", "thread", (long) thread, "i", (long) i));
                            if (log.head().seq() < seq) problems.add("append " + seq + " returned before durable");
                            confirmed.incrementAndGet();
                        } else {
                            long i0 = i;
                            log.appendThen(call("m", "thread", (long) thread, "i", (long) i), refusal -> {
                                if (refusal != null) problems.add("refused " + thread + "/" + i0 + ": " + refusal);
                                else confirmed.incrementAndGet();
                            });
                            if (i % 16 == 0) Thread.sleep(0, 200_000); // arrivals spread over flushes
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) f.get();
        }
        assertTrue(AuditFixtures.eventually(Duration.ofSeconds(30), () -> confirmed.get() + problems.size() == threads * each));
        assertEquals(List.of(), List.copyOf(problems));
        log.close();
        AuditVerifier.Report report = verify();
        assertEquals(AuditVerifier.Status.INTACT, report.status(), String.valueOf(report));
        List<Map<String, Object>> r = records(dir.resolve("audit"));
        assertEquals(threads * each, r.stream().filter(m -> "call".equals(m.get("type"))).count());
        Map<Long, Long> lastOfThread = new java.util.HashMap<>();
        for (Map<String, Object> m : r) {
            if (!"call".equals(m.get("type"))) continue;
            Long prev = lastOfThread.put((Long) m.get("thread"), (Long) m.get("i"));
            assertEquals(prev == null ? 0L : prev + 1, m.get("i"), "each thread's records in the order appended");
        }
        assertTrue(AuditLog.logFiles(dir.resolve("audit")).size() > 1, "rotation happened under load");
    }

    @Test
    void durabilityNone_recordsWrittenAndChained_neverFsynced() throws Exception {
        AuditLog log = open(options().withDurability(AuditLog.Durability.NONE));
        for (int i = 0; i < 20; i++) log.append(call("m", "i", (long) i));
        assertEquals(0, log.fsyncCount());
        log.close();
        assertEquals(22, records(dir.resolve("audit")).size());
        assertEquals(AuditVerifier.Status.INTACT, verify().status());
    }

    @Test
    void durabilityNone_appendThen_writtenAndConfirmedOnTheCallersThread() throws Exception {
        AuditLog log = open(options().withDurability(AuditLog.Durability.NONE));
        Thread caller = Thread.currentThread();
        for (int i = 0; i < 5; i++) {
            CompletableFuture<Thread> confirmedOn = new CompletableFuture<>();
            log.appendThen(call("m", "i", (long) i), refusal -> {
                if (refusal != null) confirmedOn.completeExceptionally(refusal);
                else confirmedOn.complete(Thread.currentThread());
            });
            // Nothing else writes: with no flush to wait for, the caller wrote its record itself.
            assertTrue(confirmedOn.isDone(), "appendThen returned before its record was written");
            assertSame(caller, confirmedOn.get());
        }
        assertEquals(0, log.fsyncCount());
        log.close();
        assertEquals(7, records(dir.resolve("audit")).size());
        assertEquals(AuditVerifier.Status.INTACT, verify().status());
    }

    @Test
    void seal_sameHashAndLineAsEncodingTheRecordTwice() {
        for (Map<String, Object> r : List.<Map<String, Object>>of(
                Map.of("v", 1L, "seq", 7L, "time", "t", "prev", "p", "type", "call", "method", "m", "group", "g",
                        "key", "k", "context", Map.of("model", "hmac-sha256:00"), "user", "ü\u0001\"x"),
                Map.of("a", 1L), Map.of("z", "y"), Map.of("hasg", 1L, "hasi", 2L), Map.of())) {
            AuditLog.Sealed s = AuditLog.seal(r);
            String hash = AuditRecords.hash(r);
            Map<String, Object> withHash = new java.util.HashMap<>(r);
            withHash.put("hash", hash);
            assertEquals(hash, s.record().get("hash"));
            assertEquals(CanonicalJson.write(withHash) + "\n", new String(s.line(), StandardCharsets.UTF_8));
        }
    }
}
