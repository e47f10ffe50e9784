package dev.enclavekms.cache;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.Plaintext;
import dev.enclavekms.shard.DataKeyUnwrapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * A bounded cache of decrypted data keys for runtime nodes that open the same shards
 * often: a {@link DataKeyUnwrapper} that asks the KMS ({@code Kms.Decrypt}) only on a miss.
 *
 * <p>Guarantees:
 * <ul>
 *   <li>An entry is found by the envelope's exact bytes <em>and</em> the context: the same
 *       envelope under another context is a miss, and the KMS decides it.</li>
 *   <li>An entry serves for at most {@link Limits#maxAge()} from the moment it was
 *       decrypted, at most {@link Limits#maxUses()} unwraps (the decrypting one included),
 *       and until the bytes its callers reported reach {@link Limits#maxBytes()}; then it
 *       is evicted. At most {@link Limits#maxEntries()} are kept (the oldest goes first).</li>
 *   <li>Cached key bytes live off the Java heap, in page-aligned memory of their own
 *       {@link Arena}, locked with {@code mlock} (never swapped) and marked
 *       {@code MADV_DONTDUMP} (not in core dumps). On eviction — expiry, revocation,
 *       {@link #clear()}, {@link #close()} — the memory is overwritten with zeros before it
 *       is unlocked and freed. Where locking is not permitted (RLIMIT_MEMLOCK), the cache
 *       logs one warning and works unlocked.</li>
 *   <li>{@link #revoke(String, int)} drops every entry of a key version; a
 *       {@link RevocationWatcher} calls it when the daemon reports a version DISABLED,
 *       REVOKED or (scheduled for) destruction. A decryption that was in flight when a
 *       revocation or clear arrived is returned to its caller but not cached.</li>
 *   <li>Nothing logged contains key material: only key names, versions, counts and reasons.</li>
 * </ul>
 *
 * <p>The arrays returned by {@link #unwrap} are fresh copies that belong to the caller (the
 * shard library wipes them). Thread-safe; the KMS call of a miss runs outside the cache's
 * lock, so two threads missing the same envelope at once both ask the KMS and one result
 * is kept.
 */
public final class DataKeyCache implements DataKeyUnwrapper, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(DataKeyCache.class.getName());

    /**
     * What decrypts an envelope on a miss; {@link KmsClient#decrypt} in production. The
     * result names the key and version, by which revocations find the entry.
     */
    @FunctionalInterface
    public interface Source {
        Plaintext decrypt(byte[] envelope, Map<String, String> context) throws KmsException, IOException;
    }

    /**
     * The bounds of the cache.
     *
     * @param maxAge     how long after its decryption an entry may serve
     * @param maxUses    unwraps an entry serves, the one that decrypted it included
     * @param maxBytes   bytes an entry's callers may report protecting with it
     * @param maxEntries entries kept at once; each holds at least one locked page
     */
    public record Limits(Duration maxAge, long maxUses, long maxBytes, int maxEntries) {
        public Limits {
            Objects.requireNonNull(maxAge, "maxAge");
            if (maxAge.isNegative() || maxAge.isZero()) throw new IllegalArgumentException("maxAge must be positive");
            if (maxUses < 1) throw new IllegalArgumentException("maxUses must be at least 1");
            if (maxBytes < 1) throw new IllegalArgumentException("maxBytes must be at least 1");
            if (maxEntries < 1) throw new IllegalArgumentException("maxEntries must be at least 1");
        }

        /** {@code maxAge}, unlimited uses and bytes, 256 entries. */
        public static Limits of(Duration maxAge) {
            return new Limits(maxAge, Long.MAX_VALUE, Long.MAX_VALUE, 256);
        }

        public Limits withMaxUses(long n) {
            return new Limits(maxAge, n, maxBytes, maxEntries);
        }

        public Limits withMaxBytes(long n) {
            return new Limits(maxAge, maxUses, n, maxEntries);
        }

        public Limits withMaxEntries(int n) {
            return new Limits(maxAge, maxUses, maxBytes, n);
        }
    }

    /** Counters since the cache was made; {@code entries} is the number cached now. */
    public record Stats(long hits, long misses, long evictions, int entries) {
    }

    private final Source source;
    private final Limits limits;
    private final Clock clock;
    private final MemoryLock memoryLock;
    private final Supplier<Arena> arenas;
    private final Object lock = new Object();
    /** Insertion order = decryption order: the eldest is evicted first when full. */
    private final LinkedHashMap<EntryKey, Entry> entries = new LinkedHashMap<>();
    private final AtomicLong hits = new AtomicLong();
    private final AtomicLong misses = new AtomicLong();
    private final AtomicLong evictions = new AtomicLong();
    private final AtomicBoolean warnedUnlocked = new AtomicBoolean();
    /** Bumped by every revocation and clear: a miss started before one must not be cached. */
    private long generation;
    private boolean closed;

    /** A cache in front of {@code source} with the system clock. */
    public DataKeyCache(Source source, Limits limits) {
        this(source, limits, Clock.systemUTC());
    }

    /** A cache with its own clock (tests move it to expire entries). */
    public DataKeyCache(Source source, Limits limits, Clock clock) {
        this(source, limits, clock, MemoryLock.libc(), Arena::ofShared);
    }

    /**
     * For tests: how pages are locked (make it fail) and where they come from (keep them
     * readable after eviction). {@code arenas} must give a fresh arena per entry.
     */
    DataKeyCache(Source source, Limits limits, Clock clock, MemoryLock memoryLock, Supplier<Arena> arenas) {
        this.source = Objects.requireNonNull(source, "source");
        this.limits = Objects.requireNonNull(limits, "limits");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.memoryLock = Objects.requireNonNull(memoryLock, "memoryLock");
        this.arenas = Objects.requireNonNull(arenas, "arenas");
    }

    /** A cache in front of {@code kms.decrypt}. */
    public static DataKeyCache using(KmsClient kms, Limits limits) {
        Objects.requireNonNull(kms, "kms");
        return new DataKeyCache(kms::decrypt, limits);
    }

    /** One use that reports no bytes; see {@link #unwrap(byte[], Map, long)}. */
    @Override
    public byte[] unwrap(byte[] wrappedDataKey, Map<String, String> context) throws KmsException, IOException {
        return unwrap(wrappedDataKey, context, 0);
    }

    /**
     * The data key of {@code wrappedDataKey} under {@code context}, from the cache or the KMS.
     *
     * @param bytes how many bytes the caller will protect with the key in this use; counted
     *              against {@link Limits#maxBytes()}
     * @return a fresh copy the caller wipes
     * @throws IllegalStateException after {@link #close()}
     */
    public byte[] unwrap(byte[] wrappedDataKey, Map<String, String> context, long bytes)
            throws KmsException, IOException {
        Objects.requireNonNull(wrappedDataKey, "wrappedDataKey");
        if (bytes < 0) throw new IllegalArgumentException("bytes must not be negative");
        EntryKey k = EntryKey.of(wrappedDataKey, context);
        long started;
        synchronized (lock) {
            ensureOpen();
            evictLocked(e -> e.expired(clock.instant(), limits));
            Entry e = entries.get(k);
            if (e != null) {
                hits.incrementAndGet();
                byte[] out = e.copy();
                e.uses++;
                e.bytes = saturatingAdd(e.bytes, bytes);
                if (e.exhausted(limits)) {
                    entries.remove(k);
                    evict(e);
                }
                return out;
            }
            started = generation;
        }
        misses.incrementAndGet();
        Plaintext p = source.decrypt(wrappedDataKey.clone(), k.context());
        byte[] key = p.plaintext();
        synchronized (lock) {
            if (closed || generation != started || entries.containsKey(k)
                    || 1 >= limits.maxUses() || bytes >= limits.maxBytes()) {
                return key; // not cached: see the class comment
            }
            while (entries.size() >= limits.maxEntries()) {
                Iterator<Entry> eldest = entries.values().iterator();
                Entry e = eldest.next();
                eldest.remove();
                evict(e);
            }
            Entry e = store(p.key(), p.version(), key);
            if (e != null) {
                e.uses = 1;
                e.bytes = bytes;
                entries.put(k, e);
            }
        }
        return key;
    }

    /**
     * An unwrapper that reports {@code bytes} per use, e.g. a shard's size:
     * {@code ShardReader.open(path, cache.protecting(Files.size(path)), context)}.
     */
    public DataKeyUnwrapper protecting(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("bytes must not be negative");
        return (wrapped, context) -> unwrap(wrapped, context, bytes);
    }

    /**
     * Drops (zeroes) every entry of version {@code version} of {@code key}.
     *
     * @return how many were dropped
     */
    public int revoke(String key, int version) {
        Objects.requireNonNull(key, "key");
        int n;
        synchronized (lock) {
            generation++;
            n = evictLocked(e -> e.keyName.equals(key) && e.version == version);
        }
        if (n > 0) {
            LOG.log(System.Logger.Level.INFO, "dropped {0} cached data key(s) of {1} version {2}", n, key, version);
        }
        return n;
    }

    /** Drops (zeroes) entries past their age now, without waiting for the next unwrap. */
    public int evictExpired() {
        synchronized (lock) {
            return evictLocked(e -> e.expired(clock.instant(), limits));
        }
    }

    /** Drops (zeroes) every entry, e.g. when revocations may have been missed. */
    public int clear() {
        synchronized (lock) {
            generation++;
            return evictLocked(e -> true);
        }
    }

    public Stats stats() {
        synchronized (lock) {
            return new Stats(hits.get(), misses.get(), evictions.get(), entries.size());
        }
    }

    /** Zeroes and frees every entry; later unwraps fail. Idempotent. */
    @Override
    public void close() {
        synchronized (lock) {
            if (closed) return;
            closed = true;
            generation++;
            evictLocked(e -> true);
        }
    }

    /** For tests: the page holding the cached key of this envelope and context, or null. */
    MemorySegment segmentOf(byte[] wrappedDataKey, Map<String, String> context) {
        synchronized (lock) {
            Entry e = entries.get(EntryKey.of(wrappedDataKey, context));
            return e == null ? null : e.page;
        }
    }

    // ------------------------------------------------------------------ internals

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("the data-key cache is closed");
    }

    private int evictLocked(Predicate<Entry> which) {
        List<Entry> gone = new ArrayList<>();
        entries.values().removeIf(e -> {
            if (which.test(e)) {
                gone.add(e);
                return true;
            }
            return false;
        });
        gone.forEach(this::evict);
        return gone.size();
    }

    /**
     * Zero, then unlock, then free: the zeros must be written while the pages are still
     * ours and locked, so no copy of the key can reach swap or the allocator's free list.
     */
    private void evict(Entry e) {
        e.page.fill((byte) 0);
        memoryLock.unlock(e.page);
        e.arena.close();
        evictions.incrementAndGet();
    }

    /** Copies {@code key} into a fresh locked page; {@code key} itself stays the caller's, to return and wipe. */
    private Entry store(String keyName, int version, byte[] key) {
        long page = memoryLock.pageSize();
        long size = Math.max(page, (key.length + page - 1) / page * page);
        Arena arena = arenas.get();
        MemorySegment seg;
        try {
            seg = arena.allocate(size, page);
        } catch (RuntimeException | OutOfMemoryError e) {
            arena.close();
            LOG.log(System.Logger.Level.WARNING, "cannot allocate a page for a cached data key ("
                    + e.getClass().getSimpleName() + "); serving uncached");
            return null;
        }
        String failure = memoryLock.lock(seg);
        if (failure != null && warnedUnlocked.compareAndSet(false, true)) {
            LOG.log(System.Logger.Level.WARNING, "cached data keys are not locked in memory (" + failure
                    + "); they may be swapped out or dumped. Raise RLIMIT_MEMLOCK (LimitMEMLOCK=) to lock them."
                    + " This is reported once.");
        }
        MemorySegment.copy(key, 0, seg, ValueLayout.JAVA_BYTE, 0, key.length);
        return new Entry(keyName, version, arena, seg, key.length, clock.instant());
    }

    private static long saturatingAdd(long a, long b) {
        long r = a + b;
        return r < 0 ? Long.MAX_VALUE : r;
    }

    /** Envelope bytes (not secret) and context; compared by content. */
    private record EntryKey(ByteBuffer envelope, Map<String, String> context) {
        static EntryKey of(byte[] envelope, Map<String, String> context) {
            return new EntryKey(ByteBuffer.wrap(envelope.clone()).asReadOnlyBuffer(),
                    context == null ? Map.of() : Map.copyOf(context));
        }
    }

    /** A cached key: metadata on the heap, the key bytes only in {@code page}. No toString of the key. */
    private static final class Entry {
        final String keyName;
        final int version;
        final Arena arena;
        final MemorySegment page;
        final int length;
        final Instant created;
        long uses;
        long bytes;

        Entry(String keyName, int version, Arena arena, MemorySegment page, int length, Instant created) {
            this.keyName = keyName;
            this.version = version;
            this.arena = arena;
            this.page = page;
            this.length = length;
            this.created = created;
        }

        byte[] copy() {
            return page.asSlice(0, length).toArray(ValueLayout.JAVA_BYTE);
        }

        boolean expired(Instant now, Limits l) {
            return !now.isBefore(created.plus(l.maxAge()));
        }

        boolean exhausted(Limits l) {
            return uses >= l.maxUses() || bytes >= l.maxBytes();
        }

        @Override
        public String toString() {
            return "Entry[" + keyName + " v" + version + ", " + length + " bytes, uses=" + uses + "]";
        }
    }
}
