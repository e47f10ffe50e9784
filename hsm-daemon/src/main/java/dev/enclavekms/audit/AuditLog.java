package dev.enclavekms.audit;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The hash-chained, group-committed audit log: one JSON line per record in files
 * {@code audit-<first seq>.jsonl} under one directory (format: {@link AuditRecords},
 * docs/audit.md).
 *
 * <h2>Durability</h2>
 * {@link #append} returns only once its record is on disk: one writer at a time — the first
 * waiting caller that finds no write in progress, else the appender thread — takes every
 * record queued since the last write, gives them consecutive sequence numbers, chains their
 * hashes, writes them with one gathering write and makes them durable with one
 * {@code fdatasync} ({@link FileChannel#force force(false)}), then releases every waiting
 * caller. Concurrent calls therefore share an fsync instead of queueing for one each. A
 * caller waits at most {@link Options#maxWait()}. {@link #appendThen} is the same without
 * the wait: the writer that makes the record durable runs the caller's confirmation.
 *
 * <h2>Overlapping commits</h2>
 * A commit holds one of {@link #LANES} lanes from its write until it is settled, and lets go
 * of the write before its {@code fdatasync}: so a record that arrives while one commit
 * flushes is written at once and flushed on the other lane (on a descriptor of its own)
 * instead of waiting for that flush to end before its own begins. Commits are settled in
 * write order whichever flush ends first ({@link #settle}): a record is confirmed only once
 * a {@code fdatasync} that began after its write succeeded and every commit before it is
 * durable; a failed commit fails every commit written after it. A caller on a virtual thread
 * takes a lane only when no other commit is in flight (its native {@code fdatasync} pins its
 * carrier); otherwise an appender takes its record. Under load — a commit of at least
 * {@link #LARGE_COMMIT} records in flight — an appender does not start the second lane: the
 * records queued behind that flush go with the next commit of the lane that flushes. Calls
 * then arrive faster than flushes end, so the overlap would only halve every commit and
 * double the {@code fdatasync}s (each ≈ 26 µs of CPU on the development VM;
 * docs/performance.md "The daemon's own work per call (session 7)").
 *
 * <h2>Failing closed</h2>
 * When a write, an fsync or the check that the file is still the one being written (not
 * removed or replaced) fails, every record of that write fails, the durable head stays where
 * it was, and the log is <em>unwritable</em>: {@link #requireWritable} and {@link #append}
 * refuse with the reason until the log is writable again. Recovery is attempted when a call
 * asks ({@link #requireWritable}) and every few seconds: it cuts off whatever the failed
 * write left past the last durable record and writes a {@code resumed} record (when the
 * failure began, why, how many calls were refused) — only when that record is durable does
 * the log accept calls again, so a log that cannot take even that record keeps refusing.
 *
 * <h2>Checkpoints and rotation</h2>
 * Every {@link Options#checkpointRecords()} records, or {@link Options#checkpointInterval()}
 * after the first record not yet covered, a {@code checkpoint} record signed by
 * {@link CheckpointSigner} follows; so does one when a file is full (it is the file's last
 * record) and one as the log closes ({@code reason: stop}). A file that would grow past
 * {@link Options#maxFileBytes()} is closed and the next record starts
 * {@code audit-<its seq>.jsonl}, its {@code prev} naming the last record of the file before:
 * the chain runs across files.
 *
 * <h2>Preallocation</h2>
 * The file being written is kept extended with zero bytes ahead of its last record
 * ({@link AuditPadding}): {@link #PREALLOCATION_BYTES} at a time, written and made durable
 * before records go there, so that a group commit overwrites blocks the file already has and
 * its {@code fdatasync} flushes no metadata. The appender thread grows the padding when less
 * than a quarter of it is left, off the callers' path; a write that finds too little grows it
 * itself. Padding that cannot be written (a full disk) is given up: records are then
 * appended as before. A file that is closed — rotated, or at a clean stop — is cut back to
 * its last record, so closed files hold records only.
 *
 * <h2>Start</h2>
 * {@link #open} continues the chain from the last record on disk: it checks that record's
 * hash (a log whose end was altered is refused), cuts off a torn last line and whatever an
 * unconfirmed write left in the padding (a write that was never confirmed, so never answered;
 * the bytes are kept beside the file as {@code .torn-<time>}), cuts off the padding, and
 * writes a {@code start} record.
 */
public final class AuditLog implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(AuditLog.class.getName());
    /** Most records one write carries. */
    private static final int MAX_BATCH = 4096;
    /**
     * How many commits may be in flight at once: while one lane's {@code fdatasync} runs, the
     * next batch is written and its own {@code fdatasync} starts on the other lane
     * (docs/performance.md "Overlapping group commits (session 6)").
     */
    static final int LANES = 2;
    /**
     * Records in a commit from which the log counts as under load: while such a commit is in
     * flight, an appender leaves the queue to that commit's lane (see Overlapping commits).
     */
    static final int LARGE_COMMIT = 4;
    /** How much zero padding the log keeps ahead of its last record (see Preallocation above). */
    static final int PREALLOCATION_BYTES = 1 << 20;
    /** Below this much padding left, the appender thread grows it. */
    private static final int PREALLOCATION_LOW_WATER = PREALLOCATION_BYTES / 4;
    /** How often an unwritable log tries again on its own (calls also make it try). */
    private static final Duration RETRY = Duration.ofSeconds(5);
    /** After a checkpoint could not be signed, how long before signing is tried again. */
    private static final Duration SIGN_RETRY = Duration.ofSeconds(1);

    /**
     * @param dir                the log directory (created 0700 if missing)
     * @param maxFileBytes       a file is closed once the next record would make it larger
     *                           (it may exceed this by its closing checkpoint)
     * @param checkpointRecords  a checkpoint after this many records
     * @param checkpointInterval or this long after the first record it would cover
     * @param maxWait            how long a caller waits for its record to become durable
     * @param maxQueue           records waiting for the appender beyond which calls are refused
     */
    public record Options(Path dir, long maxFileBytes, int checkpointRecords, Duration checkpointInterval,
                          Duration maxWait, int maxQueue, Durability durability) {
        public static final long DEFAULT_MAX_FILE_BYTES = 64L * 1024 * 1024;
        public static final int DEFAULT_CHECKPOINT_RECORDS = 1000;
        public static final Duration DEFAULT_CHECKPOINT_INTERVAL = Duration.ofSeconds(60);
        public static final Duration DEFAULT_MAX_WAIT = Duration.ofSeconds(10);
        public static final int DEFAULT_MAX_QUEUE = 65536;
        /** Smallest file size: room for a few records and the closing checkpoint. */
        public static final long MIN_FILE_BYTES = 4096;

        /** With durable writes ({@link Durability#FSYNC}). */
        public Options(Path dir, long maxFileBytes, int checkpointRecords, Duration checkpointInterval,
                       Duration maxWait, int maxQueue) {
            this(dir, maxFileBytes, checkpointRecords, checkpointInterval, maxWait, maxQueue, Durability.FSYNC);
        }

        public Options {
            Objects.requireNonNull(dir, "dir");
            Objects.requireNonNull(durability, "durability");
            if (maxFileBytes < MIN_FILE_BYTES) {
                throw new IllegalArgumentException("audit files must be allowed at least " + MIN_FILE_BYTES + " bytes");
            }
            if (checkpointRecords < 1) {
                throw new IllegalArgumentException("a checkpoint needs at least 1 record to cover");
            }
            if (checkpointInterval.isNegative() || checkpointInterval.isZero()) {
                throw new IllegalArgumentException("the checkpoint interval must be positive");
            }
            if (maxWait.isNegative() || maxWait.isZero() || maxQueue < 1) {
                throw new IllegalArgumentException("maxWait and maxQueue must be positive");
            }
        }

        public static Options defaults(Path dir) {
            return new Options(dir, DEFAULT_MAX_FILE_BYTES, DEFAULT_CHECKPOINT_RECORDS, DEFAULT_CHECKPOINT_INTERVAL,
                    DEFAULT_MAX_WAIT, DEFAULT_MAX_QUEUE);
        }

        public Options withMaxFileBytes(long bytes) {
            return new Options(dir, bytes, checkpointRecords, checkpointInterval, maxWait, maxQueue, durability);
        }

        public Options withCheckpoints(int records, Duration interval) {
            return new Options(dir, maxFileBytes, records, interval, maxWait, maxQueue, durability);
        }

        public Options withDurability(Durability d) {
            return new Options(dir, maxFileBytes, checkpointRecords, checkpointInterval, maxWait, maxQueue, d);
        }
    }

    /**
     * Whether a group commit ends with {@code fdatasync}. {@link #NONE} exists to measure what
     * durability costs (bench/run); the daemon accepts it only in {@code --dev} mode and says
     * so loudly (docs/audit.md, docs/decisions.md).
     */
    public enum Durability {
        /** Every write is made durable ({@code fdatasync}) before its callers are released. */
        FSYNC,
        /** Written, never forced: a crash of the host (not of the daemon) may lose recent records. */
        NONE
    }

    /** The last durable record: its sequence number, hash and time, and the file it is in. */
    public record Head(long seq, String hash, String time, Path file) {
    }

    /** How the log opens its files; tests substitute channels that fail on demand. */
    @FunctionalInterface
    interface ChannelOpener {
        FileChannel open(Path file, OpenOption... options) throws IOException;
    }

    private sealed interface Request permits Append, Checkpoint, Probe, Stop {
    }

    /** A record to write: its own fields, already encoded on the caller's thread, and who learns its fate. */
    private record Append(CanonicalFields fields, Settlement done) implements Request {
    }

    /**
     * Told once what became of a record given to {@link #appendThen}, on the thread that
     * settled it: the group commit's writer (the appender, most often), or the caller itself
     * when the record was refused at once. It must return quickly and never block: every
     * other record of the same commit waits for it.
     */
    @FunctionalInterface
    public interface Confirmation {
        /** @param refusal null once the record is durable; else why it never will be confirmed */
        void settled(AuditUnavailableException refusal);
    }

    /** Who learns what became of a record: a caller waiting for it, or a {@link Confirmation}. */
    private sealed interface Settlement permits Waiting, Confirming {
        void durable(long seq);

        void refused(AuditUnavailableException e);
    }

    /** A caller that waits for its record ({@link #append}, {@link #appendDeferred}). */
    private static final class Waiting extends CompletableFuture<Long> implements Settlement {
        @Override
        public void durable(long seq) {
            complete(seq);
        }

        @Override
        public void refused(AuditUnavailableException e) {
            completeExceptionally(e);
        }
    }

    /** A record of {@link #appendThen}: its confirmation runs once, and a bug in it stays its own. */
    private static final class Confirming implements Settlement {
        private final Confirmation then;
        private final long deadlineNanos;
        /**
         * Settled already: by the writer that took it (whose failed write may also refuse
         * records a rotation's flush already confirmed), by stop, or by the watchdog past the
         * deadline — whoever comes first.
         */
        private final java.util.concurrent.atomic.AtomicBoolean settled = new java.util.concurrent.atomic.AtomicBoolean();

        Confirming(Confirmation then, long deadlineNanos) {
            this.then = then;
            this.deadlineNanos = deadlineNanos;
        }

        boolean overdue(long nowNanos) {
            return nowNanos - deadlineNanos > 0;
        }

        @Override
        public void durable(long seq) {
            settle(null);
        }

        @Override
        public void refused(AuditUnavailableException e) {
            settle(e);
        }

        private void settle(AuditUnavailableException refusal) {
            if (!settled.compareAndSet(false, true)) {
                return;
            }
            try {
                then.settled(refusal);
            } catch (RuntimeException e) {
                // The writer runs every confirmation of its commit: one bug must not leave the others unsent.
                LOG.log(System.Logger.Level.ERROR, "an audit confirmation failed", e);
            }
        }
    }

    private record Checkpoint(String reason, CompletableFuture<Head> done) implements Request {
    }

    /** Asks an unwritable log to try recovering now; completes once it is writable. */
    private record Probe(CompletableFuture<Void> done) implements Request {
    }

    private record Stop(CompletableFuture<Void> done) implements Request {
    }

    private final Options options;
    private final CheckpointSigner signer;
    private final Clock clock;
    private final ChannelOpener opener;
    private final LinkedBlockingQueue<Request> queue;
    /** Queue length beyond which a deferred append waits for its commit (see appendDeferred). */
    private final int deferredHighWater;
    private static final int DEFERRED_HIGH_WATER = 1024;
    /** One appender thread per lane, so that each lane's commit can be made while the other's flushes. */
    private final Thread[] appenders;
    /** Whether each appender is at work (not parked): {@link #wakeAppender} prefers one that is not. */
    private final boolean[] appenderBusy;
    /** Refuses {@link #appendThen} records not confirmed within maxWait (see {@link #watch}). */
    private final Thread watchdog;
    /** Every lane; a commit holds one from its write until it is settled (see Overlapping commits). */
    private final Lane[] lanes;
    private final java.util.concurrent.ArrayBlockingQueue<Lane> freeLanes;
    private final AtomicLong forces = new AtomicLong();
    /** Held by the one thread staging and writing a batch (a waiting caller or an appender): see {@link #lead}. */
    private final java.util.concurrent.atomic.AtomicBoolean writing = new java.util.concurrent.atomic.AtomicBoolean();
    /** Commits written and not yet settled, in write (= chain) order; guarded by {@link #order}. */
    private final java.util.ArrayDeque<Batch> unsettled = new java.util.ArrayDeque<>();
    private final java.util.concurrent.locks.ReentrantLock order = new java.util.concurrent.locks.ReentrantLock();
    private final java.util.concurrent.locks.Condition settledOne = order.newCondition();
    /**
     * A commit failed, so every commit written after it fails too (guarded by {@link #order});
     * cleared by {@link #recover} once nothing written before the failure is still unsettled.
     */
    private boolean broken;
    private volatile boolean stopped;
    private final AtomicLong refused = new AtomicLong();

    // ---- state owned by the thread that holds "writing" (and by open() before the appenders start)
    private FileChannel channel;
    /**
     * The lines of one write, copied into one direct buffer kept for the next write (only the
     * writer, who holds {@code writing}, uses it). Writing the staged heap buffers as they are
     * made the JDK copy each into a temporary direct buffer of its own, looked up in a
     * per-thread cache: measured at 5.6 % of the daemon's CPU at 16 × 8.
     */
    private ByteBuffer writeBuffer = ByteBuffer.allocateDirect(64 * 1024);
    /** Whether commits sync natively ({@link DataSync}, one descriptor per lane): real files, and FFM available. */
    private volatile boolean nativeSync;
    private Path file;
    private Object fileKey;
    /** Bytes of the current file written (not necessarily durable yet): the next write goes here. */
    private long writtenSize;
    /**
     * The file holds zeros, written and durable, from {@code writtenSize} up to here (never less
     * than {@code writtenSize}): a write that ends below it changes no metadata.
     */
    private long zeroedEnd;
    /** After padding could not be written: not tried again before this (a full disk must not make every commit try). */
    private long preallocateRetryNanos;
    private boolean preallocationFailing;
    private boolean fileHasRecords;
    /** The end of the chain as written (the next record continues it); durable once its commit settles. */
    private long writtenSeq;
    private String writtenHash = AuditRecords.GENESIS;
    private String writtenTime = "";
    private long writtenSinceCheckpoint;
    private long signRetryNanos;
    private volatile long nextRetryNanos;

    // ---- the durable end: changed only by settle (under "order"), read by the writer
    /** Bytes of the current file that are durable; anything past it was never confirmed. */
    private volatile long fileSize;
    private volatile long seq;
    private volatile String hash = AuditRecords.GENESIS;
    private volatile String time = "";
    /** Durable records not yet covered by a checkpoint, and since when the first of them waits. */
    private volatile long sinceCheckpoint;
    private volatile long uncoveredSinceNanos = System.nanoTime();

    // ---- shared
    private volatile Head head;
    /** Why the log cannot be written; null while it can. */
    private volatile String failure;
    private volatile Instant failedSince;
    private volatile boolean closed;

    private AuditLog(Options options, CheckpointSigner signer, Clock clock, ChannelOpener opener) {
        this.options = options;
        this.signer = signer;
        this.clock = clock;
        this.opener = opener;
        this.nativeSync = opener == FILES;
        this.queue = new LinkedBlockingQueue<>(options.maxQueue());
        this.deferredHighWater = Math.max(1, Math.min(DEFERRED_HIGH_WATER, options.maxQueue() / 2));
        this.lanes = new Lane[LANES];
        this.freeLanes = new java.util.concurrent.ArrayBlockingQueue<>(LANES);
        this.appenders = new Thread[LANES];
        this.appenderBusy = new boolean[LANES];
        for (int i = 0; i < LANES; i++) {
            lanes[i] = new Lane();
            freeLanes.add(lanes[i]);
            int me = i;
            appenders[i] = Thread.ofPlatform().daemon().name(i == 0 ? "audit-appender" : "audit-appender-" + (i + 1))
                    .unstarted(() -> run(me));
        }
        this.watchdog = Thread.ofVirtual().name("audit-watchdog").unstarted(this::watch);
    }

    /**
     * Opens the log in {@code options.dir()}, continuing the chain on disk, and writes a
     * {@code start} record with {@code startFields}.
     *
     * @throws IOException when the directory cannot be used, the end of the log is damaged,
     *                     or the start record cannot be made durable; the message says which
     */
    public static AuditLog open(Options options, CheckpointSigner signer, Clock clock, Map<String, Object> startFields)
            throws IOException {
        return open(options, signer, clock, startFields, FILES);
    }

    /** The real file system; with it, commits sync through {@link DataSync}. */
    private static final ChannelOpener FILES = FileChannel::open;

    static AuditLog open(Options options, CheckpointSigner signer, Clock clock, Map<String, Object> startFields,
                         ChannelOpener opener) throws IOException {
        AuditLog log = new AuditLog(options, signer, clock, opener);
        Map<String, Object> start = new LinkedHashMap<>(startFields);
        start.put(AuditRecords.TYPE, AuditRecords.TYPE_START);
        try {
            log.resume(start);
        } catch (IOException | RuntimeException e) {
            log.closeChannel();
            throw e;
        }
        for (Thread t : log.appenders) t.start();
        log.watchdog.start();
        try {
            log.append(start);
        } catch (AuditUnavailableException e) {
            log.close();
            throw new IOException("cannot write to the audit log in " + options.dir() + ": " + e.getMessage());
        }
        return log;
    }

    // ------------------------------------------------------------------ API

    /**
     * Appends a record with {@code fields} (which must not set {@code v}, {@code seq},
     * {@code time}, {@code prev} or {@code hash}) and returns its sequence number once it is
     * durable.
     *
     * @throws AuditUnavailableException when the log is unwritable or closed, the record is
     *                                   malformed or too long, or it was not durable within
     *                                   {@link Options#maxWait()}
     */
    public long append(Map<String, Object> fields) throws AuditUnavailableException {
        Objects.requireNonNull(fields, "fields");
        refuseIfClosed();
        if (failure != null) {
            // The appender would try to recover first; let requireWritable decide, counting the refusal.
            requireWritable();
        }
        CanonicalFields encoded = canonicalFields(fields);
        Waiting done = new Waiting();
        enqueue(new Append(encoded, done));
        lead();
        return await(done);
    }

    /**
     * Appends a record like {@link #append} but returns as soon as it is queued: the record
     * takes its place in the chain and becomes durable with the next group commit, which
     * follows at once (the appender never waits for more work). For calls that release
     * nothing and change nothing (CallAuditor.DEFERRED_METHODS): a crash of the host in
     * that moment loses their record; a failed write makes the log unwritable, so the next
     * call is refused as usual.
     *
     * @throws AuditUnavailableException when the log is unwritable or closed, or too many
     *                                   records are waiting
     */
    public void appendDeferred(Map<String, Object> fields) throws AuditUnavailableException {
        Objects.requireNonNull(fields, "fields");
        refuseIfClosed();
        if (failure != null) {
            requireWritable();
        }
        CanonicalFields encoded = canonicalFields(fields);
        Waiting done = new Waiting();
        enqueue(new Append(encoded, done));
        if (queue.size() > deferredHighWater) {
            // Back-pressure: callers that do not wait could otherwise outrun the disk until
            // the queue is full and every call, durable ones included, is refused. Past the
            // mark a deferred call waits for its group commit like any other.
            lead();
            await(done);
            return;
        }
        wakeAppender(); // written by an appender: the caller does not wait
    }

    /**
     * Appends a record like {@link #append}, without waiting for it: returns once it is
     * queued, and {@code then} learns — once — when it is durable, or why it will not be.
     * The record takes its place in the chain like any other and is written by the appender
     * (woken here), so the caller never waits for the disk; {@code then} runs on the thread
     * that made it durable or failed it, or on this thread when it is refused at once (the
     * log is unwritable or closed, the record is malformed, too many records wait). Every
     * guarantee of {@link #append} holds: a record is confirmed only once durable, and a
     * failed write refuses every record of that write.
     *
     * <p>Back-pressure as for {@link #appendDeferred}: past the high-water mark the caller
     * leads the write itself and waits for it (at most {@link Options#maxWait()}), then runs
     * {@code then} here; callers that do not wait could otherwise outrun the disk until the
     * queue is full.
     *
     * <p>As a waiting caller gives up after {@link Options#maxWait()}, a record not durable by
     * then is refused by the watchdog (a disk that hangs in {@code fdatasync} holds the writer,
     * so the writer cannot); like a caller's, such a record may still reach the file later.
     */
    public void appendThen(Map<String, Object> fields, Confirmation then) {
        Objects.requireNonNull(fields, "fields");
        Objects.requireNonNull(then, "then");
        CanonicalFields encoded;
        try {
            refuseIfClosed();
            if (failure != null) {
                // Recovery is tried by the next admission (requireWritable), not by a record whose call already ran.
                refused.incrementAndGet();
                throw unwritable();
            }
            encoded = canonicalFields(fields);
            if (queue.size() >= deferredHighWater) {
                Waiting done = new Waiting();
                enqueue(new Append(encoded, done));
                lead();
                await(done);
                then.settled(null);
                return;
            }
            enqueue(new Append(encoded, new Confirming(then, System.nanoTime() + options.maxWait().toNanos())));
        } catch (AuditUnavailableException e) {
            then.settled(e);
            return;
        }
        if (stopped) {
            refuseQueued(); // closed meanwhile: no writer will take what is left
            return;
        }
        if (options.durability() == Durability.NONE) {
            // No flush to wait for: a write to the page cache costs this thread less than
            // waking the appender (one wake-up per commit measured 9 µs per call at 16 × 8).
            lead();
        } else if (!writing.get() && !freeLanes.isEmpty() && !largeCommitInFlight()) {
            wakeAppender();
        }
        // Else a writer is at work, or every lane is committing, or a large commit is (the
        // second lane waits for it under load): the writer looks at the queue once it lets go
        // of the write, and each lane's holder once its commit is settled (see lead). Waking an
        // appender anyway would cost this thread a system call and the appender an empty round.
    }

    /**
     * Returns when the log can be written; otherwise asks it to recover and, if it still
     * cannot, refuses. The daemon calls this before running a call, so that nothing is done
     * that could not be recorded.
     */
    public void requireWritable() throws AuditUnavailableException {
        refuseIfClosed();
        if (failure == null) {
            return;
        }
        CompletableFuture<Void> probe = new CompletableFuture<>();
        try {
            enqueue(new Probe(probe));
            lead();
            await(probe);
        } catch (AuditUnavailableException e) {
            refused.incrementAndGet();
            throw e;
        }
    }

    /** Writes a signed checkpoint now and returns it once durable. */
    public Head checkpoint() throws AuditUnavailableException {
        refuseIfClosed();
        CompletableFuture<Head> done = new CompletableFuture<>();
        enqueue(new Checkpoint("request", done));
        lead();
        return await(done);
    }

    /** The last durable record. */
    public Head head() {
        return head;
    }

    /** Why the log cannot be written, or null while it can. */
    public String failure() {
        return failure;
    }

    /** How many fsyncs the log has made (group commit makes this far smaller than the record count). */
    public long fsyncCount() {
        return forces.get();
    }

    public Path directory() {
        return options.dir();
    }

    /**
     * Writes the closing {@code stop} checkpoint and closes the file. Calls still queued
     * are refused. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        CompletableFuture<Void> done = new CompletableFuture<>();
        // put, not offer: the stop must reach the appender even when the queue is full.
        try {
            queue.put(new Stop(done));
            wakeAppender();
            done.get(options.maxWait().toMillis() + 5000, TimeUnit.MILLISECONDS);
            for (Thread t : appenders) t.join(Duration.ofSeconds(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            LOG.log(System.Logger.Level.ERROR, "the audit log did not close cleanly: " + e.getMessage());
        }
    }

    /**
     * The record's own fields in canonical form, made here on the caller's thread rather than
     * by the writer, which every waiting call queues behind (CanonicalFields).
     */
    private static CanonicalFields canonicalFields(Map<String, Object> fields) throws AuditUnavailableException {
        for (String reserved : AuditRecords.RESERVED) {
            if (fields.containsKey(reserved)) {
                throw new AuditUnavailableException("internal error: an audit record may not set '" + reserved + "'");
            }
        }
        try {
            return CanonicalFields.of(fields);
        } catch (IllegalArgumentException e) {
            throw new AuditUnavailableException("internal error: the audit record cannot be encoded: " + e.getMessage());
        }
    }

    private void refuseIfClosed() throws AuditUnavailableException {
        if (closed) {
            throw new AuditUnavailableException("the audit log is closed: the daemon is stopping");
        }
    }

    private void enqueue(Request r) throws AuditUnavailableException {
        if (!queue.offer(r)) {
            throw new AuditUnavailableException("the audit log has " + options.maxQueue()
                    + " records waiting to be written; the disk is too slow for the load");
        }
    }

    private <T> T await(CompletableFuture<T> f) throws AuditUnavailableException {
        try {
            return f.get(options.maxWait().toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AuditUnavailableException("the audit log did not confirm the record within "
                    + options.maxWait().toSeconds() + " s (is the disk hung?)");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof AuditUnavailableException a) throw a;
            throw new AuditUnavailableException("the audit log failed: " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AuditUnavailableException("interrupted while waiting for the audit log");
        }
    }

    private AuditUnavailableException unwritable() {
        return new AuditUnavailableException("the audit log cannot be written (" + failure
                + "); the daemon refuses every call until it can");
    }

    // ------------------------------------------------------------------ the appender

    /** Records of one write, staged: the tentative head they lead to and who waits for them. */
    private final class Staging {
        final List<ByteBuffer> lines = new ArrayList<>();
        final List<Runnable> onDurable = new ArrayList<>();
        /** Told when the write that carries them fails, or one before it. */
        final List<java.util.function.Consumer<AuditUnavailableException>> onFailed = new ArrayList<>();
        long bytes;
        long seq = AuditLog.this.writtenSeq;
        String hash = AuditLog.this.writtenHash;
        String time = AuditLog.this.writtenTime;
        long sinceCheckpoint = AuditLog.this.writtenSinceCheckpoint;
        boolean checkpointed;

        boolean isEmpty() {
            return lines.isEmpty();
        }
    }

    /**
     * One commit, written (in the page cache) and waiting to be settled: made durable by a
     * {@code fdatasync} that started after its write, then confirmed — or failed — strictly in
     * write order, by {@link #settle}.
     */
    private static final class Batch {
        final List<Runnable> onDurable;
        final List<java.util.function.Consumer<AuditUnavailableException>> onFailed;
        /** Bytes written; 0 for a commit that only confirms (a probe, a refused checkpoint). */
        final long bytes;
        /** Where the file's records end once this commit is durable. */
        final long end;
        final long seq;
        final String hash;
        final String time;
        final long sinceCheckpoint;
        final boolean checkpointed;
        final Path file;
        final Object fileKey;
        final FileChannel channel;
        /** The requests of the write it came from, for the watchdog while it waits to be settled. */
        final Request[] requests;
        /** Set by the lane that made it durable or failed it (under {@link #order}). */
        boolean synced;
        IOException error;

        Batch(Staging st, long end, Path file, Object fileKey, FileChannel channel, Request[] requests) {
            this.onDurable = List.copyOf(st.onDurable);
            this.onFailed = List.copyOf(st.onFailed);
            this.bytes = st.bytes;
            this.end = end;
            this.seq = st.seq;
            this.hash = st.hash;
            this.time = st.time;
            this.sinceCheckpoint = st.sinceCheckpoint;
            this.checkpointed = st.checkpointed;
            this.file = file;
            this.fileKey = fileKey;
            this.channel = channel;
            this.requests = requests == null ? new Request[0] : requests;
        }
    }

    /**
     * A commit slot: the descriptor its {@code fdatasync} runs on and the requests it carries
     * (for the watchdog). Each lane syncs on a descriptor of its own: a write-back error is
     * reported once per open file description, so two {@code fdatasync}s in flight on one
     * descriptor could leave the error to the later commit and report success to the earlier
     * one, whose pages failed.
     */
    private static final class Lane {
        /** Only the lane's holder uses it; null until the first commit, or where unavailable. */
        volatile DataSync sync;
        /** The requests of the commit this lane carries, for the watchdog; null between commits. */
        volatile Request[] inFlight;
    }

    /**
     * An appender: writes what {@link #appendThen} and deferred appends queued, timed
     * checkpoints and retries of an unwritable log. Callers that wait for their record write it
     * themselves ({@link #lead}), so such a call does not wake another thread to have its
     * record written.
     */
    private void run(int me) {
        while (!stopped) {
            // At most a second: the timers are set by whichever thread wrote last.
            java.util.concurrent.locks.LockSupport.parkNanos(this, Math.min(waitNanos(), TimeUnit.SECONDS.toNanos(1)));
            appenderBusy[me] = true;
            try {
                lead();
            } finally {
                appenderBusy[me] = false;
            }
        }
    }

    /**
     * Whether a commit of at least {@link #LARGE_COMMIT} records is being written or flushed:
     * the log is under load, and the second lane waits for it (see Overlapping commits).
     */
    private boolean largeCommitInFlight() {
        for (Lane lane : lanes) {
            Request[] inFlight = lane.inFlight;
            if (inFlight != null && inFlight.length >= LARGE_COMMIT) return true;
        }
        return false;
    }

    private boolean onAppender() {
        Thread t = Thread.currentThread();
        for (Thread a : appenders) {
            if (a == t) return true;
        }
        return false;
    }

    /**
     * Wakes an appender that is not at work, else the first one (its next park returns at once
     * and it looks at the queue again): a wake-up is never lost, at worst one is spent.
     */
    private void wakeAppender() {
        for (int i = 0; i < appenders.length; i++) {
            if (!appenderBusy[i]) {
                java.util.concurrent.locks.LockSupport.unpark(appenders[i]);
                return;
            }
        }
        java.util.concurrent.locks.LockSupport.unpark(appenders[0]);
    }

    /**
     * Group commit without a hand-off, in two stages: the first caller to find a free lane and
     * no write in progress becomes the writer ("leader"), takes everything queued — its own
     * record and those of every caller that queued meanwhile — chains and writes it with one
     * write, lets go of the write and only then makes it durable with one {@code fdatasync}
     * on its lane. So while one commit flushes, the next is written and its flush starts on
     * the other lane; commits are settled (confirmed or failed) in write order whichever flush
     * ends first ({@link #settle}). Callers that find a write in progress, or every lane
     * committing, wait for their future; the writer, once it lets go of the write, and each
     * lane, once its commit is settled, look at the queue and hand what waits there to an
     * appender (or take it, on an appender), so nothing waits for a caller that has gone. (A
     * caller queues before it tries to lead, and a leader lets go before it looks at the
     * queue: a request is always either taken by a leader or seen by one.)
     */
    private void lead() {
        boolean appenderThread = onAppender();
        if (!appenderThread && Thread.currentThread().isInterrupted()) {
            // An interrupt would close the file channel mid-write; an appender writes instead.
            wakeAppender();
            return;
        }
        // A virtual thread's native fdatasync pins its carrier (DataSync): with a commit already
        // in flight, perhaps on the other carrier, the daemon's two carriers would both be
        // pinned and every virtual thread would stall. Such a caller leaves the second lane to
        // an appender (a platform thread).
        boolean pinsACarrier = !appenderThread && Thread.currentThread().isVirtual()
                && options.durability() == Durability.FSYNC;
        List<Request> batch = new ArrayList<>();
        boolean led = false;
        boolean handOff = false;
        while (!stopped) {
            Lane lane = freeLanes.poll();
            if (lane == null) {
                break; // every lane is committing; each looks at the queue once settled
            }
            Batch written = null;
            try {
                if (pinsACarrier && freeLanes.size() < LANES - 1) {
                    handOff = true; // once this lane is back
                    break;
                }
                if (appenderThread && freeLanes.size() < LANES - 1 && largeCommitInFlight()) {
                    // Under load: the queue goes with that lane's next commit, once it is settled
                    // (its holder looks at the queue then), instead of as a second, smaller one.
                    break;
                }
                if (!writing.compareAndSet(false, true)) {
                    break;
                }
                led = true;
                try {
                    if (stopped) return;
                    queue.drainTo(batch, MAX_BATCH);
                    lane.inFlight = batch.toArray(Request[]::new);
                    Outcome out = processSafely(batch, lane);
                    if (out.stop() != null) {
                        commit(out.written(), lane);
                        drain();
                        stop(out.stop());
                        return;
                    }
                    written = out.written();
                } finally {
                    batch.clear();
                    writing.set(false);
                }
                if (!stopped && !queue.isEmpty() && !freeLanes.isEmpty() && !largeCommitInFlight()) {
                    wakeAppender(); // queued during this write: its commit need not wait for this flush
                }
                commit(written, lane);
            } finally {
                lane.inFlight = null;
                freeLanes.offer(lane);
            }
            if (queue.isEmpty() || !appenderThread) {
                break;
            }
        }
        if ((handOff || led && !appenderThread) && !stopped && !queue.isEmpty()) {
            wakeAppender(); // what was queued while this caller committed, or what it leaves to an appender
        }
    }

    /** What {@link #process} leaves to do: the last commit it wrote (to be made durable), and a stop. */
    private record Outcome(Batch written, Stop stop) {
    }

    /** Processes a batch; a bug makes the log unwritable rather than leave callers waiting. */
    private Outcome processSafely(List<Request> batch, Lane lane) {
        try {
            return process(batch, lane);
        } catch (RuntimeException e) {
            // A bug here must not leave callers waiting for confirmations that never come:
            // the log is unwritable from now on, and says so.
            LOG.log(System.Logger.Level.ERROR, "the audit log's appender failed", e);
            failure = "internal error in the audit log (" + e + "); see the daemon log";
            failedSince = clock.instant();
            nextRetryNanos = System.nanoTime() + RETRY.toNanos();
            AuditUnavailableException refusal = unwritable();
            Stop stop = null;
            for (Request r : batch) {
                if (r instanceof Stop s) stop = s;
                else failRequest(r, refusal);
            }
            return new Outcome(null, stop);
        }
    }

    /** After the closing checkpoint: closes the file, refuses what is still queued, ends the appenders. */
    private void stop(Stop stop) {
        stopped = true;
        trimPadding();
        closeChannel();
        refuseQueued();
        stop.done().complete(null);
        for (Thread t : appenders) java.util.concurrent.locks.LockSupport.unpark(t);
    }

    /**
     * The watchdog: nobody waits on an {@link #appendThen} record, so nobody would notice one
     * held past {@link Options#maxWait()} by a write that does not return (a hung disk holds
     * the writer, often an appender). Once a second it refuses such records, queued or in a
     * commit in progress, as a waiting caller would give up.
     */
    private void watch() {
        long period = Math.max(10, Math.min(1000, options.maxWait().toMillis() / 2));
        while (!stopped) {
            try {
                Thread.sleep(period);
            } catch (InterruptedException e) {
                return;
            }
            long now = System.nanoTime();
            for (Lane lane : lanes) {
                Request[] inLane = lane.inFlight;
                if (inLane != null) {
                    for (Request r : inLane) expire(r, now);
                }
            }
            for (Request r : queue) {
                expire(r, now);
            }
            // Flushed, but behind a commit whose flush has not ended: held as long as it is.
            List<Request[]> behind = new ArrayList<>();
            order.lock();
            try {
                for (Batch b : unsettled) behind.add(b.requests);
            } finally {
                order.unlock();
            }
            for (Request[] requests : behind) {
                for (Request r : requests) expire(r, now);
            }
        }
    }

    private void expire(Request r, long nowNanos) {
        if (r instanceof Append a && a.done() instanceof Confirming c && c.overdue(nowNanos)) {
            c.refused(new AuditUnavailableException("the audit log did not confirm the record within "
                    + options.maxWait().toSeconds() + " s (is the disk hung?)"));
        }
    }

    /** Refuses what is still queued once the log has stopped (each request is taken by one thread). */
    private void refuseQueued() {
        for (Request r = queue.poll(); r != null; r = queue.poll()) {
            failRequest(r, new AuditUnavailableException("the audit log is closed: the daemon is stopping"));
        }
    }

    /** How long the appender may wait for work before a timed checkpoint or a retry is due. */
    private long waitNanos() {
        long now = System.nanoTime();
        if (failure != null) {
            return Math.max(1, nextRetryNanos - now);
        }
        if (sinceCheckpoint > 0) {
            // Not before signing may be tried again: an enclave that cannot sign must not make this spin.
            long due = Math.max(uncoveredSinceNanos + options.checkpointInterval().toNanos(), signRetryNanos);
            return Math.max(1, due - now);
        }
        return TimeUnit.HOURS.toNanos(1);
    }

    /**
     * Stages and writes one batch; returns its last commit, written but not yet durable (the
     * caller commits it once it has let go of the write), and the Stop request when the batch
     * held one. Commits split off a large batch, and those of a rotation, are made durable here.
     */
    private Outcome process(List<Request> batch, Lane lane) {
        Stop stop = null;
        boolean tryNow = !batch.isEmpty() || System.nanoTime() >= nextRetryNanos;
        if (failure != null && (!tryNow || !recover(lane))) {
            AuditUnavailableException e = unwritable();
            for (Request r : batch) {
                if (r instanceof Stop s) stop = s;
                else failRequest(r, e);
            }
            return new Outcome(null, stop);
        }
        Staging st = new Staging();
        int next = 0;
        try {
            for (; next < batch.size(); next++) {
                switch (batch.get(next)) {
                    case Append a -> stageRecord(st, a.fields(), a.done(), lane);
                    case Checkpoint c -> stageCheckpoint(st, c.reason(), c.done());
                    case Probe p -> {
                        st.onDurable.add(() -> p.done().complete(null));
                        st.onFailed.add(p.done()::completeExceptionally);
                    }
                    case Stop s -> stop = s;
                }
                if (st.bytes >= AuditPadding.MAX_WRITE_BYTES) {
                    // Bounded writes bound what a crash can leave torn in the padding (AuditPadding).
                    flush(st, lane);
                }
            }
            if (stop != null) {
                stageCheckpoint(st, AuditRecords.REASON_STOP, null);
            } else if (sinceCheckpoint > 0 && st.sinceCheckpoint > 0
                    && System.nanoTime() - uncoveredSinceNanos >= options.checkpointInterval().toNanos()) {
                stageCheckpoint(st, "interval", null);
            }
            if (stop == null && onAppender() && zeroedEnd - writtenSize - st.bytes < PREALLOCATION_LOW_WATER) {
                // Before this commit's write, not after: the padding's own fdatasync must not
                // be the one that flushes (and could swallow a write-back error of) this
                // commit's pages, which its lane's fdatasync confirms.
                preallocate(st.bytes, lane);
            }
            return new Outcome(write(st, lane), stop);
        } catch (IOException e) {
            // Whatever this batch already wrote is settled first (a failed write settled as
            // failed): the failure then takes its place in the commit order, and every commit
            // written after it fails with it.
            drain();
            order.lock();
            try {
                if (!broken) {
                    broken = true;
                    fail(e, file);
                }
            } finally {
                order.unlock();
            }
            AuditUnavailableException refusal = unwritable();
            // Nothing staged became durable: everyone waiting on it, and the rest of the batch, is refused.
            for (int i = 0; i < batch.size(); i++) {
                Request r = batch.get(i);
                // Requests already released by a flush during rotation stay released: a
                // completed future ignores this.
                if (r instanceof Stop s) stop = s;
                else failRequest(r, refusal);
            }
            return new Outcome(null, stop);
        }
    }

    private static void failRequest(Request r, AuditUnavailableException e) {
        switch (r) {
            case Append a -> a.done().refused(e);
            case Checkpoint c -> c.done().completeExceptionally(e);
            case Probe p -> p.done().completeExceptionally(e);
            case Stop s -> s.done().complete(null);
        }
    }

    private void stageRecord(Staging st, CanonicalFields fields, Settlement done, Lane lane) throws IOException {
        CanonicalFields.Line sealed = chained(st, fields);
        if (sealed.bytes().length > AuditRecords.MAX_LINE_BYTES) {
            done.refused(new AuditUnavailableException("the audit record would be " + sealed.bytes().length
                    + " bytes, more than " + AuditRecords.MAX_LINE_BYTES));
            return;
        }
        if ((fileHasRecords || !st.isEmpty()) && writtenSize + st.bytes + sealed.bytes().length > options.maxFileBytes()) {
            rotate(st, lane);
            sealed = chained(st, fields);
        }
        stage(st, sealed.seq(), sealed.hash(), sealed.time(), sealed.bytes());
        long mySeq = st.seq;
        st.sinceCheckpoint++;
        st.onDurable.add(() -> done.durable(mySeq));
        st.onFailed.add(done::refused);
        if (st.sinceCheckpoint >= options.checkpointRecords()) {
            stageCheckpoint(st, "count", null);
        }
    }

    /** A record with its hash, and its line. */
    record Sealed(Map<String, Object> record, byte[] line) {
    }

    /**
     * The record with the chain fields of the next position in {@code st}: the writer's
     * share of a record's encoding (its own fields were encoded by its caller).
     */
    private CanonicalFields.Line chained(Staging st, CanonicalFields fields) {
        return fields.seal(st.seq + 1, AuditRecords.time(clock.instant()), st.hash);
    }

    /**
     * Adds the hash to a record and encodes its line, canonicalising it once: members sort by
     * key, so the line is the encoding without {@code hash} with the {@code hash} member put
     * between the members before it and those after it. The writer's records go through
     * {@link CanonicalFields} instead, which must give the same bytes (AuditLogTest).
     */
    static Sealed seal(Map<String, Object> record) {
        Map<String, Object> before = new LinkedHashMap<>();
        Map<String, Object> after = new LinkedHashMap<>();
        record.forEach((k, v) -> {
            if (!k.equals(AuditRecords.HASH)) (k.compareTo(AuditRecords.HASH) < 0 ? before : after).put(k, v);
        });
        String a = CanonicalJson.write(before);
        String b = CanonicalJson.write(after);
        a = a.substring(1, a.length() - 1);
        b = b.substring(1, b.length() - 1);
        String without = "{" + a + (a.isEmpty() || b.isEmpty() ? "" : ",") + b + "}";
        String hash = java.util.HexFormat.of().formatHex(AuditRecords.sha256(without.getBytes(StandardCharsets.UTF_8)));
        String line = "{" + a + (a.isEmpty() ? "" : ",") + "\"" + AuditRecords.HASH + "\":\"" + hash + "\""
                + (b.isEmpty() ? "" : ",") + b + "}\n";
        Map<String, Object> sealed = new LinkedHashMap<>(record);
        sealed.put(AuditRecords.HASH, hash);
        return new Sealed(sealed, line.getBytes(StandardCharsets.UTF_8));
    }

    private static byte[] encode(Map<String, Object> record) {
        return (CanonicalJson.write(record) + "\n").getBytes(StandardCharsets.UTF_8);
    }

    private void stage(Staging st, long seq, String hash, String time, byte[] line) {
        st.lines.add(ByteBuffer.wrap(line));
        st.bytes += line.length;
        st.seq = seq;
        st.hash = hash;
        st.time = time;
    }

    /**
     * Stages a signed checkpoint of everything before it. A checkpoint that cannot be signed
     * (the enclave is unreachable) is left out and tried again later — the records it would
     * have covered are durable all the same — unless somebody asked for it ({@code done}).
     */
    private void stageCheckpoint(Staging st, String reason, CompletableFuture<Head> done) {
        // After a failure, automatic checkpoints wait a moment; the one asked for and the
        // closing one are always tried.
        boolean always = done != null || AuditRecords.REASON_STOP.equals(reason);
        if (!always && System.nanoTime() < signRetryNanos) {
            return;
        }
        Map<String, Object> record = new LinkedHashMap<>(signer.keyFields());
        record.put(AuditRecords.TYPE, AuditRecords.TYPE_CHECKPOINT);
        record.put(AuditRecords.CHECKPOINT_REASON, reason);
        record.put(AuditRecords.CHECKPOINT_HEAD_SEQ, st.seq);
        record.put(AuditRecords.VERSION_FIELD, AuditRecords.FORMAT_VERSION);
        record.put(AuditRecords.SEQ, st.seq + 1);
        record.put(AuditRecords.TIME, AuditRecords.time(clock.instant()));
        record.put(AuditRecords.PREV, st.hash);
        byte[] signature;
        try {
            signature = signer.sign(AuditRecords.signedBytes(record));
        } catch (Exception e) {
            signRetryNanos = System.nanoTime() + SIGN_RETRY.toNanos();
            LOG.log(System.Logger.Level.WARNING, "cannot sign an audit checkpoint (" + e.getMessage()
                    + "); records stay unsigned until the next checkpoint succeeds");
            if (done != null) {
                done.completeExceptionally(new AuditUnavailableException("cannot sign the checkpoint: " + e.getMessage()));
            }
            return;
        }
        record.put(AuditRecords.SIGNATURE, Base64.getEncoder().encodeToString(signature));
        record.put(AuditRecords.HASH, AuditRecords.hash(record));
        stage(st, (Long) record.get(AuditRecords.SEQ), (String) record.get(AuditRecords.HASH),
                (String) record.get(AuditRecords.TIME), encode(record));
        st.sinceCheckpoint = 0;
        st.checkpointed = true;
        if (done != null) {
            Head h = new Head(st.seq, st.hash, st.time, file);
            st.onDurable.add(() -> done.complete(h));
            st.onFailed.add(done::completeExceptionally);
        }
    }

    /**
     * Closes the current file with a checkpoint and opens the next, named by the seq of the
     * record that will come first in it. Everything staged so far is made durable first.
     */
    private void rotate(Staging st, Lane lane) throws IOException {
        stageCheckpoint(st, "rotate", null);
        flush(st, lane);
        drain(); // the other lanes' commits settle on the file being closed
        if (broken) {
            throw new IOException(failure == null ? "an earlier audit commit failed" : failure);
        }
        trimPadding();
        Path next = options.dir().resolve(AuditRecords.fileName(writtenSeq + 1));
        FileChannel ch = opener.open(next, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        Object key;
        try {
            syncDirectory();
            key = Files.readAttributes(next, BasicFileAttributes.class).fileKey();
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        closeChannel();
        channel = ch;
        file = next;
        fileKey = key;
        fileSize = 0;
        writtenSize = 0;
        zeroedEnd = 0;
        fileHasRecords = false;
        LOG.log(System.Logger.Level.INFO, "audit log continues in " + next);
    }

    /** The staged lines in {@link #writeBuffer}, ready to write (the lines themselves are left as they are). */
    private ByteBuffer joined(Staging st) {
        if (writeBuffer.capacity() < st.bytes) {
            writeBuffer = ByteBuffer.allocateDirect((int) Math.max(st.bytes, 2L * writeBuffer.capacity()));
        }
        ByteBuffer out = writeBuffer.clear();
        for (ByteBuffer line : st.lines) {
            out.put(line.duplicate());
        }
        return out.flip();
    }

    /** Writes what is staged and makes it durable now (a split batch, a rotation, recovery); throws when it fails. */
    private void flush(Staging st, Lane lane) throws IOException {
        Batch b = write(st, lane);
        IOException failed = commit(b, lane);
        if (failed != null) {
            throw failed;
        }
    }

    /**
     * The first stage of a commit, by the writer: writes what is staged after what was written
     * before (durable or not yet), continues the written chain from it, and puts the commit in
     * line to be settled. Returns null when there is nothing to write or tell. A write that
     * fails is put in line as failed (it fails every commit after it) and the error thrown.
     */
    private Batch write(Staging st, Lane lane) throws IOException {
        if (st.isEmpty() && st.onDurable.isEmpty() && st.onFailed.isEmpty()) {
            return null;
        }
        Batch b;
        if (!st.isEmpty()) {
            try {
                if (writtenSize + st.bytes > zeroedEnd) {
                    preallocate(st.bytes, lane); // the appenders did not keep up (or the log just opened)
                }
                ByteBuffer out = joined(st);
                while (out.hasRemaining()) {
                    // A partial write (e.g. the file size limit reached) returns short; the next
                    // write then reports the error.
                    channel.write(out);
                }
            } catch (IOException e) {
                Batch failed = new Batch(st, writtenSize, file, fileKey, channel, lane.inFlight);
                failed.error = e;
                enlist(failed);
                settle(failed);
                throw e;
            }
            writtenSize += st.bytes;
            zeroedEnd = Math.max(zeroedEnd, writtenSize);
            fileHasRecords = true;
        }
        b = new Batch(st, writtenSize, file, fileKey, channel, lane.inFlight);
        writtenSeq = st.seq;
        writtenHash = st.hash;
        writtenTime = st.time;
        writtenSinceCheckpoint = st.sinceCheckpoint;
        enlist(b);
        st.lines.clear();
        st.onDurable.clear();
        st.onFailed.clear();
        st.bytes = 0;
        st.checkpointed = false;
        return b;
    }

    private void enlist(Batch b) {
        order.lock();
        try {
            unsettled.addLast(b);
        } finally {
            order.unlock();
        }
    }

    /**
     * The second stage, by the lane's holder (no longer the writer): a {@code fdatasync} that
     * starts after the commit's write completed, the check that the file is still in place,
     * then {@link #settle}. Returns the commit's own failure, if any.
     */
    private IOException commit(Batch b, Lane lane) {
        if (b == null) {
            return null;
        }
        IOException error = null;
        if (b.bytes > 0) {
            try {
                if (options.durability() == Durability.FSYNC) {
                    dataSync(lane, b.file, b.fileKey, b.channel);
                    forces.incrementAndGet();
                }
                requireInPlace(lane, b.file, b.fileKey);
            } catch (IOException e) {
                error = e;
            } catch (RuntimeException e) {
                // A bug must not leave the commit unsettled: everything behind it would wait forever.
                LOG.log(System.Logger.Level.ERROR, "the audit log's commit failed", e);
                error = new IOException("internal error in the audit log (" + e + "); see the daemon log", e);
            }
        }
        order.lock();
        try {
            b.error = error;
        } finally {
            order.unlock();
        }
        settle(b);
        return error;
    }

    /**
     * Settles, in write order, every commit at the head of the line whose flush has ended —
     * whichever lane's flush ended first: a commit is confirmed only when it and every commit
     * before it are durable. The first failure makes the log unwritable and fails every commit
     * after it too (they were written after the failed one; after a failed {@code fdatasync}
     * what the file holds is unknown), until {@link #recover} starts again from the durable
     * end. Confirmations run here, in chain order, under the lock: they are quick by contract.
     */
    private void settle(Batch b) {
        order.lock();
        try {
            b.synced = true;
            for (Batch h = unsettled.peekFirst(); h != null && h.synced; h = unsettled.peekFirst()) {
                unsettled.pollFirst();
                if (h.error != null && !broken) {
                    broken = true;
                    fail(h.error, h.file);
                }
                if (broken) {
                    AuditUnavailableException refusal = unwritable();
                    for (var r : h.onFailed) r.accept(refusal);
                    continue;
                }
                if (h.bytes > 0) {
                    fileSize = h.end;
                    seq = h.seq;
                    hash = h.hash;
                    time = h.time;
                    if (h.sinceCheckpoint > 0 && (sinceCheckpoint == 0 || h.checkpointed)) {
                        uncoveredSinceNanos = System.nanoTime(); // the interval runs from the first uncovered record
                    }
                    sinceCheckpoint = h.sinceCheckpoint;
                    head = new Head(h.seq, h.hash, h.time, h.file);
                }
                for (Runnable r : h.onDurable) {
                    r.run();
                }
            }
            settledOne.signalAll();
        } finally {
            order.unlock();
        }
        if (zeroedEnd - fileSize < PREALLOCATION_LOW_WATER && !onAppender() && !preallocationFailing) {
            wakeAppender(); // grows the padding, off the callers' path
        }
    }

    /** Waits until every commit written so far is settled (rotation, recovery, stop: the file changes under them). */
    private void drain() {
        order.lock();
        try {
            while (!unsettled.isEmpty()) {
                settledOne.awaitUninterruptibly();
            }
        } finally {
            order.unlock();
        }
    }

    /**
     * Extends the zero padding to at least {@code bytes} past the last record, by up to
     * {@link #PREALLOCATION_BYTES} (not far past the size at which the file is closed), and
     * makes it durable. Padding is an optimisation: when it cannot be written (a full disk),
     * what was added is cut off again and records are appended as they would be without it.
     */
    private void preallocate(long bytes, Lane lane) {
        long want = Math.max(writtenSize + bytes, Math.min(writtenSize + bytes + PREALLOCATION_BYTES,
                options.maxFileBytes() + 2L * AuditRecords.MAX_LINE_BYTES));
        long from = Math.max(zeroedEnd, writtenSize);
        if (want <= from || preallocationFailing && System.nanoTime() < preallocateRetryNanos) {
            return;
        }
        try {
            ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(64 * 1024, want - from));
            for (long pos = from; pos < want; ) {
                zeros.clear().limit((int) Math.min(zeros.capacity(), want - pos));
                pos += channel.write(zeros, pos);
            }
            if (options.durability() == Durability.FSYNC) {
                dataSync(lane, file, fileKey, channel); // the new size and blocks: later overwrites need no metadata
            }
            zeroedEnd = want;
            preallocationFailing = false;
        } catch (IOException e) {
            LOG.log(preallocationFailing ? System.Logger.Level.DEBUG : System.Logger.Level.WARNING, "cannot preallocate "
                    + (want - from) + " bytes for the audit file " + file + " (" + e.getMessage()
                    + "); records are appended without it");
            preallocationFailing = true;
            preallocateRetryNanos = System.nanoTime() + RETRY.toNanos();
            try {
                channel.truncate(from);
            } catch (IOException again) {
                LOG.log(System.Logger.Level.DEBUG, "cutting the padding back failed too: " + again.getMessage());
            }
        }
    }

    /**
     * {@code fdatasync} of the current file: natively ({@link DataSync}: no carrier wake-up
     * when the writer is a virtual thread) for real files, else the channel's force.
     */
    private void dataSync(Lane lane, Path file, Object fileKey, FileChannel channel) throws IOException {
        DataSync sync = lane.sync;
        if (nativeSync && (sync == null || !sync.isOf(fileKey))) {
            if (sync != null) {
                sync.close();
            }
            sync = DataSync.open(file, fileKey);
            lane.sync = sync;
            nativeSync = sync != null;
        }
        if (nativeSync) {
            sync.sync();
        } else {
            channel.force(false);
        }
    }

    /** Cuts the padding off a file about to be closed, so that closed files hold records only. */
    private void trimPadding() {
        if (channel == null || !channel.isOpen() || zeroedEnd <= fileSize) {
            return;
        }
        try {
            channel.truncate(fileSize);
            channel.force(true);
            zeroedEnd = fileSize;
        } catch (IOException e) {
            // Readers skip padding (AuditPadding); the next start cuts it.
            LOG.log(System.Logger.Level.WARNING, "cannot cut the zero padding off " + file + ": " + e.getMessage());
        }
    }

    /**
     * The records just forced are in the file the log believes it writes: were it removed or
     * replaced (the directory moved away, the file unlinked), they went nowhere anyone will
     * read, and must not be confirmed.
     */
    private void requireInPlace(Lane lane, Path file, Object fileKey) throws IOException {
        DataSync sync = lane.sync;
        if (nativeSync && sync != null && sync.isOf(fileKey)) {
            sync.requireInPlace(); // asks for the inode only: a full stat would slow the next commit (DataSync)
            return;
        }
        Object key;
        try {
            key = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
        } catch (IOException e) {
            throw new IOException("the audit file " + file + " is gone (" + e.getMessage() + ")");
        }
        if (!Objects.equals(key, fileKey)) {
            throw new IOException("the audit file " + file + " was replaced by another file");
        }
    }

    private void fail(IOException e, Path file) {
        String reason = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        if (!reason.contains(file.toString())) {
            reason = "writing " + file + " failed: " + reason;
        }
        failure = reason;
        failedSince = clock.instant();
        nextRetryNanos = System.nanoTime() + RETRY.toNanos();
        LOG.log(System.Logger.Level.ERROR, "audit log unwritable: " + reason
                + "; refusing every call until the log can be written again");
    }

    /**
     * Makes an unwritable log writable again, if it can: the file back in place (or a new one
     * when it is gone), cut back to its last durable record, and a durable {@code resumed}
     * record. Returns false, with the log still unwritable, when any of it fails.
     */
    private boolean recover(Lane lane) {
        // Every commit written before the failure settles (failed) first; then the written end
        // goes back to the durable one, and the descriptors are opened anew: a lane's old one
        // would report the write-back error it has not seen yet to the next commit.
        drain();
        nextRetryNanos = System.nanoTime() + RETRY.toNanos();
        String was = failure;
        writtenSize = fileSize;
        writtenSeq = seq;
        writtenHash = hash;
        writtenTime = time;
        writtenSinceCheckpoint = sinceCheckpoint;
        closeSyncs();
        order.lock();
        try {
            broken = false;
        } finally {
            order.unlock();
        }
        try {
            boolean inPlace;
            try {
                requireInPlace(lane, file, fileKey);
                inPlace = true;
            } catch (IOException gone) {
                inPlace = false;
            }
            if (!inPlace) {
                // The file the chain was in is gone; the chain continues in a new file, and a
                // verifier will see the gap before it.
                closeChannel();
                Path next = options.dir().resolve(AuditRecords.fileName(seq + 1));
                channel = opener.open(next, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                syncDirectory();
                file = next;
                fileKey = Files.readAttributes(next, BasicFileAttributes.class).fileKey();
                fileSize = 0;
                writtenSize = 0;
                fileHasRecords = false;
            } else if (channel == null || !channel.isOpen()) {
                channel = opener.open(file, StandardOpenOption.WRITE);
            }
            channel.truncate(fileSize); // whatever the failed write left past the last durable record, and the padding
            channel.force(true);
            channel.position(fileSize);
            zeroedEnd = fileSize;
            Map<String, Object> resumed = new LinkedHashMap<>();
            resumed.put(AuditRecords.TYPE, AuditRecords.TYPE_RESUMED);
            resumed.put("failed_since", AuditRecords.time(failedSince));
            resumed.put("reason", was);
            resumed.put("refused_calls", refused.get());
            Staging st = new Staging();
            CanonicalFields.Line record = chained(st, CanonicalFields.of(resumed));
            stage(st, record.seq(), record.hash(), record.time(), record.bytes());
            st.sinceCheckpoint++;
            flush(st, lane);
        } catch (IOException | RuntimeException e) {
            String now = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            LOG.log(System.Logger.Level.DEBUG, "audit log still unwritable: " + now);
            return false;
        }
        long n = refused.getAndSet(0);
        failure = null;
        LOG.log(System.Logger.Level.WARNING, "audit log writable again (unwritable since " + failedSince + ": " + was
                + "; " + n + " calls were refused meanwhile)");
        return true;
    }

    /** Closes every lane's descriptor (only while no commit is in flight: the writer, after {@link #drain}). */
    private void closeSyncs() {
        for (Lane lane : lanes) {
            DataSync sync = lane.sync;
            if (sync != null) {
                sync.close();
                lane.sync = null;
            }
        }
    }

    private void syncDirectory() throws IOException {
        try (FileChannel d = FileChannel.open(options.dir(), StandardOpenOption.READ)) {
            d.force(true);
        }
    }

    private void closeChannel() {
        closeSyncs();
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "closing the audit file failed: " + e.getMessage());
            }
        }
    }

    // ------------------------------------------------------------------ start

    /** Finds the end of the chain on disk (or starts one) and opens the file to continue it. */
    private void resume(Map<String, Object> start) throws IOException {
        Path dir = options.dir();
        try {
            if (!Files.isDirectory(dir)) {
                Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            }
        } catch (IOException e) {
            throw new IOException("cannot create the audit directory " + dir + ": " + e);
        }
        List<Path> files = logFiles(dir);
        if (files.isEmpty()) {
            file = dir.resolve(AuditRecords.fileName(1));
            channel = opener.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            syncDirectory();
        } else {
            file = files.getLast();
            long torn = cutTail(file);
            if (torn > 0) {
                start.put("truncated_bytes", torn);
            }
            Map<String, Object> last = lastRecord(file);
            if (last == null && files.size() > 1) {
                last = lastRecord(files.get(files.size() - 2));
            }
            long firstSeq = AuditRecords.firstSeqOf(file).orElseThrow();
            boolean empty = Files.size(file) == 0;
            if (last == null) {
                if (firstSeq != 1) {
                    throw new IOException("the audit log in " + dir + " ends with the empty file " + file
                            + " and no record before it; run kmsctl audit verify (docs/audit.md)");
                }
            } else {
                seq = (Long) last.get(AuditRecords.SEQ);
                hash = (String) last.get(AuditRecords.HASH);
                time = (String) last.get(AuditRecords.TIME);
                boolean stopped = AuditRecords.TYPE_CHECKPOINT.equals(last.get(AuditRecords.TYPE))
                        && AuditRecords.REASON_STOP.equals(last.get(AuditRecords.CHECKPOINT_REASON));
                if (!stopped) {
                    // The previous run did not close the log: it crashed or was killed.
                    start.put("unclean_stop", true);
                }
                if (empty ? firstSeq != seq + 1 : firstSeq > seq) {
                    throw new IOException("the audit file " + file + " is named for seq " + firstSeq
                            + " but the log ends at seq " + seq + "; run kmsctl audit verify (docs/audit.md)");
                }
            }
            channel = opener.open(file, StandardOpenOption.WRITE);
        }
        fileSize = channel.size();
        zeroedEnd = fileSize;
        channel.position(fileSize);
        fileHasRecords = fileSize > 0;
        fileKey = Files.readAttributes(file, BasicFileAttributes.class).fileKey();
        head = new Head(seq, hash, time, file);
        writtenSize = fileSize;
        writtenSeq = seq;
        writtenHash = hash;
        writtenTime = time;
    }

    /** The log files ({@code audit-<20 digits>.jsonl}) in {@code dir}, in the order the chain runs through them. */
    public static List<Path> logFiles(Path dir) throws IOException {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "audit-*.jsonl")) {
            for (Path p : ds) {
                if (AuditRecords.firstSeqOf(p).isPresent() && Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                    files.add(p);
                }
            }
        }
        files.sort((a, b) -> Long.compare(AuditRecords.firstSeqOf(a).orElseThrow(), AuditRecords.firstSeqOf(b).orElseThrow()));
        return files;
    }

    /**
     * Cuts a file back to its last complete record: a last line that has no newline, and
     * whatever an unconfirmed write left in the padding after it (a write that failed or was
     * interrupted, never confirmed to anyone), then the padding itself. The cut bytes other
     * than the trailing padding are kept in {@code <file>.torn-<time>} for inspection; returns
     * how many there were.
     */
    private long cutTail(Path f) throws IOException {
        AuditPadding.Tail tail = AuditPadding.tail(f);
        if (tail.size() == tail.records()) {
            return 0;
        }
        if (tail.tornBytes() > 0) {
            Path aside = f.resolveSibling(f.getFileName() + ".torn-" + clock.instant().toEpochMilli());
            byte[] torn;
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                torn = AuditPadding.read(ch, tail.records(), (int) tail.tornBytes());
            }
            Files.write(aside, torn, StandardOpenOption.CREATE_NEW);
            LOG.log(System.Logger.Level.WARNING, "the audit file " + f + " ended with an incomplete record of "
                    + tail.tornBytes() + " bytes (a write interrupted by a crash; it was never confirmed); cut off and"
                    + " kept in " + aside);
        }
        try (FileChannel ch = opener.open(f, StandardOpenOption.WRITE)) {
            ch.truncate(tail.records());
            ch.force(true);
        }
        return tail.tornBytes();
    }

    /** The last record of a file, checked; null when the file has none. */
    private static Map<String, Object> lastRecord(Path f) throws IOException {
        long size = AuditPadding.tail(f).records(); // a file closed before its padding was cut has some
        if (size == 0) {
            return null;
        }
        long window = Math.min(size, AuditRecords.MAX_LINE_BYTES + 1L);
        byte[] tail = readRange(f, size - window, (int) window);
        int end = tail.length - 1; // the final newline
        int begin = end - 1;
        while (begin >= 0 && tail[begin] != '\n') begin--;
        if (begin < 0 && size > window) {
            throw new IOException("the last record of " + f + " is longer than " + AuditRecords.MAX_LINE_BYTES + " bytes");
        }
        String line;
        try {
            line = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(tail, begin + 1, end - begin - 1)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IOException("the last record of " + f + " is not UTF-8: the log was altered; run kmsctl audit verify");
        }
        Map<String, Object> record;
        try {
            record = CanonicalJson.parseCanonical(line);
        } catch (dev.enclavekms.json.JsonException e) {
            throw new IOException("the last record of " + f + " is damaged (" + e.getMessage()
                    + "); run kmsctl audit verify (docs/audit.md)");
        }
        if (!(record.get(AuditRecords.SEQ) instanceof Long) || !AuditRecords.isHash(record.get(AuditRecords.HASH))
                || !AuditRecords.hash(record).equals(record.get(AuditRecords.HASH))
                || !(record.get(AuditRecords.TIME) instanceof String)) {
            throw new IOException("the last record of " + f + " does not match its hash: the log was altered;"
                    + " run kmsctl audit verify (docs/audit.md)");
        }
        return record;
    }

    private static byte[] readRange(Path f, long position, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            while (b.hasRemaining()) {
                if (ch.read(b, position + b.position()) < 0) break;
            }
        }
        return b.array();
    }
}
