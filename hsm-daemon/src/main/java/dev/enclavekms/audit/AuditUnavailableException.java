package dev.enclavekms.audit;

/**
 * A record could not be made durable, so the call it records must not be answered: the log
 * cannot be written (the message says why), did not confirm the record in time, or the
 * record could not be built. Callers get {@code AuditUnavailable}; the daemon fails closed.
 */
public final class AuditUnavailableException extends Exception {
    public AuditUnavailableException(String message) {
        super(message, null, false, false);
    }
}
