package dev.enclavekms.server;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The uid and gid behind the user and group names SO_PEERCRED gave (the JDK resolves the
 * kernel's numbers to names and does not give the numbers): {@code getpwnam_r} and
 * {@code getgrnam_r} of the C library, through FFM. A name that is a number (a uid with
 * no account) is that number. Null when the lookup is not possible; the numbers are for
 * the audit log and messages, never for decisions, which use the names.
 */
final class UnixAccounts {
    private static final System.Logger LOG = System.getLogger(UnixAccounts.class.getName());
    /** Offset of pw_uid in struct passwd and of gr_gid in struct group (glibc, 64-bit: after two pointers). */
    private static final long ID_OFFSET = 16;
    private static final long STRUCT_BYTES = 64;
    private static final long BUFFER_BYTES = 16384;
    private static final MethodHandle GETPWNAM_R = lookup("getpwnam_r");
    private static final MethodHandle GETGRNAM_R = lookup("getgrnam_r");

    private UnixAccounts() {
    }

    private static MethodHandle lookup(String function) {
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find(function).map(f -> linker.downcallHandle(f, FunctionDescriptor.of(
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG, ValueLayout.ADDRESS))).orElse(null);
        } catch (RuntimeException | LinkageError e) {
            LOG.log(System.Logger.Level.DEBUG, () -> function + " unavailable: " + e);
            return null;
        }
    }

    static Long uid(String user) {
        return id(GETPWNAM_R, user);
    }

    static Long gid(String group) {
        return id(GETGRNAM_R, group);
    }

    private static Long id(MethodHandle function, String name) {
        if (name == null || name.isEmpty() || name.equals("?")) return null;
        if (name.chars().allMatch(Character::isDigit) && name.length() <= 10) return Long.parseLong(name);
        if (function == null || ValueLayout.ADDRESS.byteSize() != 8) return null;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment struct = arena.allocate(STRUCT_BYTES, 8);
            MemorySegment buffer = arena.allocate(BUFFER_BYTES);
            MemorySegment result = arena.allocate(ValueLayout.ADDRESS);
            int rc = (int) function.invokeExact(arena.allocateFrom(name), struct, buffer, BUFFER_BYTES, result);
            if (rc != 0 || result.get(ValueLayout.ADDRESS, 0).equals(MemorySegment.NULL)) return null;
            return Integer.toUnsignedLong(struct.get(ValueLayout.JAVA_INT, ID_OFFSET));
        } catch (Throwable e) {
            LOG.log(System.Logger.Level.DEBUG, () -> "looking up " + name + " failed: " + e);
            return null;
        }
    }
}
