package dev.enclavekms.audit;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiConsumer;

/**
 * Builds the audit record of one call, from an explicit allowlist: for each method, which
 * parameters and which reply fields are recorded, and how. Nothing else is: a parameter or
 * reply field that is not listed here — a plaintext, a data key, a ciphertext, a token, a
 * new field added tomorrow — never reaches the log. A method that is not listed at all is
 * recorded with the caller, the method and the outcome only.
 *
 * <p>How values appear: key names, version numbers, counts, enum names and booleans in
 * clear (a key name that is not a well-formed name is HMAC'd, since a caller can send
 * anything there); context values always HMAC'd, context keys in clear when they look like
 * names; error names in clear, error messages never (they may echo values). Identity: the
 * caller's user and group (SO_PEERCRED), its connection number, and — when the identity
 * layer has put them in the connection's attributes — {@value #TOKEN_ID_ATTRIBUTE} and
 * {@value #TENANT_ATTRIBUTE}. Never a token.
 *
 * <p>To audit a new method, add it to {@link #PARAMETERS} and/or {@link #REPLIES}, and a
 * case to {@code CallAuditorTest}.
 */
public final class CallAuditor {
    /**
     * Connection attribute ({@code Call.session()}) holding the id of the token the
     * connection authenticated with (an id, never the token). Set by the identity layer.
     */
    public static final String TOKEN_ID_ATTRIBUTE = "audit.token_id";
    /** Connection attribute holding the caller's tenant, set by the policy layer. */
    public static final String TENANT_ATTRIBUTE = "audit.tenant";

    private static final String KMS = "dev.enclavekms.Kms.";
    private static final String ADMIN = "dev.enclavekms.Admin.";

    /**
     * Methods whose record need not be durable before the reply leaves (docs/audit.md,
     * "Durability", and docs/decisions.md): they change nothing and release nothing secret
     * — health, public keys, public certificates, key metadata. Their record is still
     * written, in chain order, by the group commit that follows at once; only the caller does
     * not wait for its fsync, so a health probe or a public-key fetch does not cost a disk
     * flush. Everything else, and every streamed call, waits. Adding a method here is a
     * security decision: never one that returns plaintext, key material, a signature, a
     * certificate it issues, a token, or that has an effect.
     */
    public static final java.util.Set<String> DEFERRED_METHODS = java.util.Set.of(
            KMS + "Status", KMS + "GetPublicKey", KMS + "GetPublicKeys", KMS + "GetCaCertificates",
            ADMIN + "ListKeys", ADMIN + "DescribeKey", ADMIN + "AuditPublicKey");
    // The shapes of values shown in clear (CallAuditorTest pins each against its regex).
    /** {@code [A-Za-z0-9_][A-Za-z0-9._/-]{0,127}} */
    static final TextShape NAME = TextShape.of("A-Za-z0-9_", "A-Za-z0-9._/-", 1, 128);
    /** {@code [A-Z0-9_]{1,64}} */
    static final TextShape ENUM = TextShape.of("A-Z0-9_", 1, 64);
    /** {@code [A-Za-z0-9._:/-]{1,128}} */
    static final TextShape CONTEXT_KEY = TextShape.of("A-Za-z0-9._:/-", 1, 128);
    /** {@code [A-Za-z0-9._:@/-]{1,128}} */
    static final TextShape IDENTIFIER = TextShape.of("A-Za-z0-9._:@/-", 1, 128);
    /** {@code [A-Za-z0-9_.]{1,255}} */
    static final TextShape METHOD = TextShape.of("A-Za-z0-9_.", 1, 255);
    /** {@code [0-9a-f]{48}} */
    static final TextShape SESSION_ID = TextShape.of("0-9a-f", 48, 48);
    /** {@code [\x20-\x7e]{1,1024}}: printable ASCII */
    static final TextShape CERTIFICATE_TEXT = TextShape.of(" -~", 1, 1024);

