package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkError;

import java.util.Map;

/** Handles one varlink method. */
@FunctionalInterface
public interface MethodHandler {
    /**
     * @return the reply's parameters (may be empty, never null)
     * @throws VarlinkError a typed error to send to the caller
     */
    Map<String, Object> handle(Call call) throws Exception;

    /**
     * A handler that may run for as long as its connection: a {@code more} call that streams
     * events. It runs on the connection's own (virtual) thread even in an offloaded
     * interface, so neither the call timeout nor a worker bounds it. It may make a short
     * device call before it streams (pinning its carrier for that long), never one per
     * reply; a long-lived stream ends when {@link Call#closing()} turns true.
     */
    @FunctionalInterface
    interface Streaming extends MethodHandler {
    }
}
