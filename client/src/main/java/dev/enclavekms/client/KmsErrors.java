package dev.enclavekms.client;

import dev.enclavekms.varlink.VarlinkError;

import java.util.Map;

/**
 * The one place where varlink error names become exception types. Errors are matched on
 * their full name, so an error of the same short name from an unrelated interface does
 * not pose as one of ours.
 */
final class KmsErrors {
    static final String KMS = "dev.enclavekms.Kms";
    static final String ADMIN = "dev.enclavekms.Admin";
    static final String SERVICE = "org.varlink.service";

    private KmsErrors() {
    }

    static KmsException from(VarlinkError e) {
        return from(e.error(), e.parameters());
    }

    /**
     * @param error      a fully qualified error name
     * @param parameters its parameters (may be null)
     * @return the most specific exception for the name; a plain {@link KmsException} for
     *         names this client does not know
     */
    static KmsException from(String error, Map<String, Object> parameters) {
        int dot = error.lastIndexOf('.');
        String iface = dot < 0 ? "" : error.substring(0, dot);
        String name = error.substring(dot + 1);
        if (iface.equals(KMS) || iface.equals(ADMIN)) {
            return switch (name) {
                case "KeyNotFound" -> new KeyNotFoundException(error, parameters);
                case "KeyVersionNotFound" -> new KeyVersionNotFoundException(error, parameters);
                case "InvalidParameter" -> new InvalidParameterException(error, parameters);
                case "PermissionDenied" -> new PermissionDeniedException(error, parameters);
                case "DecryptionFailed" -> new DecryptionFailedException(error, parameters);
                case "InvalidKeyUsage" -> new InvalidKeyUsageException(error, parameters);
                case "KeyVersionUnusable" -> new KeyVersionUnusableException(error, parameters);
                case "EnclaveUnavailable" -> new EnclaveUnavailableException(error, parameters);
                case "AuditUnavailable" -> new AuditUnavailableException(error, parameters);
                case "InternalError" -> new InternalErrorException(error, parameters);
                case "InvalidRequest" -> new InvalidRequestException(error, parameters);
                case "RequestTooLarge" -> new RequestTooLargeException(error, parameters);
                case "TooManyConnections" -> new TooManyConnectionsException(error, parameters);
                case "KeyAlreadyExists" -> new KeyAlreadyExistsException(error, parameters);
                case "KeyVersionDestroyed" -> new KeyVersionDestroyedException(error, parameters);
                case "InvalidStateTransition" -> new InvalidStateTransitionException(error, parameters);
                case "PolicyInvalid" -> new PolicyInvalidException(error, parameters);
                case "SessionNotFound" -> new SessionNotFoundException(error, parameters);
                case "SessionMaterialNotFound" -> new SessionMaterialNotFoundException(error, parameters);
                case "SessionLimitExceeded" -> new SessionLimitExceededException(error, parameters);
                case "CertificateRefused" -> new CertificateRefusedException(error, parameters);
                case "CertificateNotFound" -> new CertificateNotFoundException(error, parameters);
                default -> new KmsException(error, parameters);
            };
        }
        if (iface.equals(SERVICE)) {
            // The standard interface's errors that mean the same as ours; the rest
            // (InterfaceNotFound, MethodNotFound, ...) say this daemon lacks something.
            return switch (name) {
                case "InvalidParameter" -> new InvalidParameterException(error, parameters);
                case "PermissionDenied" -> new PermissionDeniedException(error, parameters);
                default -> new KmsException(error, parameters);
            };
        }
        return new KmsException(error, parameters);
    }
}
