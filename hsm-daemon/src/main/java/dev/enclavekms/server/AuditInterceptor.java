package dev.enclavekms.server;

import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.audit.AuditUnavailableException;
import dev.enclavekms.audit.CallAuditor;
import dev.enclavekms.server.varlink.CallInterceptor;
import dev.enclavekms.server.varlink.Peer;
import dev.enclavekms.service.KmsError;
import dev.enclavekms.varlink.VarlinkError;

import java.util.Map;

/**
 * Puts every call into the audit log before its reply leaves, and fails closed: a call is
 * not run while the log is unwritable, and a call whose record cannot be made durable gets
 * {@code AuditUnavailable} instead of its reply. The few calls that release nothing and
 * change nothing ({@link CallAuditor#DEFERRED_METHODS}: Status, public keys, key metadata)
 * are queued in the chain and answered without waiting for the fsync.
 *
 * <p>A record is written after the call ran, so a call with an effect (CreateKey, a
 * rotation) whose record then fails has taken effect although its caller was refused; the
 * daemon's log then carries the record's fields (never anything the allowlist keeps out)
 * at ERROR, so that the change is not unaccounted for. Data-plane calls release nothing in
 * that case: their reply is withheld.
 */
final class AuditInterceptor implements CallInterceptor {
    private static final System.Logger LOG = System.getLogger(AuditInterceptor.class.getName());

    private final AuditLog log;
    private final CallAuditor auditor;

    AuditInterceptor(AuditLog log, CallAuditor auditor) {
        this.log = log;
        this.auditor = auditor;
    }

    @Override
    public void admit(Peer peer, String method) throws VarlinkError {
        try {
            log.requireWritable();
        } catch (AuditUnavailableException e) {
            throw refusal(method, e);
        }
    }

    @Override
    public void completed(CompletedCall call) throws VarlinkError {
        CallAuditor.CallFacts facts = facts(call);
        Map<String, Object> record = null;
        try {
            record = auditor.record(facts);
            if (CallAuditor.deferrable(facts)) {
                log.appendDeferred(record); // releases nothing: durable with the next group commit
            } else {
                log.append(record);
            }
        } catch (RuntimeException e) {
            throw internalError(call, e);
        } catch (AuditUnavailableException e) {
            throw withheld(call, record, e);
        }
    }

    /**
     * The same record, appended without waiting ({@link AuditLog#appendThen}): {@code then}
     * runs once it is durable (the reply may leave) or refused (AuditUnavailable instead),
     * on the thread of the group commit that settled it. Deferred methods as in
     * {@link #completed}.
     */
    @Override
    public void completedThen(CompletedCall call, Recorded then) {
        CallAuditor.CallFacts facts = facts(call);
        if (CallAuditor.deferrable(facts)) {
            // Queued, not waited for (past the log's high-water mark it waits, as back-pressure).
            VarlinkError refusal = null;
            try {
                completed(call);
            } catch (VarlinkError e) {
                refusal = e;
            }
            then.answer(refusal);
            return;
        }
        Map<String, Object> record;
        try {
            record = auditor.record(facts);
        } catch (RuntimeException e) {
            then.answer(internalError(call, e));
            return;
        } catch (AuditUnavailableException e) {
            then.answer(withheld(call, null, e));
            return;
        }
        log.appendThen(record, refused -> then.answer(refused == null ? null : withheld(call, record, refused)));
    }

    private static CallAuditor.CallFacts facts(CompletedCall call) {
        Peer peer = call.peer();
        return new CallAuditor.CallFacts(peer.user(), peer.group(), peer.connectionId(), call.session(),
                call.method(), call.parameters(), call.reply(), call.error(), call.streaming());
    }

    private static VarlinkError internalError(CompletedCall call, RuntimeException e) {
        LOG.log(System.Logger.Level.ERROR, "cannot audit " + call.method() + "; the call is refused", e);
        return refusal(call.method(), new AuditUnavailableException("internal error while recording the call;"
                + " see the daemon log"));
    }

    /** A record that could not be made durable: the call is refused, and a withheld success is logged. */
    private static VarlinkError withheld(CompletedCall call, Map<String, Object> record, AuditUnavailableException e) {
        if (call.error() == null) {
            LOG.log(System.Logger.Level.ERROR, "call not audited, its reply withheld (" + e.getMessage() + "): "
                    + (record != null ? record : call.method() + " by user=" + call.peer().user()));
        }
        return refusal(call.method(), e);
    }

    /** AuditUnavailable of the interface the caller called (Kms for anything not ours). */
    private static VarlinkError refusal(String method, AuditUnavailableException e) {
        String iface = method != null && method.startsWith(KmsApi.ADMIN + ".") ? KmsApi.ADMIN : KmsApi.KMS;
        return ErrorMapping.toVarlink(iface, new KmsError.AuditUnavailable(e.getMessage()));
    }
}
