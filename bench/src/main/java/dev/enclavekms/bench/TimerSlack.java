package dev.enclavekms.bench;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The calling thread's timer slack (Linux {@code prctl(PR_SET_TIMERSLACK)}): how late the
 * kernel may fire its timers to batch wake-ups, 50 µs by default. The open loop's sender
 * sleeps until each call is due, so the default slack alone would make every call look
 * ≈ 50 µs slower from its due time; the sender asks for 1 µs. Only the generator's own
 * thread is changed, never the daemon's.
 */
final class TimerSlack {
    private static final int PR_SET_TIMERSLACK = 29;
    private static final MethodHandle PRCTL = lookup();

    private TimerSlack() {
    }

    /** @return whether the slack was set (false off Linux or if {@code prctl} refused) */
    static boolean setForThisThread(long ns) {
        if (PRCTL == null) return false;
        try {
            return (int) PRCTL.invokeExact(PR_SET_TIMERSLACK, ns, 0L, 0L, 0L) == 0;
        } catch (Throwable e) {
            return false;
        }
    }

    private static MethodHandle lookup() {
        if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) return null;
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find("prctl").map(addr -> linker.downcallHandle(addr,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG))).orElse(null);
        } catch (RuntimeException e) {
            return null;
        }
    }
}