    /** How one allowed value is recorded. */
    enum Kind {
        /** A key name: in clear when well-formed, else HMAC'd. */
        KEY_NAME,
        INTEGER,
        BOOLEAN,
        /** An enum constant name (purpose, algorithm): in clear when it looks like one, else HMAC'd. */
        ENUM,
        /** A string map whose values are HMAC'd. */
        CONTEXT,
        /** A session id: in clear when it is one (48 hex digits), else HMAC'd. */
        SESSION,
        /** A tenant name or similar identifier: in clear when well-formed, else HMAC'd. */
        IDENTIFIER,
        /**
         * A fact of a certificate the CA issued (subject, serial, expiry): public by nature
         * and the point of the record, so in clear when printable and short, else HMAC'd.
         */
        CERTIFICATE_TEXT,
        /** A list of {@link #CERTIFICATE_TEXT} values (the SANs). */
        CERTIFICATE_TEXTS
    }

    /** One allowed field: where it comes from, what it is called in the record, and how it is shown. */
    record Field(String from, String to, Kind kind) {
    }

    private static Field field(String name, Kind kind) {
        return new Field(name, name, kind);
    }

    private static Field field(String from, String to, Kind kind) {
        return new Field(from, to, kind);
    }

    private static final Field KEY = field("key", Kind.KEY_NAME);
    private static final Field NAME_AS_KEY = field("name", "key", Kind.KEY_NAME);
    private static final Field VERSION = field("version", Kind.INTEGER);
    private static final Field CONTEXT = field("context", Kind.CONTEXT);
    private static final Field SESSION = field("session", Kind.SESSION);
    /** A blob's name in a session: shown like a key name, under its own field. */
    private static final Field MATERIAL = field("name", "material", Kind.KEY_NAME);

    /** The parameters recorded, per method. */
    static final Map<String, List<Field>> PARAMETERS = Map.ofEntries(
            Map.entry(KMS + "GenerateDataKey", List.of(KEY, CONTEXT, field("bytes", Kind.INTEGER))),
            Map.entry(KMS + "GenerateDataKeys", List.of(KEY, CONTEXT, field("count", Kind.INTEGER),
                    field("bytes", Kind.INTEGER))),
            Map.entry(KMS + "Encrypt", List.of(KEY, CONTEXT)),
            Map.entry(KMS + "Decrypt", List.of(CONTEXT)),
            Map.entry(KMS + "DecryptBatch", List.of(CONTEXT)),
            Map.entry(KMS + "Sign", List.of(KEY)),
            Map.entry(KMS + "Verify", List.of(KEY, VERSION)),
            Map.entry(KMS + "GetPublicKey", List.of(KEY, VERSION)),
            Map.entry(KMS + "GetPublicKeys", List.of(KEY)),
            Map.entry(KMS + "GetCaCertificates", List.of(KEY)),
            // Never "csr" itself: the reply's facts are what was signed.
            Map.entry(KMS + "IssueCertificate", List.of(KEY, field("ttl_seconds", Kind.INTEGER),
                    field("profile", Kind.IDENTIFIER))),
            Map.entry(KMS + "IssueTlsCertificate", List.of(KEY, field("ca", Kind.KEY_NAME),
                    field("ttl_seconds", Kind.INTEGER))),
            Map.entry(KMS + "GetCrl", List.of(KEY)),
            // Never the request, chain or CRL bodies: key, version, and the facts that identify certificates.
            Map.entry(ADMIN + "GetCaCsr", List.of(KEY, VERSION, field("subject", Kind.CERTIFICATE_TEXT))),
            Map.entry(ADMIN + "ImportCaCertificate", List.of(KEY, VERSION)),
            Map.entry(ADMIN + "RevokeCertificate", List.of(field("serial", Kind.CERTIFICATE_TEXT),
                    field("reason", Kind.IDENTIFIER))),
            Map.entry(KMS + "ReEncrypt", List.of(KEY, CONTEXT, field("new_context", Kind.CONTEXT))),
            Map.entry(KMS + "ReEncryptBatch", List.of(KEY, CONTEXT)),
            Map.entry(ADMIN + "CreateKey", List.of(NAME_AS_KEY, field("purpose", Kind.ENUM), field("algorithm", Kind.ENUM),
                    field("rotation_period_seconds", Kind.INTEGER), field("destroy_wait_days", Kind.INTEGER),
                    field("ca_intermediate", Kind.BOOLEAN))),
            Map.entry(ADMIN + "UpdateKeyPolicy", List.of(NAME_AS_KEY, field("rotation_period_seconds", Kind.INTEGER),
                    field("destroy_wait_days", Kind.INTEGER))),
            Map.entry(ADMIN + "RotateKey", List.of(NAME_AS_KEY, field("pending", Kind.BOOLEAN))),
            Map.entry(ADMIN + "PromoteKeyVersion", List.of(NAME_AS_KEY, VERSION)),
            Map.entry(ADMIN + "EnableKeyVersion", List.of(NAME_AS_KEY, VERSION)),
            Map.entry(ADMIN + "DisableKeyVersion", List.of(NAME_AS_KEY, VERSION)),
            Map.entry(ADMIN + "RevokeKeyVersion", List.of(NAME_AS_KEY, VERSION)),
            Map.entry(ADMIN + "ScheduleKeyVersionDestruction", List.of(NAME_AS_KEY, VERSION,
                    field("wait_days", Kind.INTEGER))),
            Map.entry(ADMIN + "CancelKeyVersionDestruction", List.of(NAME_AS_KEY, VERSION)),
            Map.entry(ADMIN + "DescribeKey", List.of(NAME_AS_KEY)),
            // Sessions: ids, blob names, offsets and sizes; never "data" (the material).
            Map.entry(KMS + "OpenSession", List.of(field("ttl_seconds", Kind.INTEGER))),
            Map.entry(KMS + "PutSessionMaterial", List.of(SESSION, MATERIAL, field("offset", Kind.INTEGER),
                    field("final", Kind.BOOLEAN))),
            Map.entry(KMS + "GetSessionMaterial", List.of(SESSION, MATERIAL)),
            Map.entry(KMS + "CloseSession", List.of(SESSION)),
            Map.entry(ADMIN + "RevokeSessions", List.of(field("tenant", "sessions_tenant", Kind.IDENTIFIER))));

