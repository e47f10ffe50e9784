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
}
