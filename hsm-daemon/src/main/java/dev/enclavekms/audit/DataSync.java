package dev.enclavekms.audit;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * {@code fdatasync(2)} of an audit file, called directly (FFM) on a descriptor of its own.
 *
 * <p>Why not {@link java.nio.channels.FileChannel#force}: the daemon's calls run on virtual
 * threads, and a virtual thread that calls {@code force} makes the JDK compensate for the
 * carrier it blocks — with an idle carrier, by waking it (a futex wake and a vCPU wake-up on
 * every commit, measured with strace; docs/performance.md "Audit write path (session 3)").
 * Nothing needs that carrier: the other callers wait for this commit. A native call pins the
 * carrier instead; under load, when no carrier is idle, the JDK would not compensate either.
 * Two commits may flush at once (AuditLog's lanes, one descriptor each), but a virtual thread
 * takes a lane only when no other commit is in flight, so at most one carrier is pinned.
 *
 * <p>{@code fdatasync} flushes the file (its inode), not a descriptor: records written
 * through the log's channel are made durable through this descriptor, and a write-back error
 * after it was opened is reported here too. Where FFM or the symbols are unavailable,
 * {@link #open} returns null and the log forces its channel.
 */
final class DataSync implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(DataSync.class.getName());
    private static final int O_WRONLY = 1;
    private static final int O_CLOEXEC = 0x80000;
    private static final MethodHandle OPEN;
    private static final MethodHandle FDATASYNC;
    private static final MethodHandle CLOSE;
    private static final StructLayout CAPTURE;
    private static final VarHandle ERRNO;
    private static final MethodHandle STRERROR;
    private static final MethodHandle STATX;
    private static final int AT_FDCWD = -100;
    private static final int AT_SYMLINK_NOFOLLOW = 0x100;
    private static final int AT_EMPTY_PATH = 0x1000;
    private static final int STATX_INO = 0x100;
    private static final int ENOENT = 2;
    /** struct statx: stx_ino at 32, stx_dev_major at 136, stx_dev_minor at 140; 256 bytes. */
    private static final int STATX_SIZE = 256;

    static {
        MethodHandle open = null;
        MethodHandle fdatasync = null;
        MethodHandle close = null;
        MethodHandle strerror = null;
        MethodHandle statx = null;
        StructLayout capture = null;
        VarHandle errno = null;
        try {
            Linker linker = Linker.nativeLinker();
            SymbolLookup libc = linker.defaultLookup();
            Linker.Option keepErrno = Linker.Option.captureCallState("errno");
            capture = Linker.Option.captureStateLayout();
            errno = capture.varHandle(MemoryLayout.PathElement.groupElement("errno"));
            open = linker.downcallHandle(libc.find("open").orElseThrow(),
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), keepErrno);
            fdatasync = linker.downcallHandle(libc.find("fdatasync").orElseThrow(),
                    FunctionDescriptor.of(JAVA_INT, JAVA_INT), keepErrno);
            close = linker.downcallHandle(libc.find("close").orElseThrow(), FunctionDescriptor.of(JAVA_INT, JAVA_INT));
            statx = linker.downcallHandle(libc.find("statx").orElseThrow(),
                    FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS), keepErrno);
            strerror = linker.downcallHandle(libc.find("strerror").orElseThrow(),
                    FunctionDescriptor.of(ADDRESS, JAVA_INT));
        } catch (RuntimeException | LinkageError e) {
            LOG.log(System.Logger.Level.DEBUG, "no native fdatasync (" + e + "); the audit log forces its channel");
            open = null;
        }
        OPEN = open;
        FDATASYNC = fdatasync;
        CLOSE = close;
        STRERROR = strerror;
        STATX = statx;
        CAPTURE = capture;
        ERRNO = errno;
    }

    private final Path file;
    private final Object fileKey;
    private final int fd;
    /** errno of the last call; used by the thread that holds this descriptor's lane (one at a time). */
    private final MemorySegment state;
    private final MemorySegment path;
    private final MemorySegment stat;
    /** The device and inode of the open file. */
    private final long dev;
    private final long ino;
    private boolean closed;

    private DataSync(Path file, Object fileKey, int fd) throws IOException {
        this.file = file;
        this.fileKey = fileKey;
        this.fd = fd;
        Arena arena = Arena.ofAuto();
        this.state = arena.allocate(CAPTURE);
        this.path = arena.allocateFrom(file.toString());
        this.stat = arena.allocate(STATX_SIZE, 8);
        if (statx(fd, arena.allocateFrom(""), AT_EMPTY_PATH) != 0) {
            throw new IOException("cannot stat " + file + ": " + error(state));
        }
        this.dev = devOf(stat);
        this.ino = stat.get(java.lang.foreign.ValueLayout.JAVA_LONG, 32);
    }

    private int statx(int dirfd, MemorySegment name, int flags) {
        try {
            // Only the inode: asking for times would mark them queried, and on kernels with
            // multigrain timestamps (6.13+) the next write then stamps a fine-grained ctime
            // that costs the following fdatasync a journal commit (measured: +0.5–1.5 disk
            // writes and +50–100 µs per commit; docs/performance.md).
            return (int) STATX.invokeExact(state, dirfd, name, flags, STATX_INO, stat);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static long devOf(MemorySegment st) {
        return ((long) st.get(JAVA_INT, 136) << 32) | (st.get(JAVA_INT, 140) & 0xffffffffL);
    }

    /**
     * Whether {@code file}'s path still names the file this descriptor has open (not removed,
     * not replaced) — the check after every commit, without a full {@code stat} (see
     * {@link #statx}).
     *
     * @throws IOException saying which, when it does not
     */
    void requireInPlace() throws IOException {
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW) != 0) {
            int e = (int) ERRNO.get(state, 0L);
            throw new IOException(e == ENOENT ? "the audit file " + file + " is gone (" + error(state) + ")"
                    : "cannot stat the audit file " + file + ": " + error(state));
        }
        if (devOf(stat) != dev || stat.get(java.lang.foreign.ValueLayout.JAVA_LONG, 32) != ino) {
            throw new IOException("the audit file " + file + " was replaced by another file");
        }
    }

    /**
     * A descriptor of {@code file} for {@link #sync}; null where native calls are unavailable.
     *
     * @param fileKey the file's key when opened, to tell later whether it is still the file
     */
    static DataSync open(Path file, Object fileKey) throws IOException {
        if (OPEN == null) {
            return null;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int fd = (int) OPEN.invokeExact(st, a.allocateFrom(file.toString()), O_WRONLY | O_CLOEXEC);
            if (fd < 0) {
                throw new IOException("cannot open " + file + " to sync it: " + error(st));
            }
            DataSync s;
            try {
                s = new DataSync(file, fileKey, fd);
            } catch (IOException e) {
                int ignored = (int) CLOSE.invokeExact(fd);
                throw e;
            }
            // The descriptor is of the file the log opened, not of one put at its path since.
            Object now = java.nio.file.Files.readAttributes(file, java.nio.file.attribute.BasicFileAttributes.class,
                    java.nio.file.LinkOption.NOFOLLOW_LINKS).fileKey();
            if (!java.util.Objects.equals(now, fileKey)) {
                s.close();
                throw new IOException("the audit file " + file + " was replaced by another file");
            }
            return s;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Whether this descriptor is of the file with this key. */
    boolean isOf(Object key) {
        return !closed && java.util.Objects.equals(fileKey, key);
    }

    /**
     * {@code fdatasync}: the file's data, and the metadata needed to read it back, are on disk.
     * Called by the thread that holds this descriptor's lane. Each lane has a descriptor of its
     * own: a write-back error is reported once per open file description, so two calls in
     * flight on one descriptor could report it to only one of them.
     */
    void sync() throws IOException {
        int rc;
        try {
            rc = (int) FDATASYNC.invokeExact(state, fd);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        if (rc != 0) {
            throw new IOException("fdatasync of " + file + " failed: " + error(state));
        }
    }

    private static String error(MemorySegment st) {
        int e = (int) ERRNO.get(st, 0L);
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(e);
            return s.reinterpret(1024).getString(0);
        } catch (Throwable t) {
            return "errno " + e;
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            int rc = (int) CLOSE.invokeExact(fd);
            if (rc != 0) {
                LOG.log(System.Logger.Level.DEBUG, "closing the sync descriptor of " + file + " failed");
            }
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.DEBUG, "closing the sync descriptor of " + file + " failed: " + t);
        }
    }
}