    private static final List<Field> KEY_AND_VERSION = List.of(KEY, VERSION);

    /** The reply fields recorded, per method (a failed call has no reply). */
    static final Map<String, List<Field>> REPLIES = Map.ofEntries(
            Map.entry(KMS + "GenerateDataKey", KEY_AND_VERSION),
            Map.entry(KMS + "GenerateDataKeys", KEY_AND_VERSION),
            Map.entry(KMS + "Encrypt", KEY_AND_VERSION),
            Map.entry(KMS + "Decrypt", KEY_AND_VERSION),
            Map.entry(KMS + "Sign", KEY_AND_VERSION),
            Map.entry(KMS + "Verify", List.of(field("valid", Kind.BOOLEAN))),
            Map.entry(KMS + "GetPublicKey", KEY_AND_VERSION),
            Map.entry(KMS + "IssueCertificate", List.of(KEY, VERSION, field("serial", Kind.CERTIFICATE_TEXT),
                    field("subject", Kind.CERTIFICATE_TEXT), field("sans", Kind.CERTIFICATE_TEXTS),
                    field("not_after", Kind.CERTIFICATE_TEXT), field("profile", Kind.IDENTIFIER))),
            Map.entry(KMS + "IssueTlsCertificate", List.of(KEY, VERSION, field("ca", Kind.KEY_NAME),
                    field("ca_version", Kind.INTEGER), field("serial", Kind.CERTIFICATE_TEXT),
                    field("subject", Kind.CERTIFICATE_TEXT), field("sans", Kind.CERTIFICATE_TEXTS),
                    field("not_after", Kind.CERTIFICATE_TEXT), field("profile", Kind.IDENTIFIER))),
            Map.entry(KMS + "WatchRevocations", KEY_AND_VERSION),
            Map.entry(ADMIN + "GetCaCsr", List.of(VERSION)),
            Map.entry(ADMIN + "ImportCaCertificate", List.of(field("subject", Kind.CERTIFICATE_TEXT),
                    field("issuer", Kind.CERTIFICATE_TEXT), field("not_after", Kind.CERTIFICATE_TEXT),
                    field("root", Kind.CERTIFICATE_TEXT))),
            Map.entry(ADMIN + "RevokeCertificate", List.of(KEY, VERSION, field("reason", "revocation_reason",
                    Kind.IDENTIFIER), field("already_revoked", Kind.BOOLEAN))),
            Map.entry(KMS + "ReEncrypt", List.of(KEY, VERSION, field("source_key", Kind.KEY_NAME),
                    field("source_version", Kind.INTEGER), field("rewrapped", Kind.BOOLEAN))),
            Map.entry(ADMIN + "AuditCheckpoint", List.of(field("seq", "checkpoint_seq", Kind.INTEGER))),
            Map.entry(KMS + "OpenSession", List.of(SESSION, field("ttl_seconds", Kind.INTEGER))),
            Map.entry(KMS + "PutSessionMaterial", List.of(field("size", Kind.INTEGER))),
            Map.entry(KMS + "GetSessionMaterial", List.of(field("size", Kind.INTEGER))),
            Map.entry(ADMIN + "RevokeSessions", List.of(field("revoked", Kind.INTEGER))));

