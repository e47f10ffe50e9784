package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkError;

import java.util.Map;

/**
 * Sees every call to a served interface before its reply leaves — the audit log's hook.
 * Calls of {@code org.varlink.service} and messages that name no method are not shown.
 *
 * <p>Order for one call, all on the thread that serves the connection (or, for
 * {@link #completed} at a streamed call's first reply, the handler's thread):
 * {@link #admit} → the method's handler → {@link #completed} → the reply is written. An
 * exception from either method replaces what the caller gets; the call is still observed by
 * the {@link VarlinkServer.CallObserver} with that error. A pipelined call of an offloaded
 * interface is shown through {@link #completedThen} instead, from its device worker, and
 * answered from whichever thread the interceptor gives its outcome on.
 */
public interface CallInterceptor {

    /**
     * Before the handler runs (and before parameters are checked). Throwing refuses the call
     * without running it: the thrown error is sent instead, and {@link #completed} is not
     * called for it.
     */
    void admit(Peer peer, String method) throws VarlinkError;

    /**
     * After the handler — successful or not, including refusals of bad parameters and
     * unknown methods — and before the first reply frame is written. Throwing sends the
     * thrown error instead of the reply.
     *
     * <p>A streamed call ({@code more}) is shown when its first intermediate reply is about
     * to leave ({@link CompletedCall#streaming()} true, {@code reply} that first reply), and
     * once more if it then fails (with the error). A {@code oneway} call is shown like any
     * other; nothing is sent to its caller either way.
     */
    void completed(CompletedCall call) throws VarlinkError;

    /**
     * {@link #completed} for a caller that must not wait (a device worker): {@code then}
     * learns — exactly once — whether the call may be answered as it is or must be refused,
     * when that is known, possibly later and on another thread (the audit log's group
     * commit). {@code then} never blocks. This method throws only before it has told
     * {@code then}; the server treats that like an exception from {@link #completed}.
     *
     * <p>The default calls {@link #completed} on a new virtual thread: an interceptor not
     * written for this may wait, and must not hold its caller.
     */
    default void completedThen(CompletedCall call, Recorded then) {
        Thread.startVirtualThread(() -> {
            VarlinkError refusal;
            try {
                completed(call);
                refusal = null;
            } catch (VarlinkError e) {
                refusal = e;
            } catch (RuntimeException e) {
                then.failed(e);
                return;
            }
            then.answer(refusal);
        });
    }

    /** What becomes of a call once {@link #completedThen} has its outcome. */
    interface Recorded {
        /** @param refusal null: answer the call as it is; else the error to send instead */
        void answer(VarlinkError refusal);

        /** The interceptor failed unexpectedly: the call is refused, as by an exception from {@link #completed}. */
        void failed(RuntimeException bug);
    }

    /** Admits everything and records nothing. */
    CallInterceptor NONE = new CallInterceptor() {
        @Override
        public void admit(Peer peer, String method) {
        }

        @Override
        public void completed(CompletedCall call) {
        }

        @Override
        public void completedThen(CompletedCall call, Recorded then) {
            then.answer(null);
        }
    };

    /**
     * One call as it ends.
     *
     * @param session    the connection's attributes ({@link Call#session()}), as the handler left them
     * @param method     the qualified method name as the caller sent it (it may name no served method)
     * @param parameters the call's parameters as sent (empty when none)
     * @param reply      the reply's parameters; null when the call failed
     * @param error      the varlink error name of a failed call; null when it succeeded
     * @param streaming  shown as the first of several replies leaves
     */
    record CompletedCall(Peer peer, Map<String, Object> session, String method, Map<String, Object> parameters,
                         Map<String, Object> reply, String error, boolean streaming) {
    }
}
