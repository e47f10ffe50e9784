package dev.enclavekms.client;

import java.util.Map;

/**
 * The daemon's audit log cannot record the call, so the daemon refused it (it fails closed
 * rather than act unrecorded); the message says why. Nothing was released. Retrying later
 * may succeed once the log is writable again.
 */
public final class AuditUnavailableException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public AuditUnavailableException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }
}