    /** Reply facts that are derived rather than copied: batch sizes, the version a rotation made. */
    private static final Map<String, BiConsumer<Map<String, Object>, Map<String, Object>>> DERIVED = Map.of(
            KMS + "DecryptBatch", CallAuditor::batchCounts,
            KMS + "ReEncryptBatch", CallAuditor::batchCounts,
            ADMIN + "CreateKey", CallAuditor::latestVersion,
            ADMIN + "RotateKey", CallAuditor::latestVersion);

    /**
     * What the server knows about one finished call.
     *
     * @param session   the connection's attributes (only the two audit attributes are read)
     * @param reply     the reply's parameters, null for a failed call
     * @param error     the varlink error name of a failed call, null for success
     * @param streaming the record is made as the first of several replies leaves
     */
    public record CallFacts(String user, String group, long connection, Map<String, Object> session, String method,
                            Map<String, Object> parameters, Map<String, Object> reply, String error,
                            boolean streaming) {
    }

    /** True when a call's record may become durable after its reply ({@link #DEFERRED_METHODS}). */
    public static boolean deferrable(CallFacts call) {
        return !call.streaming() && DEFERRED_METHODS.contains(call.method());
    }

    private final StringHasher hasher;

    public CallAuditor(StringHasher hasher) {
        this.hasher = Objects.requireNonNull(hasher, "hasher");
    }

    /** The record's fields (the log adds seq, time, prev and hash). */
    public Map<String, Object> record(CallFacts call) throws AuditUnavailableException {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put(AuditRecords.TYPE, AuditRecords.TYPE_CALL);
        r.put("user", call.user() == null ? "?" : call.user());
        r.put("group", call.group() == null ? "?" : call.group());
        r.put("conn", call.connection());
        if (call.session() != null) {
            identifier(r, "token_id", call.session().get(TOKEN_ID_ATTRIBUTE));
            identifier(r, "tenant", call.session().get(TENANT_ATTRIBUTE));
        }
        String method = call.method() == null ? "" : call.method();
        r.put("method", METHOD.matches(method) ? method : hasher.hmac(method));
        copy(r, PARAMETERS.get(method), call.parameters());
        if (call.error() == null) {
            copy(r, REPLIES.get(method), call.reply());
            var derive = DERIVED.get(method);
            if (derive != null && call.reply() != null) {
                derive.accept(call.reply(), r);
            }
            r.put("outcome", "ok");
        } else {
            r.put("outcome", METHOD.matches(call.error()) ? call.error() : hasher.hmac(call.error()));
        }
        if (call.streaming()) {
            r.put("stream", true);
        }
        return r;
    }

    /**
     * The record of a session that ended other than by a call of its tenant (it expired):
     * its id, tenant and why. Open, close and revocation are recorded as the calls they are.
     */
    public Map<String, Object> sessionEnded(String session, String tenant, String reason)
            throws AuditUnavailableException {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put(AuditRecords.TYPE, AuditRecords.TYPE_SESSION);
        r.put("session", SESSION_ID.matches(session) ? session : hasher.hmac(session));
        identifier(r, "tenant", tenant);
        r.put("event", METHOD.matches(reason) ? reason : hasher.hmac(reason));
        return r;
    }

