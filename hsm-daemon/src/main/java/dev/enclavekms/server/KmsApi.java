package dev.enclavekms.server;

import dev.enclavekms.enclave.EnclaveInfo;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.policy.Decision;
import dev.enclavekms.policy.Identity;
import dev.enclavekms.policy.Methods;
import dev.enclavekms.policy.Policy;
import dev.enclavekms.policy.Request;
import dev.enclavekms.registry.TokenRecord;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.server.varlink.Call;
import dev.enclavekms.server.varlink.Params;
import dev.enclavekms.server.varlink.VarlinkInterface;
import dev.enclavekms.service.Caller;
import dev.enclavekms.service.CryptoService;
import dev.enclavekms.service.KeyAdmin;
import dev.enclavekms.service.KeyHealth;
import dev.enclavekms.service.KeyLifecycle;
import dev.enclavekms.service.KmsError;
import dev.enclavekms.service.TokenAdmin;
import dev.enclavekms.varlink.VarlinkError;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.PublicKey;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The {@code dev.enclavekms.Kms} and {@code dev.enclavekms.Admin} varlink interfaces:
 * parameters in, service call, reply out. No logic of its own beyond translation, and
 * the one authorization point: every call of both interfaces passes {@link #admit}, which
 * names the caller (SO_PEERCRED, or the token the connection presented), decides the
 * method under the policy in force, and hands the handler a {@link Caller} through which
 * the services look up every key the call touches (tenant and grants, docs/policy.md).
 */
public final class KmsApi {
    public static final String KMS = "dev.enclavekms.Kms";
    public static final String ADMIN = "dev.enclavekms.Admin";
    private static final int MAX_KEY_NAME = 128;
    private static final Base64.Encoder B64 = Base64.getEncoder();
    private static final System.Logger LOG = System.getLogger(KmsApi.class.getName());

    private final CryptoService crypto;
    private final KeyAdmin admin;
    private final KeyLifecycle lifecycle;
    private final KeyHealth health;
    private final Supplier<EnclaveInfo> enclaveInfo;
    private final TokenAdmin tokens;
    private final ActivePolicy policy;
    private final Instant started;
    private final String version;
    private AuditMethods audit;
    private dev.enclavekms.service.KeySessions sessions;

    /** Where a connection's {@link Identity} is kept in {@link Call#session()}. */
    public static final String SESSION_IDENTITY = "policy.identity";
    /** The id of the token the connection presented (for the audit log; never the token). */
    public static final String SESSION_TOKEN_ID = "audit.token_id";
    /** The tenant the current call was decided for (for the audit log); absent when none. */
    public static final String SESSION_TENANT = "audit.tenant";

    public KmsApi(CryptoService crypto, KeyAdmin admin, KeyLifecycle lifecycle, KeyHealth health, TokenAdmin tokens,
                  ActivePolicy policy, Supplier<EnclaveInfo> enclaveInfo, Instant started, String version) {
        this.crypto = crypto;
        this.admin = admin;
        this.lifecycle = lifecycle;
        this.health = health;
        this.tokens = tokens;
        this.policy = policy;
        this.enclaveInfo = enclaveInfo;
        this.started = started;
        this.version = version;
    }

    /** The audit log's Admin methods (AuditPublicKey, AuditHmac, AuditCheckpoint); set before {@link #adminInterface()}. */
    public KmsApi withAudit(dev.enclavekms.audit.AuditLog log, dev.enclavekms.audit.AuditKeys keys) {
        this.audit = new AuditMethods(log, keys);
        return this;
    }

    /** Ephemeral key sessions (docs/sessions.md); set before the interfaces are built. */
    public KmsApi withSessions(dev.enclavekms.service.KeySessions sessions) {
        this.sessions = sessions;
        return this;
    }

    private dev.enclavekms.service.CertificateAuthority ca;

    /** The certificate authority (docs/tls.md); set before the interfaces are built. */
    public KmsApi withCertificateAuthority(dev.enclavekms.service.CertificateAuthority ca) {
        this.ca = ca;
        return this;
    }

    private dev.enclavekms.service.CertificateAuthority ca() throws KmsError {
        if (ca == null) throw new KmsError.Internal("this daemon has no certificate authority", null);
        return ca;
    }

    /**
     * A CERT_AUTHORITY key's new versions get their root certificates now, as the key is
     * created or rotated, so GetCaCertificates publishes a new CA before it signs. (Were
     * this to fail, the next GetCaCertificates or IssueCertificate makes it.)
     */
    private KeyRecord withRoots(KeyRecord k) throws KmsError {
        if (ca != null && k.purpose() == dev.enclavekms.registry.Purpose.CERT_AUTHORITY) {
            ca.ensureRoots(k.name());
        }
        return k;
    }

    private dev.enclavekms.service.TlsCertificates tls;

    /** Certificates for TLS keys (docs/tls.md); set before the interfaces are built. */
    public KmsApi withTlsCertificates(dev.enclavekms.service.TlsCertificates tls) {
        this.tls = tls;
        return this;
    }

    private dev.enclavekms.service.KeySessions sessions() throws KmsError {
        if (sessions == null) throw new KmsError.Internal("this daemon has no session store", null);
        return sessions;
    }

    private AuditMethods audit() throws KmsError {
        if (audit == null) throw new KmsError.Internal("this daemon has no audit log", null);
        return audit;
    }

    @FunctionalInterface
    private interface Operation {
        Map<String, Object> run(Call call, Caller caller) throws KmsError, VarlinkError;
    }

    private static VarlinkInterface.Builder builder(String name) {
        return VarlinkInterface.builder(name, idl(name)).errors(name + ".InvalidParameter", name + ".InternalError")
                .strictParameters()
                .offloaded();
    }

    private dev.enclavekms.server.varlink.MethodHandler.Streaming streamingOp(String iface, Operation o) {
        return call -> {
            try {
                return o.run(call, admit(call));
            } catch (KmsError e) {
                throw ErrorMapping.toVarlink(iface, e);
            }
        };
    }

    private dev.enclavekms.server.varlink.MethodHandler op(String iface, Operation o) {
        return call -> {
            try {
                return o.run(call, admit(call));
            } catch (KmsError e) {
                throw ErrorMapping.toVarlink(iface, e);
            }
        };
    }

    /**
     * The authorization point of every Kms and Admin call: who (the connection's identity,
     * its token checked again), under which policy (read once for the whole call), and
     * whether any grant covers the method. Keys are decided later, when the services look
     * them up through the returned caller.
     */
    private Caller admit(Call call) throws KmsError {
        Policy p = policy.current();
        Identity who = identity(call);
        String method = Methods.shortName(call.qualifiedMethod());
        Map<String, Object> session = call.session();
        if (who.authenticated()) {
            try {
                tokens.revalidate(who, p);
            } catch (KmsError.PermissionDenied e) {
                session.remove(SESSION_TENANT);
                throw e;
            }
        }
        Caller caller = Caller.of(p, who, method);
        // Written only when it changes: the connection's attributes are one map shared by its
        // pipelined calls, and a write per call made every other call's read of it miss.
        if (caller.tenant() == null) {
            if (session.containsKey(SESSION_TENANT)) session.remove(SESSION_TENANT);
        } else if (!caller.tenant().equals(session.get(SESSION_TENANT))) {
            session.put(SESSION_TENANT, caller.tenant());
        }
        if (!Methods.has(method, Methods.Trait.OPEN)) {
            caller.admit();
        }
        return caller;
    }

    /** The connection's identity: SO_PEERCRED from its first call on, plus the token it presented, if any. */
    static Identity identity(Call call) {
        Object known = call.session().get(SESSION_IDENTITY);
        if (known instanceof Identity i) {
            return i;
        }
        Identity i = Identity.unix(call.peer().user(), call.peer().group(), UnixAccounts.uid(call.peer().user()),
                UnixAccounts.gid(call.peer().group()), call.peer().connectionId());
        call.session().put(SESSION_IDENTITY, i);
        return i;
    }

    public VarlinkInterface kmsInterface() {
        return builder(KMS)
                .method("GenerateDataKey", op(KMS, this::generateDataKey))
                .method("GenerateDataKeys", op(KMS, this::generateDataKeys))
                .method("Encrypt", op(KMS, this::encrypt))
                .method("Decrypt", op(KMS, this::decrypt))
                .method("DecryptBatch", op(KMS, this::decryptBatch))
                .method("Sign", op(KMS, this::sign))
                .method("Verify", op(KMS, this::verify))
                .method("GetPublicKey", op(KMS, this::getPublicKey))
                .method("GetPublicKeys", op(KMS, this::getPublicKeys))
                .method("GetCaCertificates", op(KMS, this::getCaCertificates))
                .method("IssueCertificate", op(KMS, this::issueCertificate))
                .method("IssueTlsCertificate", op(KMS, this::issueTlsCertificate))
                .method("GetCrl", op(KMS, this::getCrl))
                .method("ReEncrypt", op(KMS, this::reEncrypt))
                .method("ReEncryptBatch", op(KMS, this::reEncryptBatch))
                .method("OpenSession", op(KMS, this::openSession))
                .method("PutSessionMaterial", op(KMS, this::putSessionMaterial))
                // A stream that may outlast the call timeout (hundreds of MiB): on the
                // connection's thread, after one short device call to unwrap the session key.
                .method("GetSessionMaterial", streamingOp(KMS, this::getSessionMaterial))
                .method("CloseSession", op(KMS, (c, caller) -> {
                    sessions().close(caller, sessionId(c.parameters()));
                    return Map.of();
                }))
                .method("Status", op(KMS, (c, caller) -> status(caller)))
                .method("Authenticate", op(KMS, this::authenticate))
                .method("WatchRevocations", watchRevocations())
                // Pipelined calls of these run side by side on one connection (replies in order):
                // data-plane calls that neither change the connection (Authenticate does) nor
                // depend on an earlier call of it (sessions do). Everything else runs alone.
                .concurrent("GenerateDataKey", "GenerateDataKeys", "Encrypt", "Decrypt", "DecryptBatch", "Sign",
                        "Verify", "GetPublicKey", "GetPublicKeys", "GetCaCertificates", "ReEncrypt", "ReEncryptBatch",
                        "Status")
                .build();
    }

    public VarlinkInterface adminInterface() {
        return builder(ADMIN)
                .method("CreateKey", op(ADMIN, this::createKey))
                .method("ListKeys", op(ADMIN, this::listKeys))
                .method("DescribeKey", op(ADMIN, this::describeKey))
                .method("UpdateKeyPolicy", op(ADMIN, this::updateKeyPolicy))
                .method("RotateKey", op(ADMIN, (c, caller) -> {
                    Params p = c.parameters();
                    String name = authorizedKey(caller, p.string("name", MAX_KEY_NAME));
                    return keyReply(withRoots(lifecycle.rotate(name, p.bool("pending", false))));
                }))
                .method("PromoteKeyVersion", op(ADMIN, versionOp(lifecycle::promote)))
                .method("EnableKeyVersion", op(ADMIN, versionOp(lifecycle::enable)))
                .method("DisableKeyVersion", op(ADMIN, versionOp(lifecycle::disable)))
                .method("RevokeKeyVersion", op(ADMIN, versionOp(lifecycle::revoke)))
                .method("ScheduleKeyVersionDestruction", op(ADMIN, (c, caller) -> {
                    Params p = c.parameters();
                    Long days = p.optInteger("wait_days", 0, Integer.MAX_VALUE);
                    String name = authorizedKey(caller, p.string("name", MAX_KEY_NAME));
                    return keyReply(lifecycle.scheduleDestruction(name,
                            (int) p.integer("version", 1, Integer.MAX_VALUE), days == null ? null : days.intValue()));
                }))
                .method("CancelKeyVersionDestruction", op(ADMIN, versionOp(lifecycle::cancelDestruction)))
                .method("CreateToken", op(ADMIN, this::createToken))
                .method("ListTokens", op(ADMIN, (c, caller) -> Map.of("tokens",
                        tokens.list(caller).stream().map(KmsApi::tokenInfo).toList())))
                .method("RevokeToken", op(ADMIN, (c, caller) -> Map.of("info",
                        tokenInfo(tokens.revoke(caller, c.parameters().string("id", 64))))))
                .method("ReloadPolicy", op(ADMIN, (c, caller) -> reloadPolicy()))
                .method("RevokeSessions", op(ADMIN, (c, caller) -> {
                    String tenant = c.parameters().string("tenant", 128);
                    Map<String, Object> r = new LinkedHashMap<>();
                    r.put("tenant", tenant);
                    r.put("revoked", (long) sessions().revoke(caller, tenant));
                    return r;
                }))
                .method("ExplainPolicy", op(ADMIN, this::explainPolicy))
                .method("GetCaCsr", op(ADMIN, this::getCaCsr))
                .method("ImportCaCertificate", op(ADMIN, this::importCaCertificate))
                .method("RevokeCertificate", op(ADMIN, this::revokeCertificate))
                .method("AuditPublicKey", op(ADMIN, (c, caller) -> audit().publicKey()))
                .method("AuditHmac", op(ADMIN, (c, caller) -> audit().hmac(c.parameters())))
                .method("AuditCheckpoint", op(ADMIN, (c, caller) -> audit().checkpoint()))
                .build();
    }

    // ------------------------------------------------------------------ Kms

    /** Events a slow subscriber may fall behind by before its stream is ended (it then clears its cache). */
    static final int MAX_PENDING_REVOCATIONS = 1024;

    /**
     * Kms.WatchRevocations: a first, empty reply once subscribed, then one reply per version
     * of a key the caller sees that becomes unusable. Streams on the connection's thread
     * (see {@link dev.enclavekms.server.varlink.MethodHandler.Streaming}); which keys the
     * caller sees is decided by the policy in force when it subscribed. Ends on shutdown or
     * when the subscriber falls {@link #MAX_PENDING_REVOCATIONS} behind: the client must
     * then assume it missed revocations.
     */
    private dev.enclavekms.server.varlink.MethodHandler.Streaming watchRevocations() {
        return call -> {
            Caller caller;
            try {
                caller = admit(call);
            } catch (KmsError e) {
                throw ErrorMapping.toVarlink(KMS, e);
            }
            var queue = new java.util.concurrent.LinkedBlockingQueue<dev.enclavekms.service.RevocationFeed.Event>(
                    MAX_PENDING_REVOCATIONS);
            var overflowed = new java.util.concurrent.atomic.AtomicBoolean();
            try (var sub = lifecycle.revocations().subscribe(e -> {
                if (caller.sees(e.key()) && !queue.offer(e)) overflowed.set(true);
            })) {
                call.replyMore(Map.of()); // subscribed: nothing revoked from here on is missed
                while (!call.closing() && !overflowed.get()) {
                    var e = queue.poll(1, java.util.concurrent.TimeUnit.SECONDS);
                    if (e == null) continue;
                    Map<String, Object> r = new LinkedHashMap<>();
                    r.put("key", e.key().name());
                    r.put("version", (long) e.version());
                    r.put("state", e.state().name());
                    call.replyMore(r);
                }
                if (overflowed.get()) {
                    LOG.log(System.Logger.Level.WARNING, "a revocation subscriber fell "
                            + MAX_PENDING_REVOCATIONS + " events behind; its stream is ended");
                }
                return Map.of();
            }
        };
    }

    private Map<String, Object> generateDataKey(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        int bytes = (int) (long) orDefault(p.optInteger("bytes", 1, CryptoService.MAX_DATA_KEY_BYTES),
                CryptoService.DEFAULT_DATA_KEY_BYTES);
        CryptoService.GeneratedDataKey dk = crypto.as(caller).generateDataKey(p.string("key", MAX_KEY_NAME), context(p), bytes);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", dk.key());
        r.put("version", (long) dk.version());
        r.put("plaintext", base64AndClose(dk.plaintext()));
        r.put("ciphertext", B64.encodeToString(dk.ciphertext()));
        return r;
    }

    private Map<String, Object> generateDataKeys(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        int count = (int) p.integer("count", 1, CryptoService.MAX_BATCH);
        int bytes = (int) (long) orDefault(p.optInteger("bytes", 1, CryptoService.MAX_DATA_KEY_BYTES),
                CryptoService.DEFAULT_DATA_KEY_BYTES);
        List<CryptoService.GeneratedDataKey> keys = crypto.as(caller).generateDataKeys(p.string("key", MAX_KEY_NAME), context(p),
                bytes, count);
        List<Object> out = new ArrayList<>(keys.size());
        try {
            for (CryptoService.GeneratedDataKey dk : keys) {
                out.add(Map.of("plaintext", base64AndClose(dk.plaintext()), "ciphertext", B64.encodeToString(dk.ciphertext())));
            }
        } finally {
            keys.forEach(k -> k.plaintext().close()); // idempotent for the ones already encoded
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", keys.getFirst().key());
        r.put("version", (long) keys.getFirst().version());
        r.put("keys", out);
        return r;
    }

    private Map<String, Object> encrypt(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        byte[] plaintext = p.bytes("plaintext", CryptoService.MAX_SECRET_BYTES);
        try {
            CryptoService.Encrypted e = crypto.as(caller).encrypt(p.string("key", MAX_KEY_NAME), plaintext, context(p));
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("key", e.key());
            r.put("version", (long) e.version());
            r.put("ciphertext", B64.encodeToString(e.ciphertext()));
            return r;
        } finally {
            Arrays.fill(plaintext, (byte) 0);
        }
    }

    private Map<String, Object> decrypt(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        CryptoService.Decrypted d = crypto.as(caller).decrypt(p.bytes("ciphertext", dev.enclavekms.format.Envelope.MAX_ENVELOPE_BYTES),
                context(p));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", d.key());
        r.put("version", (long) d.version());
        r.put("plaintext", base64AndClose(d.plaintext()));
        return r;
    }

    private Map<String, Object> decryptBatch(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        BatchCiphertexts ciphertexts = BatchCiphertexts.of(p);
        EncryptionContext context = ciphertexts.beforeFailing(() -> context(p));
        EncodedResults results = new EncodedResults(ciphertexts.size());
        // Each chunk is encoded into the reply's text (and its plaintexts wiped) while the
        // device decrypts the next: after the last entry, only the frame is left to write.
        boolean answered = false;
        try {
            ciphertexts.failingOnBadEntry(() -> crypto.as(caller).decryptBatch(ciphertexts, context, chunk -> {
                try {
                    encodeBatch(chunk, results);
                } finally {
                    chunk.forEach(e -> {
                        if (e.result() != null) e.result().plaintext().close();
                    });
                }
            }));
            answered = true;
        } finally {
            if (!answered) results.wipe(); // a failed call's reply is never sent: its plaintexts go too
        }
        return Map.of("results", results);
    }

    private static void encodeBatch(List<CryptoService.BatchEntry> entries, EncodedResults results) {
        for (CryptoService.BatchEntry e : entries) {
            if (e.result() != null) {
                results.addSuccess("plaintext", base64AndClose(e.result().plaintext()), "key", e.result().key(),
                        "version", (long) e.result().version());
            } else {
                results.addFailure(ErrorMapping.shortName(e.error()), e.error().getMessage());
            }
        }
    }

    private Map<String, Object> sign(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        CryptoService.Signed s = crypto.as(caller).sign(p.string("key", MAX_KEY_NAME),
                p.optBytes("message", CryptoService.MAX_MESSAGE_BYTES), p.optBytes("digest", 64));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", s.key());
        r.put("version", (long) s.version());
        r.put("algorithm", s.algorithm().name());
        r.put("signature", B64.encodeToString(s.signature()));
        return r;
    }

    private Map<String, Object> verify(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        boolean valid = crypto.as(caller).verify(p.string("key", MAX_KEY_NAME), (int) p.integer("version", 1, Integer.MAX_VALUE),
                p.bytes("signature", 1024), p.optBytes("message", CryptoService.MAX_MESSAGE_BYTES),
                p.optBytes("digest", 64));
        return Map.of("valid", valid);
    }

    private Map<String, Object> getPublicKey(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        Long v = p.optInteger("version", 1, Integer.MAX_VALUE);
        CryptoService.PublicKeyOf k = crypto.as(caller).publicKey(p.string("key", MAX_KEY_NAME), v == null ? null : v.intValue());
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", k.key());
        r.put("version", (long) k.version());
        r.put("algorithm", k.algorithm().name());
        r.put("pem", pem(k.publicKey()));
        return r;
    }

    private Map<String, Object> status(Caller caller) throws KmsError {
        List<KeyRecord> keys = admin.as(caller).list();
        long versions = keys.stream().mapToLong(k -> k.versions().size()).sum();
        EnclaveInfo info = enclaveInfo.get();
        Map<String, Object> enclave = new LinkedHashMap<>();
        enclave.put("kind", info.kind());
        enclave.put("label", info.label());
        enclave.put("manufacturer", info.manufacturer());
        enclave.put("model", info.model());
        enclave.put("serial", info.serial());
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("version", version);
        r.put("uptime_seconds", Duration.between(started, Instant.now()).toSeconds());
        r.put("enclave", enclave);
        r.put("keys", (long) keys.size());
        r.put("key_versions", versions);
        r.put("orphans", health.orphans());
        r.put("missing", health.missing());
        return r;
    }

    // ------------------------------------------------------------------ sessions

    /** Longer than any id: a malformed one still gets SessionNotFound, like a missing one. */
    private static String sessionId(Params p) throws VarlinkError {
        return p.string("session", 256);
    }

    private Map<String, Object> openSession(Call c, Caller caller) throws KmsError, VarlinkError {
        Long ttl = c.parameters().optInteger("ttl_seconds", 1, Integer.MAX_VALUE);
        dev.enclavekms.service.KeySessions.Opened o = sessions().open(caller, ttl == null ? null : Duration.ofSeconds(ttl));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("session", o.id());
        r.put("tenant", o.tenant());
        r.put("expires", o.expires().toString());
        r.put("ttl_seconds", o.ttlSeconds());
        return r;
    }

    private Map<String, Object> putSessionMaterial(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        String id = sessionId(p);
        String name = p.string("name", dev.enclavekms.service.KeySessions.MAX_NAME);
        long offset = p.integer("offset", 0, Long.MAX_VALUE);
        boolean last = p.bool("final", false);
        byte[] data = p.bytes("data", dev.enclavekms.service.KeySessions.MAX_CHUNK_BYTES);
        try {
            dev.enclavekms.service.KeySessions.Stored s = sessions().put(caller, id, name, data, offset, last);
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("name", s.name());
            r.put("size", s.size());
            r.put("final", s.sealed());
            return r;
        } finally {
            Arrays.fill(data, (byte) 0);
        }
    }

    /**
     * One reply per stored chunk, each decrypted just before it is sent: memory stays at a
     * chunk or two whatever the blob's size. The last chunk is the final reply.
     */
    private Map<String, Object> getSessionMaterial(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        String name = p.string("name", dev.enclavekms.service.KeySessions.MAX_NAME);
        try (dev.enclavekms.service.KeySessions.MaterialReader reader = sessions().read(caller, sessionId(p), name)) {
            while (true) {
                long offset = reader.offset();
                byte[] chunk = reader.next();
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("name", name);
                r.put("data", B64.encodeToString(chunk));
                r.put("offset", offset);
                r.put("size", reader.size());
                Arrays.fill(chunk, (byte) 0);
                if (!reader.hasNext()) {
                    return r;
                }
                try {
                    c.replyMore(r);
                } catch (IOException e) {
                    throw new KmsError.Internal("the caller went away during GetSessionMaterial", e);
                }
            }
        }
    }

    // ------------------------------------------------------------------ Admin

    private Map<String, Object> createKey(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        Purpose purpose = enumValue(p, "purpose", Purpose.class, true);
        KeyAlgorithm algorithm = enumValue(p, "algorithm", KeyAlgorithm.class, false);
        List<String> required = new ArrayList<>();
        if (p.has("required_context")) {
            for (Object o : p.list("required_context", KeyAdmin.MAX_REQUIRED_CONTEXT)) {
                if (!(o instanceof String s)) throw p.invalid("required_context", "entries must be strings");
                required.add(s);
            }
        }
        Long period = p.optInteger("rotation_period_seconds", 1, 100L * 365 * 86400);
        Long days = p.optInteger("destroy_wait_days", 0, Integer.MAX_VALUE);
        boolean intermediate = p.bool("ca_intermediate", false);
        if (intermediate && purpose != Purpose.CERT_AUTHORITY) {
            throw p.invalid("ca_intermediate", "only CERT_AUTHORITY keys are certificate authorities");
        }
        if (intermediate) ca(); // refused before the key exists, not after
        KeyRecord k = admin.as(caller).createKey(p.string("name", MAX_KEY_NAME), purpose, algorithm,
                p.optString("description", 1024), required, period == null ? null : java.time.Duration.ofSeconds(period),
                days == null ? null : days.intValue());
        if (intermediate) {
            // Marked before withRoots and before the reply: no self-signed root is made for it.
            ca.markIntermediate(k);
        }
        return Map.of("key", describe(withRoots(k)));
    }

    private Map<String, Object> listKeys(Call c, Caller caller) throws KmsError {
        List<Object> out = new ArrayList<>();
        for (KeyRecord k : admin.as(caller).list()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", k.name());
            m.put("tenant", k.tenant());
            m.put("purpose", k.purpose().name());
            m.put("algorithm", k.algorithm().name());
            m.put("primary_version", (long) k.primaryVersion());
            m.put("versions", (long) k.versions().size());
            out.add(m);
        }
        return Map.of("keys", out);
    }

    private Map<String, Object> describeKey(Call c, Caller caller) throws KmsError, VarlinkError {
        return Map.of("key", describe(admin.as(caller).describe(c.parameters().string("name", MAX_KEY_NAME))));
    }

    /**
     * An Admin method on one key: the key as the caller may see it under its grants, or
     * KeyNotFound / PermissionDenied. Keys never change tenant and names are never reused,
     * so the lifecycle change that follows acts on the key decided here.
     */
    private String authorizedKey(Caller caller, String name) throws KmsError {
        return admin.as(caller).describe(name).name();
    }

    private Map<String, Object> describe(KeyRecord k) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", k.name());
        m.put("tenant", k.tenant());
        m.put("purpose", k.purpose().name());
        m.put("algorithm", k.algorithm().name());
        m.put("description", k.description());
        m.put("created", k.created().toString());
        m.put("primary_version", (long) k.primaryVersion());
        m.put("required_context", k.requiredContext());
        if (k.rotationPeriod() != null) {
            m.put("rotation_period_seconds", k.rotationPeriod().toSeconds());
            m.put("next_rotation", k.nextRotation().toString());
        }
        m.put("destroy_wait_days", (long) k.destroyWaitDays());
        List<Object> versions = new ArrayList<>();
        for (KeyVersion v : k.versions()) {
            Map<String, Object> vm = new LinkedHashMap<>();
            vm.put("version", (long) v.version());
            vm.put("state", v.state().name());
            vm.put("created", v.created().toString());
            vm.put("state_changed", v.stateChanged().toString());
            if (v.destroyAt() != null) {
                vm.put("destroy_at", v.destroyAt().toString());
            }
            vm.put("encryptions", v.encryptionsReserved());
            vm.put("object_id", v.objectId().hex());
            if (k.purpose().tls() && v.state() != dev.enclavekms.registry.VersionState.DESTROYED) {
                vm.put("pkcs11_uri", dev.enclavekms.service.TlsCertificates.pkcs11Uri(enclaveInfo.get().label(),
                        v.objectId(), KeyLifecycle.label(k.name(), v.version(), v.objectId())));
            }
            versions.add(vm);
        }
        m.put("versions", versions);
        return m;
    }

    @FunctionalInterface
    private interface VersionChange {
        KeyRecord apply(String name, int version) throws KmsError;
    }

    /** An Admin method that changes one version: admin check, (name, version), the key in reply. */
    private Operation versionOp(VersionChange change) {
        return (c, caller) -> {
            Params p = c.parameters();
            String name = authorizedKey(caller, p.string("name", MAX_KEY_NAME));
            return keyReply(change.apply(name, (int) p.integer("version", 1, Integer.MAX_VALUE)));
        };
    }

    private Map<String, Object> keyReply(KeyRecord k) {
        return Map.of("key", describe(k));
    }

    private Map<String, Object> updateKeyPolicy(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        String name = p.string("name", MAX_KEY_NAME);
        KeyRecord current = admin.as(caller).describe(name);
        Long period = p.optInteger("rotation_period_seconds", 0, 100L * 365 * 86400);
        java.time.Duration rotation = period == null ? current.rotationPeriod()
                : period == 0 ? null : java.time.Duration.ofSeconds(period);
        Long days = p.optInteger("destroy_wait_days", 0, Integer.MAX_VALUE);
        return keyReply(lifecycle.updatePolicy(name, rotation, days == null ? null : days.intValue()));
    }

    private Map<String, Object> getPublicKeys(Call c, Caller caller) throws KmsError, VarlinkError {
        String name = c.parameters().string("key", MAX_KEY_NAME);
        List<Object> versions = new ArrayList<>();
        for (CryptoService.VersionKey v : crypto.as(caller).publicKeys(name)) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("version", (long) v.version());
            m.put("state", v.state().name());
            m.put("primary", v.primary());
            m.put("pem", pem(v.publicKey()));
            versions.add(m);
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", name);
        r.put("algorithm", crypto.as(caller).signingKeyRecord(name).algorithm().name());
        r.put("versions", versions);
        return r;
    }

    private Map<String, Object> getCaCertificates(Call c, Caller caller) throws KmsError, VarlinkError {
        String name = c.parameters().string("key", MAX_KEY_NAME);
        List<Object> certs = new ArrayList<>();
        StringBuilder all = new StringBuilder();
        for (var v : ca().as(caller).caCertificates(name)) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("version", (long) v.version());
            m.put("state", v.state().name());
            m.put("primary", v.primary());
            m.put("pem", v.pem());
            m.put("intermediate", v.intermediate());
            m.put("chain", List.copyOf(v.chain()));
            m.put("root", v.root());
            certs.add(m);
            for (String cert : v.chain()) {
                if (all.indexOf(cert) < 0) all.append(cert); // a shared root once
            }
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", name);
        r.put("algorithm", admin.as(caller).describe(name).algorithm().name());
        r.put("certificates", certs);
        r.put("pem", all.toString());
        r.put("awaiting_certificate", ca().as(caller).awaitingCertificate(name).stream().map(Integer::longValue)
                .map(Object.class::cast).toList());
        return r;
    }

    private Map<String, Object> issueCertificate(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        String key = p.string("key", MAX_KEY_NAME);
        byte[] csr = p.string("csr", dev.enclavekms.service.CertificateAuthority.MAX_CSR_BYTES)
                .getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        Long ttl = p.optInteger("ttl_seconds", 1, Integer.MAX_VALUE);
        var profile = dev.enclavekms.service.CertificateAuthority.Profile.parse(p.optString("profile", 16));
        var issued = ca().as(caller).issue(key, csr, ttl == null ? null : java.time.Duration.ofSeconds(ttl), profile);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", issued.key());
        r.put("version", (long) issued.version());
        putCertificate(r, issued);
        return r;
    }

    /** The fields IssueCertificate and IssueTlsCertificate share, in the IDL's order. */
    private static void putCertificate(Map<String, Object> r, dev.enclavekms.service.CertificateAuthority.Issued issued) {
        r.put("certificate", issued.certificatePem());
        r.put("ca_certificate", issued.caCertificatePem());
        r.put("ca_chain", issued.caChainPem());
        r.put("serial", issued.serial().toString(16));
        r.put("subject", issued.subject());
        r.put("sans", List.copyOf(issued.sans()));
        r.put("not_before", issued.notBefore().toString());
        r.put("not_after", issued.notAfter().toString());
        r.put("profile", issued.profile().name().toLowerCase(java.util.Locale.ROOT));
    }

    private Map<String, Object> issueTlsCertificate(Call c, Caller caller) throws KmsError, VarlinkError {
        if (tls == null) throw new KmsError.Internal("this daemon issues no TLS certificates", null);
        Params p = c.parameters();
        List<String> sans = new ArrayList<>();
        if (p.has("sans")) {
            for (Object o : p.list("sans", dev.enclavekms.service.TlsCertificates.MAX_SANS)) {
                if (!(o instanceof String s)) throw p.invalid("sans", "entries must be strings");
                sans.add(s);
            }
        }
        Long ttl = p.optInteger("ttl_seconds", 1, Integer.MAX_VALUE);
        var t = tls.as(caller).issue(ca(), p.string("key", MAX_KEY_NAME), p.string("ca", MAX_KEY_NAME),
                p.optString("common_name", 256), sans, ttl == null ? null : java.time.Duration.ofSeconds(ttl),
                enclaveInfo.get().label());
        var issued = t.certificate();
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", t.key());
        r.put("version", (long) t.version());
        r.put("ca", issued.key());
        r.put("ca_version", (long) issued.version());
        putCertificate(r, issued);
        r.put("alias", t.alias());
        r.put("pkcs11_uri", t.pkcs11Uri());
        return r;
    }

    private Map<String, Object> getCrl(Call c, Caller caller) throws KmsError, VarlinkError {
        String name = c.parameters().string("key", MAX_KEY_NAME);
        List<Object> out = new ArrayList<>();
        StringBuilder all = new StringBuilder();
        for (var crl : ca().as(caller).crls(name)) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("version", (long) crl.version());
            m.put("number", crl.number());
            m.put("this_update", crl.thisUpdate().toString());
            m.put("next_update", crl.nextUpdate().toString());
            m.put("revoked", (long) crl.revoked());
            m.put("pem", crl.pem());
            out.add(m);
            all.append(crl.pem());
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", name);
        r.put("crls", out);
        r.put("pem", all.toString());
        return r;
    }

    // Intermediate CAs and revocation (Admin; docs/tls.md).

    private Map<String, Object> getCaCsr(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        String name = p.string("key", MAX_KEY_NAME);
        Long version = p.optInteger("version", 1, Integer.MAX_VALUE);
        var ca = ca().as(caller);
        int v = version != null ? version.intValue() : admin.as(caller).describe(name).latestVersion();
        var req = ca.caCsr(name, v, p.optString("subject", 1024));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", req.key());
        r.put("version", (long) req.version());
        r.put("subject", req.subject());
        r.put("csr", req.csrPem());
        return r;
    }

    private Map<String, Object> importCaCertificate(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        String name = p.string("key", MAX_KEY_NAME);
        int version = (int) p.integer("version", 1, Integer.MAX_VALUE);
        var cert = ca().as(caller).importCaCertificate(name, version,
                p.string("certificate_chain", 64 * 1024));
        var first = dev.enclavekms.service.CertificateAuthority.facts(cert.pem());
        var root = dev.enclavekms.service.CertificateAuthority.facts(cert.root());
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", name);
        r.put("version", (long) cert.version());
        r.put("subject", first.subject());
        r.put("issuer", first.issuer());
        r.put("not_after", first.notAfter().toString());
        r.put("root", root.subject());
        return r;
    }

    private Map<String, Object> revokeCertificate(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        String serial = p.string("serial", 200);
        String reasonText = p.optString("reason", 64);
        var reason = reasonText == null ? dev.enclavekms.registry.RevocationReason.UNSPECIFIED
                : dev.enclavekms.registry.RevocationReason.parse(reasonText);
        if (reason == null) {
            throw p.invalid("reason", "'" + reasonText + "' is not a revocation reason; one of "
                    + dev.enclavekms.registry.RevocationReason.names());
        }
        var rev = ca().as(caller).revoke(serial, reason);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("serial", rev.serial());
        r.put("key", rev.key());
        r.put("version", (long) rev.version());
        r.put("reason", rev.reason().rfcName());
        r.put("revoked", rev.revoked().toString());
        r.put("not_after", rev.notAfter().toString());
        r.put("already_revoked", rev.alreadyRevoked());
        return r;
    }

    private Map<String, Object> reEncrypt(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        Map<String, String> newContext = p.optStringMap("new_context", EncryptionContext.MAX_ENTRIES,
                EncryptionContext.MAX_LENGTH);
        CryptoService.ReEncrypted r = crypto.as(caller).reEncrypt(
                p.bytes("ciphertext", dev.enclavekms.format.Envelope.MAX_ENVELOPE_BYTES), context(p),
                p.optString("key", MAX_KEY_NAME), newContext == null ? null : contextOf(p, "new_context", newContext),
                true); // REVOKED sources only through a grant with reencrypt_revoked (the Caller decides)
        return reEncrypted(r);
    }

    private static Map<String, Object> reEncrypted(CryptoService.ReEncrypted r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("key", r.key());
        m.put("version", (long) r.version());
        m.put("source_key", r.sourceKey());
        m.put("source_version", (long) r.sourceVersion());
        m.put("rewrapped", r.rewrapped());
        m.put("ciphertext", B64.encodeToString(r.ciphertext()));
        return m;
    }

    private Map<String, Object> reEncryptBatch(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        List<byte[]> ciphertexts = ciphertexts(p);
        List<Object> results = new ArrayList<>(ciphertexts.size());
        for (CryptoService.ReEncryptEntry e : crypto.as(caller).reEncryptBatch(ciphertexts, context(p),
                p.optString("key", MAX_KEY_NAME), true)) { // REVOKED sources as for ReEncrypt
            if (e.result() != null) {
                results.add(reEncrypted(e.result()));
            } else {
                results.add(Map.of("error", ErrorMapping.shortName(e.error()), "message", e.error().getMessage()));
            }
        }
        return Map.of("results", results);
    }

    // ------------------------------------------------------------------ identity, tokens, policy

    private Map<String, Object> authenticate(Call c, Caller caller) throws KmsError, VarlinkError {
        Identity who = identity(c);
        if (who.authenticated()) {
            throw new KmsError.PermissionDenied("this connection already authenticated as token:" + who.tokenIdentity()
                    + "; a connection presents one token: open a new connection for another");
        }
        String presented = c.parameters().string("token", 256);
        Policy p = policy.current();
        TokenRecord t;
        try {
            t = tokens.authenticate(presented, p);
        } catch (KmsError.PermissionDenied e) {
            LOG.log(System.Logger.Level.WARNING, "authentication refused on connection " + who.connectionId() + " of "
                    + who.describe() + ": " + e.getMessage());
            throw e;
        }
        Identity now = who.withToken(t.identity(), t.id());
        c.session().put(SESSION_IDENTITY, now);
        c.session().put(SESSION_TOKEN_ID, t.id());
        c.session().put(SESSION_TENANT, t.tenant());
        LOG.log(System.Logger.Level.INFO, "connection " + who.connectionId() + " of " + who.describe()
                + " authenticated as token:" + t.identity() + " (token " + t.id() + ", tenant " + t.tenant() + ")");
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("identity", "token:" + t.identity());
        r.put("tenant", t.tenant());
        r.put("token_id", t.id());
        r.put("expires", t.expires().toString());
        return r;
    }

    private Map<String, Object> createToken(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        Long ttl = p.optInteger("ttl_seconds", 1, Integer.MAX_VALUE);
        TokenAdmin.Issued issued = tokens.create(caller, p.string("identity", 64),
                ttl == null ? null : Duration.ofSeconds(ttl));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("token", issued.token());
        r.put("info", tokenInfo(issued.record()));
        return r;
    }

    private static Map<String, Object> tokenInfo(TokenRecord t) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", t.id());
        m.put("identity", t.identity());
        m.put("tenant", t.tenant());
        m.put("created", t.created().toString());
        m.put("expires", t.expires().toString());
        if (t.revoked() != null) m.put("revoked", t.revoked().toString());
        return m;
    }

    private Map<String, Object> reloadPolicy() throws KmsError {
        ActivePolicy.Reload r = policy.reload();
        if (!r.loaded()) {
            throw new KmsError.PolicyInvalid(r.problems());
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("source", r.policy().source());
        m.put("sha256", r.policy().sha256());
        m.put("tenants", (long) r.policy().tenants().size());
        m.put("grants", (long) r.policy().grantCount());
        m.put("warnings", r.warnings());
        return m;
    }

    private Map<String, Object> explainPolicy(Call c, Caller caller) throws KmsError, VarlinkError {
        Params p = c.parameters();
        Identity subject;
        try {
            subject = Identity.parse(p.string("identity", 200));
        } catch (IllegalArgumentException e) {
            throw p.invalid("identity", e.getMessage());
        }
        String method = p.string("method", 64);
        if (!Methods.known(method)) {
            throw p.invalid("method", "unknown method '" + method + "'; write methods as policies do, e.g. Kms.Decrypt");
        }
        dev.enclavekms.registry.Purpose purpose = enumValue(p, "purpose", dev.enclavekms.registry.Purpose.class, false);
        Map<String, String> context = p.optStringMap("context", EncryptionContext.MAX_ENTRIES, EncryptionContext.MAX_LENGTH);
        String key = p.optString("key", MAX_KEY_NAME);
        Policy pol = caller.policy();
        Decision mine = pol.decide(caller.identity(), Request.method(caller.method()));
        String subjectTenant = pol.tenantOf(subject);
        if (!mine.allTenants() && (subjectTenant == null || !subjectTenant.equals(caller.tenant()))) {
            throw new KmsError.PermissionDenied(caller.identity().describe() + " (tenant " + caller.tenant()
                    + ") may explain only identities of its own tenant; " + subject.principals()
                    + " is not one (explaining others needs all_tenants: true)");
        }
        Request r = key == null ? Request.method(method) : Request.key(method, key, purpose, null,
                context == null ? (Methods.has(method, Methods.Trait.CONTEXT) ? Map.of() : null) : context);
        Decision d = pol.decide(subject, r);
        List<String> lines = pol.explain(subject, r);
        boolean allowed = lines.getLast().startsWith("result:   ALLOW");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("allowed", allowed);
        if (d.tenant() != null) out.put("tenant", d.tenant());
        if (allowed && d.grant() != null) out.put("grant", d.grant().name());
        out.put("explanation", lines);
        return out;
    }

    private static List<byte[]> ciphertexts(Params p) throws VarlinkError {
        List<?> items = p.list("ciphertexts", CryptoService.MAX_BATCH);
        List<byte[]> out = new ArrayList<>(items.size());
        for (int i = 0; i < items.size(); i++) {
            if (!(items.get(i) instanceof String s)) {
                throw p.invalid("ciphertexts", "entry " + i + " must be a base64 string");
            }
            out.add(p.decodeBase64("ciphertexts[" + i + "]", s, dev.enclavekms.format.Envelope.MAX_ENVELOPE_BYTES));
        }
        return out;
    }

    // ------------------------------------------------------------------ helpers

    private static EncryptionContext context(Params p) throws VarlinkError {
        return contextOf(p, "context",
                p.optStringMap("context", EncryptionContext.MAX_ENTRIES, EncryptionContext.MAX_LENGTH));
    }

    private static EncryptionContext contextOf(Params p, String name, Map<String, String> m) throws VarlinkError {
        try {
            return EncryptionContext.of(m);
        } catch (IllegalArgumentException e) {
            throw p.invalid(name, e.getMessage());
        }
    }

    private static <E extends Enum<E>> E enumValue(Params p, String name, Class<E> type, boolean required)
            throws VarlinkError {
        String s = required ? p.string(name, 64) : p.optString(name, 64);
        if (s == null) return null;
        try {
            return Enum.valueOf(type, s);
        } catch (IllegalArgumentException e) {
            throw p.invalid(name, "must be one of " + Arrays.toString(type.getEnumConstants()));
        }
    }

    private static Long orDefault(Long v, long d) {
        return v == null ? d : v;
    }

    /** Encodes a secret for the reply and wipes our copies; the JSON string is the one that remains. */
    private static String base64AndClose(SecretBytes s) {
        byte[] b = s.reveal();
        try {
            return B64.encodeToString(b);
        } finally {
            Arrays.fill(b, (byte) 0);
            s.close();
        }
    }

    static String pem(PublicKey key) {
        String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(key.getEncoded());
        return "-----BEGIN PUBLIC KEY-----\n" + body + "\n-----END PUBLIC KEY-----\n";
    }

    static String idl(String iface) {
        try (InputStream in = KmsApi.class.getResourceAsStream("/varlink/" + iface + ".varlink")) {
            if (in == null) throw new IllegalStateException("missing IDL for " + iface);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read IDL for " + iface, e);
        }
    }
}
