package dev.enclavekms.service;

/**
 * Every failure the service reports. Two kinds, as in Vault: the caller's fault
 * ({@link CallerError}: bad input, unknown key, denied, undecryptable) and ours
 * ({@link ServiceFault}: the enclave or the daemon failed). The server maps each
 * subclass to its varlink error in one place. Messages are for humans and never
 * contain key material, plaintext, PINs or tokens.
 */
public abstract sealed class KmsError extends Exception permits KmsError.CallerError, KmsError.ServiceFault {

    private KmsError(String message, Throwable cause) {
        super(message, cause, false, cause != null);
    }

    /** The caller sent something we will not or cannot act on. */
    public abstract static sealed class CallerError extends KmsError {
        private CallerError(String message) {
            super(message, null);
        }
    }

    /** The daemon or the hardware failed; the caller may retry later. */
    public abstract static sealed class ServiceFault extends KmsError {
        private ServiceFault(String message, Throwable cause) {
            super(message, cause);
        }
    }

    public static final class InvalidParameter extends CallerError {
        private final String parameter;

        public InvalidParameter(String parameter, String message) {
            super(message);
            this.parameter = parameter;
        }

        public String parameter() {
            return parameter;
        }
    }

    public static final class KeyNotFound extends CallerError {
        private final String key;

        public KeyNotFound(String key) {
            super("no key named '" + key + "'");
            this.key = key;
        }

        public String key() {
            return key;
        }
    }

    public static final class KeyAlreadyExists extends CallerError {
        private final String key;

        public KeyAlreadyExists(String key) {
            super("a key named '" + key + "' already exists");
            this.key = key;
        }

        public String key() {
            return key;
        }
    }

    /** A refusal that concerns one version of one key. */
    public abstract static sealed class KeyVersionError extends CallerError {
        private final String key;
        private final int version;

        private KeyVersionError(String key, int version, String message) {
            super(message);
            this.key = key;
            this.version = version;
        }

        public String key() {
            return key;
        }

        public int version() {
            return version;
        }
    }

    public static final class KeyVersionNotFound extends KeyVersionError {
        public KeyVersionNotFound(String key, int version) {
            super(key, version, "key '" + key + "' has no version " + version);
        }
    }

    public static final class InvalidKeyUsage extends CallerError {
        private final String key;

        public InvalidKeyUsage(String key, String message) {
            super(message);
            this.key = key;
        }

        public String key() {
            return key;
        }
    }

    public static final class KeyVersionUnusable extends KeyVersionError {
        private final String state;

        public KeyVersionUnusable(String key, int version, String state, String message) {
            super(key, version, message);
            this.state = state;
        }

        public String state() {
            return state;
        }
    }

    /** The version was destroyed: what it protected is gone for good. */
    public static final class KeyVersionDestroyed extends KeyVersionError {
        private final java.time.Instant destroyed;

        public KeyVersionDestroyed(String key, int version, java.time.Instant destroyed) {
            super(key, version, "version " + version + " of '" + key + "' was destroyed"
                    + (destroyed == null ? "" : " at " + destroyed)
                    + "; what it protected can no longer be decrypted or verified");
            this.destroyed = destroyed;
        }

        public java.time.Instant destroyed() {
            return destroyed;
        }
    }

    /** A lifecycle operation the version's current state does not allow. */
    public static final class InvalidStateTransition extends KeyVersionError {
        private final String state;

        public InvalidStateTransition(String key, int version, String state, String message) {
            super(key, version, message);
            this.state = state;
        }

        public String state() {
            return state;
        }
    }

    public static final class PermissionDenied extends CallerError {
        public PermissionDenied(String message) {
            super(message);
        }
    }

    /** A policy file that cannot be put in force (ReloadPolicy); the policy in force stays. */
    public static final class PolicyInvalid extends CallerError {
        private final dev.enclavekms.policy.PolicyException problems;

        public PolicyInvalid(dev.enclavekms.policy.PolicyException problems) {
            super("the policy file " + problems.source() + " was not loaded, the policy in force stays:\n"
                    + problems.getMessage());
            this.problems = problems;
        }

        public String file() {
            return problems.source();
        }

        public java.util.List<dev.enclavekms.policy.PolicyException.Problem> problems() {
            return problems.problems();
        }
    }

    /** One generic message whatever went wrong, so a failure reveals nothing about the data. */
    /**
     * No such session, or the caller may not know of it: a session of another tenant, an
     * expired, closed or revoked one all get this very message.
     */
    public static final class SessionNotFound extends CallerError {
        private final String session;

        public SessionNotFound(String session) {
            super("no session '" + session + "'");
            this.session = session;
        }

        public String session() {
            return session;
        }
    }

    /** The session has no sealed material of that name (never put, or not yet final). */
    public static final class SessionMaterialNotFound extends CallerError {
        private final String name;

        public SessionMaterialNotFound(String name, String message) {
            super(message);
            this.name = name;
        }

        public String name() {
            return name;
        }
    }

    /** A configured session limit (size, count) would be exceeded; the message names it. */
    public static final class SessionLimitExceeded extends CallerError {
        private final long limit;

        public SessionLimitExceeded(long limit, String message) {
            super(message);
            this.limit = limit;
        }

        public long limit() {
            return limit;
        }
    }

    /**
     * A certificate request the CA will not sign. {@code reason} is one of
     * {@link CertificateRefused.Reason}'s names and says what was wrong; the message says how.
     */
    public static final class CertificateRefused extends CallerError {
        /** Why a request was refused; the names are on the wire. */
        public enum Reason { BAD_CSR, BAD_SIGNATURE, WEAK_KEY, TTL_TOO_LONG, SAN_NOT_ALLOWED, BAD_PROFILE,
            /** The signing version is an intermediate CA whose certificate has not been imported yet. */
            CA_CERTIFICATE_MISSING }

        private final Reason reason;

        public CertificateRefused(Reason reason, String message) {
            super(message);
            this.reason = reason;
        }

        public Reason reason() {
            return reason;
        }
    }

    /**
     * No certificate of this serial was issued by a CA key the caller may manage: never
     * issued here, or issued by another tenant's CA (the same message, so a caller learns
     * nothing about other tenants' certificates).
     */
    public static final class CertificateNotFound extends CallerError {
        private final String serial;

        public CertificateNotFound(String serial) {
            super("no certificate with serial " + serial + " was issued by a CA key the caller may manage");
            this.serial = serial;
        }

        public String serial() {
            return serial;
        }
    }

    public static final class DecryptionFailed extends CallerError {
        public DecryptionFailed() {
            super("decryption failed: the ciphertext is malformed, was modified, or the context differs");
        }
    }

    public static final class EnclaveUnavailable extends ServiceFault {
        public EnclaveUnavailable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * The audit log cannot take the call's record, so the call is refused (fails closed).
     * The message says why; the audit log itself logs when it fails and when it recovers.
     */
    public static final class AuditUnavailable extends ServiceFault {
        public AuditUnavailable(String message) {
            super(message, null);
        }
    }

    public static final class Internal extends ServiceFault {
        public Internal(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
