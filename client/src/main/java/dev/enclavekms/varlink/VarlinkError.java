package dev.enclavekms.varlink;

import java.util.Map;

/**
 * A varlink error reply: a fully qualified error name (e.g.
 * {@code dev.enclavekms.Kms.KeyNotFound}) and its parameters. By this project's
 * convention every error of its own interfaces carries a human-readable
 * {@code message} parameter.
 */
public class VarlinkError extends Exception {
    private final String error;
    private final Map<String, Object> parameters;

    public VarlinkError(String error, Map<String, Object> parameters) {
        super(describe(error, parameters));
        this.error = error;
        this.parameters = parameters == null ? Map.of() : parameters;
    }

    private static String describe(String error, Map<String, Object> parameters) {
        Object m = parameters == null ? null : parameters.get("message");
        return m instanceof String s ? error + ": " + s : error;
    }

    /** The fully qualified error name. */
    public String error() {
        return error;
    }

    public Map<String, Object> parameters() {
        return parameters;
    }

    /** The error's {@code message} parameter, or the error name when it has none. */
    public String humanMessage() {
        return parameters.get("message") instanceof String s ? s : error;
    }
}
