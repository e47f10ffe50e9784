package dev.enclavekms.server.varlink;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A varlink interface served by the server: its name, its IDL description (returned by
 * {@code org.varlink.service.GetInterfaceDescription}) and a handler per method.
 *
 * @param invalidParameterError the error name used when a parameter has the wrong type
 * @param internalError         the error name sent when a handler fails unexpectedly
 * @param declaredParameters    for a strict interface, each method's parameter names as its IDL
 *                              declares them (calls with any other parameter are refused); empty
 *                              for a lenient one
 * @param offloaded             handlers run on platform worker threads with the server's
 *                              call timeout (for handlers that call into native device code)
 * @param concurrentMethods     methods whose pipelined calls may run alongside other such calls
 *                              of the same connection (replies still leave in order): they
 *                              neither change the connection's state nor depend on the effect of
 *                              an earlier call on it. Every other call waits for the calls before
 *                              it to be answered, and the calls after it wait for it
 */
public record VarlinkInterface(String name, String description, Map<String, MethodHandler> methods,
                               String invalidParameterError, String internalError,
                               Map<String, Set<String>> declaredParameters, boolean offloaded,
                               Set<String> concurrentMethods) {

    public static Builder builder(String name, String description) {
        return new Builder(name, description);
    }

    public static final class Builder {
        private final String name;
        private final String description;
        private final Map<String, MethodHandler> methods = new LinkedHashMap<>();
        private String invalidParameterError = "org.varlink.service.InvalidParameter";
        private String internalError = "org.varlink.service.InternalError";
        private boolean strict;
        private boolean offloaded;
        private final Set<String> concurrent = new java.util.HashSet<>();

        private Builder(String name, String description) {
            this.name = name;
            this.description = description;
        }

        public Builder method(String method, MethodHandler handler) {
            if (methods.put(method, handler) != null) {
                throw new IllegalArgumentException("method " + method + " registered twice");
            }
            return this;
        }

        public Builder errors(String invalidParameter, String internal) {
            this.invalidParameterError = invalidParameter;
            this.internalError = internal;
            return this;
        }

        /**
         * Refuse parameters the IDL does not declare, and check now that every handler
         * has a method in the IDL and every IDL method a handler.
         */
        public Builder strictParameters() {
            this.strict = true;
            return this;
        }

        /** Run this interface's handlers on platform worker threads (they block in native code). */
        public Builder offloaded() {
            this.offloaded = true;
            return this;
        }

        /**
         * Lets pipelined calls of these methods on one connection run at the same time (see
         * {@link VarlinkInterface#concurrentMethods()}); only for methods that neither read
         * nor change what another call of the connection could change.
         */
        public Builder concurrent(String... names) {
            concurrent.addAll(java.util.List.of(names));
            return this;
        }

        public VarlinkInterface build() {
            if (!methods.keySet().containsAll(concurrent)) {
                throw new IllegalStateException("interface " + name + ": concurrent methods " + concurrent
                        + " are not all implemented");
            }
            Map<String, Set<String>> declared = Map.of();
            if (strict) {
                declared = Map.copyOf(IdlParameters.of(description));
                if (!declared.keySet().equals(methods.keySet())) {
                    throw new IllegalStateException("interface " + name + ": IDL methods " + declared.keySet()
                            + " differ from implemented methods " + methods.keySet());
                }
            }
            return new VarlinkInterface(name, description, Map.copyOf(methods), invalidParameterError, internalError,
                    declared, offloaded, Set.copyOf(concurrent));
        }
    }
}
