package dev.enclavekms.client;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An error the daemon answered with: a typed varlink error carrying a human-readable
 * message. Each error of the {@code dev.enclavekms.Kms} and {@code dev.enclavekms.Admin}
 * interfaces has its own subclass with typed accessors for its parameters; an error this
 * client does not know (a newer daemon, another interface) arrives as a plain
 * {@code KmsException} with its name and parameters intact.
 *
 * <p>Transport failures (no daemon, connection lost, malformed reply) are
 * {@link java.io.IOException}s, never {@code KmsException}s: a {@code KmsException}
 * means the daemon received the call and refused it, so the same call will fail the
 * same way until something changes.
 */
public sealed class KmsException extends Exception
        permits KeyNotFoundException, KeyVersionNotFoundException, InvalidParameterException,
        PermissionDeniedException, DecryptionFailedException, InvalidKeyUsageException,
        KeyVersionUnusableException, EnclaveUnavailableException, InternalErrorException,
        InvalidRequestException, RequestTooLargeException, TooManyConnectionsException,
        KeyAlreadyExistsException, KeyVersionDestroyedException, InvalidStateTransitionException,
        PolicyInvalidException, AuditUnavailableException, SessionNotFoundException,
        SessionMaterialNotFoundException, SessionLimitExceededException, CertificateRefusedException,
        CertificateNotFoundException {

    private final String error;
    private final Map<String, Object> parameters;

    /**
     * @param error      the fully qualified varlink error name, e.g.
     *                   {@code dev.enclavekms.Kms.KeyNotFound}
     * @param parameters the error's parameters as received (null means none)
     */
    public KmsException(String error, Map<String, Object> parameters) {
        super(messageOf(error, parameters));
        this.error = error;
        // Not Map.copyOf: a reply may carry explicit nulls, which varlink treats as absent.
        this.parameters = parameters == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
    }

    private static String messageOf(String error, Map<String, Object> parameters) {
        Object m = parameters == null ? null : parameters.get("message");
        return m instanceof String s && !s.isEmpty() ? s : error;
    }

    /** The fully qualified varlink error name, e.g. {@code dev.enclavekms.Kms.KeyNotFound}. */
    public String error() {
        return error;
    }

    /** The error name without its interface, e.g. {@code KeyNotFound}. */
    public String shortName() {
        return error.substring(error.lastIndexOf('.') + 1);
    }

    /** The error's parameters as the daemon sent them (unmodifiable, never null). */
    public Map<String, Object> parameters() {
        return parameters;
    }

    /** A string parameter, or null when absent or not a string. */
    String stringParameter(String name) {
        return parameters.get(name) instanceof String s ? s : null;
    }

    /** An integer parameter, or -1 when absent or not an integer. */
    long longParameter(String name) {
        return parameters.get(name) instanceof Long l ? l : -1;
    }
}
