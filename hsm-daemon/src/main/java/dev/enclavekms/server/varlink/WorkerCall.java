package dev.enclavekms.server.varlink;

import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A pipelined call handed to a device worker — whole (the daemon's lone call) or its first
 * half (dispatch and the device call; whoever makes its audit record durable answers it) — and the
 * one decision about it that two threads race for: the worker settles it, or — past its
 * deadline — the reaper does. Whoever {@linkplain #settle settles} or {@linkplain #timeOut
 * times it out} first records and answers it; the other drops what it has.
 */
final class WorkerCall {
    private static final int QUEUED = 0;
    private static final int RUNNING = 1;
    private static final int ANSWERED_BY_WORKER = 2;
    private static final int TIMED_OUT = 3;

    private final Connection connection;
    private final Map<String, Object> message;
    private final VarlinkInterface iface;
    private final Connection.Slot slot;
    private final Runnable answered;
    private final long startNanos = System.nanoTime();
    private final long deadlineNanos;
    private final AtomicInteger state = new AtomicInteger(QUEUED);

    WorkerCall(Connection connection, Map<String, Object> message, VarlinkInterface iface, Connection.Slot slot,
               Runnable answered, long deadlineNanos) {
        this.connection = connection;
        this.message = message;
        this.iface = iface;
        this.slot = slot;
        this.answered = answered;
        this.deadlineNanos = deadlineNanos;
    }

    Connection connection() {
        return connection;
    }

    /** The parsed varlink message (a call of a concurrent method). */
    Map<String, Object> message() {
        return message;
    }

    VarlinkInterface iface() {
        return iface;
    }

    Connection.Slot slot() {
        return slot;
    }

    /** Runs once its reply is handed to the connection (frees its place among the calls in flight). */
    Runnable answered() {
        return answered;
    }

    long startNanos() {
        return startNanos;
    }

    /** The worker takes it up; false when it was timed out while queued (it must not run). */
    boolean start() {
        return state.compareAndSet(QUEUED, RUNNING);
    }

    /** The worker claims the answer; true also when it claimed it before. False: timed out. */
    boolean settle() {
        return state.compareAndSet(RUNNING, ANSWERED_BY_WORKER) || state.get() == ANSWERED_BY_WORKER;
    }

    boolean overdue(long nowNanos) {
        return nowNanos - deadlineNanos > 0;
    }

    /** The reaper claims the answer of an overdue call, queued or running; false when the worker has it. */
    boolean timeOut() {
        while (true) {
            int s = state.get();
            if (s != QUEUED && s != RUNNING) {
                return false;
            }
            if (state.compareAndSet(s, TIMED_OUT)) {
                return true;
            }
        }
    }
}
