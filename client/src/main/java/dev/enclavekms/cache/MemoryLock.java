package dev.enclavekms.cache;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * Keeps the pages of a key segment out of swap ({@code mlock}) and out of core dumps
 * ({@code madvise(MADV_DONTDUMP)}), through the Foreign Function &amp; Memory API.
 *
 * <p>An interface so that tests can make locking fail (as it does with
 * {@code RLIMIT_MEMLOCK} = 0) without changing the process's limits.
 */
interface MemoryLock {

    /**
     * Locks and excludes from dumps the page-aligned {@code segment}.
     *
     * @return null when both worked, else a short reason (e.g. {@code "mlock: EPERM"}); never
     *         anything about the segment's content
     */
    String lock(MemorySegment segment);

    /** Undoes {@link #lock}; called after the segment was zeroed and before it is freed. */
    void unlock(MemorySegment segment);

    /** The size of a page, to which key segments are aligned and rounded. */
    long pageSize();

    /** libc through {@link Linker#nativeLinker()}; on a platform without it every lock fails. */
    static MemoryLock libc() {
        return Libc.INSTANCE;
    }

    /** The libc implementation. Linux values: MADV_DONTDUMP = 16, _SC_PAGESIZE = 30. */
    final class Libc implements MemoryLock {
        static final Libc INSTANCE = new Libc();
        private static final int MADV_DONTDUMP = 16;
        private static final int SC_PAGESIZE = 30;

        private final MethodHandle mlock;
        private final MethodHandle munlock;
        private final MethodHandle madvise;
        private final StructLayout callState;
        private final VarHandle errno;
        private final long pageSize;
        private final String unavailable;

        private Libc() {
            MethodHandle lock = null, unlock = null, advise = null;
            StructLayout state = null;
            VarHandle err = null;
            long page = 4096;
            String why = null;
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                Linker.Option errnoState = Linker.Option.captureCallState("errno");
                state = Linker.Option.captureStateLayout();
                err = state.varHandle(MemoryLayout.PathElement.groupElement("errno"));
                FunctionDescriptor addrLen = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG);
                lock = linker.downcallHandle(libc.findOrThrow("mlock"), addrLen, errnoState);
                unlock = linker.downcallHandle(libc.findOrThrow("munlock"), addrLen);
                advise = linker.downcallHandle(libc.findOrThrow("madvise"), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT), errnoState);
                MethodHandle sysconf = linker.downcallHandle(libc.findOrThrow("sysconf"),
                        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
                long p = (long) sysconf.invokeExact(SC_PAGESIZE);
                if (p > 0) page = p;
            } catch (Throwable t) {
                // No libc (or native access denied): the cache still works, unlocked.
                why = "native access unavailable: " + t.getClass().getSimpleName();
                lock = unlock = advise = null;
            }
            this.mlock = lock;
            this.munlock = unlock;
            this.madvise = advise;
            this.callState = state;
            this.errno = err;
            this.pageSize = page;
            this.unavailable = why;
        }

        @Override
        public String lock(MemorySegment segment) {
            if (unavailable != null) return unavailable;
            try (Arena a = Arena.ofConfined()) {
                MemorySegment st = a.allocate(callState);
                int rc = (int) mlock.invokeExact(st, segment, segment.byteSize());
                String failure = rc == 0 ? null : "mlock: " + errnoName((int) errno.get(st, 0L));
                rc = (int) madvise.invokeExact(st, segment, segment.byteSize(), MADV_DONTDUMP);
                if (rc != 0) {
                    String m = "madvise(MADV_DONTDUMP): " + errnoName((int) errno.get(st, 0L));
                    failure = failure == null ? m : failure + "; " + m;
                }
                return failure;
            } catch (Throwable t) {
                return "mlock: " + t.getClass().getSimpleName();
            }
        }

        @Override
        public void unlock(MemorySegment segment) {
            if (unavailable != null) return;
            try {
                int rc = (int) munlock.invokeExact(segment, segment.byteSize());
            } catch (Throwable ignored) {
                // The memory is freed next; a page left locked costs only the limit.
            }
        }

        @Override
        public long pageSize() {
            return pageSize;
        }

        private static String errnoName(int e) {
            return switch (e) {
                case 1 -> "EPERM";
                case 11 -> "EAGAIN";
                case 12 -> "ENOMEM";
                case 22 -> "EINVAL";
                default -> "errno " + e;
            };
        }
    }
}
