package dev.enclavekms.server;

import dev.enclavekms.audit.AuditKeys;
import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.audit.AuditUnavailableException;
import dev.enclavekms.server.varlink.Params;
import dev.enclavekms.service.KmsError;
import dev.enclavekms.varlink.VarlinkError;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The Admin methods of the audit log ({@code kmsctl audit ...}): its public key, the HMAC
 * of a value to search for, and a checkpoint on demand. The admin check is the caller's
 * ({@link KmsApi}), as for every Admin method.
 */
final class AuditMethods {
    /** Longest value AuditHmac takes: context entries are at most 1 KiB. */
    static final int MAX_HMAC_VALUE = 4096;

    private final AuditLog log;
    private final AuditKeys keys;

    AuditMethods(AuditLog log, AuditKeys keys) {
        this.log = log;
        this.keys = keys;
    }

    Map<String, Object> publicKey() {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", AuditKeys.SIGNING_KEY);
        r.put("version", (long) keys.signingVersion());
        r.put("algorithm", AuditKeys.SIGNING_ALGORITHM.name());
        r.put("key_id", AuditKeys.keyId(keys.publicKey()));
        r.put("pem", KmsApi.pem(keys.publicKey()));
        return r;
    }

    Map<String, Object> hmac(Params p) throws KmsError, VarlinkError {
        try {
            return Map.of("hmac", keys.hmac(p.string("value", MAX_HMAC_VALUE)));
        } catch (AuditUnavailableException e) {
            throw new KmsError.EnclaveUnavailable(e.getMessage(), null);
        }
    }

    Map<String, Object> checkpoint() throws KmsError {
        try {
            AuditLog.Head h = log.checkpoint();
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("seq", h.seq());
            r.put("hash", h.hash());
            r.put("time", h.time());
            r.put("file", h.file().toString());
            return r;
        } catch (AuditUnavailableException e) {
            throw new KmsError.AuditUnavailable(e.getMessage());
        }
    }
}