    /**
     * The record of something the lifecycle sweep did by itself (docs/audit.md, "lifecycle"):
     * an automatic rotation, a destruction whose waiting period ended, an orphan removed.
     */
    public Map<String, Object> lifecycleEvent(String event, String key, int version, String detail)
            throws AuditUnavailableException {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put(AuditRecords.TYPE, AuditRecords.TYPE_LIFECYCLE);
        r.put("event", METHOD.matches(event) ? event : hasher.hmac(event));
        if (key != null) {
            r.put("key", show(Kind.KEY_NAME, key));
            r.put("version", (long) version);
        }
        identifier(r, "detail", detail);
        return r;
    }

    private void identifier(Map<String, Object> r, String name, Object value) throws AuditUnavailableException {
        if (value instanceof String s && !s.isEmpty()) {
            r.put(name, IDENTIFIER.matches(s) ? s : hasher.hmac(s));
        }
    }

    private void copy(Map<String, Object> r, List<Field> fields, Map<String, Object> source)
            throws AuditUnavailableException {
        if (fields == null || source == null) {
            return;
        }
        for (Field f : fields) {
            Object v = source.get(f.from());
            Object shown = v == null ? null : show(f.kind(), v);
            if (shown != null) {
                r.put(f.to(), shown);
            }
        }
    }

    /** The value as the record shows it, or null when it is not of the expected type (the call failed on it). */
    private Object show(Kind kind, Object v) throws AuditUnavailableException {
        return switch (kind) {
            case KEY_NAME -> v instanceof String s ? (NAME.matches(s) ? s : hasher.hmac(s)) : null;
            case ENUM -> v instanceof String s ? (ENUM.matches(s) ? s : hasher.hmac(s)) : null;
            case INTEGER -> v instanceof Long n ? n : v instanceof Integer i ? (Object) (long) i : null;
            case BOOLEAN -> v instanceof Boolean b ? b : null;
            case SESSION -> v instanceof String s ? (SESSION_ID.matches(s) ? s : hasher.hmac(s)) : null;
            case IDENTIFIER -> v instanceof String s ? (IDENTIFIER.matches(s) ? s : hasher.hmac(s)) : null;
            case CERTIFICATE_TEXT -> v instanceof String s ? certificateText(s) : null;
            case CERTIFICATE_TEXTS -> {
                if (!(v instanceof List<?> l)) yield null;
                List<Object> out = new ArrayList<>();
                for (Object o : l) {
                    if (o instanceof String s) out.add(certificateText(s));
                }
                yield out;
            }
            case CONTEXT -> {
                if (!(v instanceof Map<?, ?> m)) yield null;
                Map<String, Object> out = new LinkedHashMap<>();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!(e.getKey() instanceof String k) || !(e.getValue() instanceof String value)) {
                        continue;
                    }
                    out.put(CONTEXT_KEY.matches(k) ? k : hasher.hmac(k), hasher.hmac(value));
                }
                yield out;
            }
        };
    }

    private String certificateText(String s) throws AuditUnavailableException {
        return CERTIFICATE_TEXT.matches(s) ? s : hasher.hmac(s);
    }

    private static void batchCounts(Map<String, Object> reply, Map<String, Object> r) {
        if (reply.get("results") instanceof List<?> results) {
            long failed = results.stream().filter(o -> o instanceof Map<?, ?> m && m.get("error") != null).count();
            r.put("count", (long) results.size());
            r.put("failed", failed);
        }
    }

    /** The highest version in a {@code key} reply: the one a rotation (or a creation) made. */
    private static void latestVersion(Map<String, Object> reply, Map<String, Object> r) {
        if (reply.get("key") instanceof Map<?, ?> key && key.get("versions") instanceof List<?> versions) {
            List<Long> numbers = new ArrayList<>();
            for (Object o : versions) {
                if (o instanceof Map<?, ?> m && m.get("version") instanceof Long n) numbers.add(n);
            }
            numbers.stream().max(Long::compare).ifPresent(n -> r.put("version", n));
        }
    }
}
