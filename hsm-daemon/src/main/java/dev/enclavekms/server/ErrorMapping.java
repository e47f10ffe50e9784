package dev.enclavekms.server;

import dev.enclavekms.service.KmsError;
import dev.enclavekms.varlink.VarlinkError;

import java.util.LinkedHashMap;
import java.util.Map;

/** The one place where service errors become varlink errors. */
final class ErrorMapping {
    private static final System.Logger LOG = System.getLogger(ErrorMapping.class.getName());

    private ErrorMapping() {
    }

    static VarlinkError toVarlink(String iface, KmsError e) {
        Map<String, Object> p = new LinkedHashMap<>();
        String name = describe(e, p);
        if (e instanceof KmsError.ServiceFault && !(e instanceof KmsError.AuditUnavailable)) {
            // (An unwritable audit log is logged once by the log, not once per refused call.)
            // Ours, not the caller's: the log gets the cause, the caller a summary.
            LOG.log(System.Logger.Level.ERROR, name + ": " + e.getMessage(), e.getCause());
        }
        p.put("message", e instanceof KmsError.Internal ? "internal error; see the daemon log" : e.getMessage());
        return new VarlinkError(iface + "." + name, p);
    }

    /** Short error name for a DecryptBatch entry. */
    static String shortName(KmsError e) {
        return describe(e, new LinkedHashMap<>());
    }

    /** The error's short name; its typed parameters go into {@code p}. */
    private static String describe(KmsError e, Map<String, Object> p) {
        return switch (e) {
            case KmsError.InvalidParameter x -> {
                p.put("parameter", x.parameter());
                yield "InvalidParameter";
            }
            case KmsError.KeyNotFound x -> {
                p.put("key", x.key());
                yield "KeyNotFound";
            }
            case KmsError.KeyAlreadyExists x -> {
                p.put("key", x.key());
                yield "KeyAlreadyExists";
            }
            case KmsError.KeyVersionNotFound x -> {
                p.put("key", x.key());
                p.put("version", (long) x.version());
                yield "KeyVersionNotFound";
            }
            case KmsError.InvalidKeyUsage x -> {
                p.put("key", x.key());
                yield "InvalidKeyUsage";
            }
            case KmsError.KeyVersionUnusable x -> {
                p.put("key", x.key());
                p.put("version", (long) x.version());
                p.put("state", x.state());
                yield "KeyVersionUnusable";
            }
            case KmsError.KeyVersionDestroyed x -> {
                p.put("key", x.key());
                p.put("version", (long) x.version());
                p.put("destroyed", x.destroyed() == null ? "" : x.destroyed().toString());
                yield "KeyVersionDestroyed";
            }
            case KmsError.InvalidStateTransition x -> {
                p.put("key", x.key());
                p.put("version", (long) x.version());
                p.put("state", x.state());
                yield "InvalidStateTransition";
            }
            case KmsError.PermissionDenied x -> "PermissionDenied";
            case KmsError.PolicyInvalid x -> {
                p.put("file", x.file());
                java.util.List<Object> problems = new java.util.ArrayList<>();
                for (var problem : x.problems()) {
                    problems.add(Map.of("line", (long) problem.line(), "message", problem.message()));
                }
                p.put("problems", problems);
                yield "PolicyInvalid";
            }
            case KmsError.SessionNotFound x -> {
                p.put("session", x.session());
                yield "SessionNotFound";
            }
            case KmsError.SessionMaterialNotFound x -> {
                p.put("name", x.name());
                yield "SessionMaterialNotFound";
            }
            case KmsError.SessionLimitExceeded x -> {
                p.put("limit", x.limit());
                yield "SessionLimitExceeded";
            }
            case KmsError.CertificateRefused x -> {
                p.put("reason", x.reason().name());
                yield "CertificateRefused";
            }
            case KmsError.CertificateNotFound x -> {
                p.put("serial", x.serial());
                yield "CertificateNotFound";
            }
            case KmsError.DecryptionFailed x -> "DecryptionFailed";
            case KmsError.EnclaveUnavailable x -> "EnclaveUnavailable";
            case KmsError.AuditUnavailable x -> "AuditUnavailable";
            case KmsError.Internal x -> "InternalError";
        };
    }
}
