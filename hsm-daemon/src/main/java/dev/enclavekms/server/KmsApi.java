package dev.enclavekms.server;

import dev.enclavekms.enclave.EnclaveInfo;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.server.varlink.Call;
import dev.enclavekms.server.varlink.Params;
import dev.enclavekms.server.varlink.VarlinkInterface;
import dev.enclavekms.service.CryptoService;
import dev.enclavekms.service.KeyAdmin;
import dev.enclavekms.service.KeyHealth;
import dev.enclavekms.service.KeyLifecycle;
import dev.enclavekms.service.KmsError;
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
 * parameters in, service call, reply out. No logic of its own beyond translation.
 */
public final class KmsApi {
    public static final String KMS = "dev.enclavekms.Kms";
    public static final String ADMIN = "dev.enclavekms.Admin";
    private static final int MAX_KEY_NAME = 128;
    private static final Base64.Encoder B64 = Base64.getEncoder();

    private final CryptoService crypto;
    private final KeyAdmin admin;
    private final KeyLifecycle lifecycle;
    private final KeyHealth health;
    private final Supplier<EnclaveInfo> enclaveInfo;
    private final Authorizer authorizer;
    private final Instant started;
    private final String version;
    private AuditMethods audit;

    public KmsApi(CryptoService crypto, KeyAdmin admin, KeyLifecycle lifecycle, KeyHealth health,
                  Supplier<EnclaveInfo> enclaveInfo,
                  String daemonUser, Instant started, String version) {
        this.crypto = crypto;
        this.admin = admin;
        this.lifecycle = lifecycle;
        this.health = health;
        this.enclaveInfo = enclaveInfo;
        this.authorizer = new Authorizer(daemonUser);
        this.started = started;
        this.version = version;
    }

    /** The audit log's Admin methods (AuditPublicKey, AuditHmac, AuditCheckpoint); set before {@link #adminInterface()}. */
    public KmsApi withAudit(dev.enclavekms.audit.AuditLog log, dev.enclavekms.audit.AuditKeys keys) {
        this.audit = new AuditMethods(log, keys);
        return this;
    }

    private AuditMethods audit() throws KmsError {
        if (audit == null) throw new KmsError.Internal("this daemon has no audit log", null);
        return audit;
    }

    @FunctionalInterface
    private interface Operation {
        Map<String, Object> run(Call call) throws KmsError, VarlinkError;
    }

    private static VarlinkInterface.Builder builder(String name) {
        return VarlinkInterface.builder(name, idl(name)).errors(name + ".InvalidParameter", name + ".InternalError")
                .strictParameters()
                .offloaded();
    }

    private static dev.enclavekms.server.varlink.MethodHandler op(String iface, Operation o) {
        return call -> {
            try {
                return o.run(call);
            } catch (KmsError e) {
                throw ErrorMapping.toVarlink(iface, e);
            }
        };
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
                .method("ReEncrypt", op(KMS, this::reEncrypt))
                .method("ReEncryptBatch", op(KMS, this::reEncryptBatch))
                .method("Status", op(KMS, c -> status()))
                .build();
    }

    public VarlinkInterface adminInterface() {
        return builder(ADMIN)
                .method("CreateKey", op(ADMIN, this::createKey))
                .method("ListKeys", op(ADMIN, this::listKeys))
                .method("DescribeKey", op(ADMIN, this::describeKey))
                .method("UpdateKeyPolicy", op(ADMIN, this::updateKeyPolicy))
                .method("RotateKey", op(ADMIN, c -> {
                    authorizer.requireAdmin(c.peer());
                    Params p = c.parameters();
                    return keyReply(lifecycle.rotate(p.string("name", MAX_KEY_NAME), p.bool("pending", false)));
                }))
                .method("PromoteKeyVersion", op(ADMIN, versionOp(lifecycle::promote)))
                .method("EnableKeyVersion", op(ADMIN, versionOp(lifecycle::enable)))
                .method("DisableKeyVersion", op(ADMIN, versionOp(lifecycle::disable)))
                .method("RevokeKeyVersion", op(ADMIN, versionOp(lifecycle::revoke)))
                .method("ScheduleKeyVersionDestruction", op(ADMIN, c -> {
                    authorizer.requireAdmin(c.peer());
                    Params p = c.parameters();
                    Long days = p.optInteger("wait_days", 0, Integer.MAX_VALUE);
                    return keyReply(lifecycle.scheduleDestruction(p.string("name", MAX_KEY_NAME),
                            (int) p.integer("version", 1, Integer.MAX_VALUE), days == null ? null : days.intValue()));
                }))
                .method("CancelKeyVersionDestruction", op(ADMIN, versionOp(lifecycle::cancelDestruction)))
                .method("AuditPublicKey", op(ADMIN, c -> {
                    authorizer.requireAdmin(c.peer());
                    return audit().publicKey();
                }))
                .method("AuditHmac", op(ADMIN, c -> {
                    authorizer.requireAdmin(c.peer());
                    return audit().hmac(c.parameters());
                }))
                .method("AuditCheckpoint", op(ADMIN, c -> {
                    authorizer.requireAdmin(c.peer());
                    return audit().checkpoint();
                }))
                .build();
    }

    // ------------------------------------------------------------------ Kms

    private Map<String, Object> generateDataKey(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        int bytes = (int) (long) orDefault(p.optInteger("bytes", 1, CryptoService.MAX_DATA_KEY_BYTES),
                CryptoService.DEFAULT_DATA_KEY_BYTES);
        CryptoService.GeneratedDataKey dk = crypto.generateDataKey(p.string("key", MAX_KEY_NAME), context(p), bytes);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", dk.key());
        r.put("version", (long) dk.version());
        r.put("plaintext", base64AndClose(dk.plaintext()));
        r.put("ciphertext", B64.encodeToString(dk.ciphertext()));
        return r;
    }

    private Map<String, Object> generateDataKeys(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        int count = (int) p.integer("count", 1, CryptoService.MAX_BATCH);
        int bytes = (int) (long) orDefault(p.optInteger("bytes", 1, CryptoService.MAX_DATA_KEY_BYTES),
                CryptoService.DEFAULT_DATA_KEY_BYTES);
        List<CryptoService.GeneratedDataKey> keys = crypto.generateDataKeys(p.string("key", MAX_KEY_NAME), context(p),
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

    private Map<String, Object> encrypt(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        byte[] plaintext = p.bytes("plaintext", CryptoService.MAX_SECRET_BYTES);
        try {
            CryptoService.Encrypted e = crypto.encrypt(p.string("key", MAX_KEY_NAME), plaintext, context(p));
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("key", e.key());
            r.put("version", (long) e.version());
            r.put("ciphertext", B64.encodeToString(e.ciphertext()));
            return r;
        } finally {
            Arrays.fill(plaintext, (byte) 0);
        }
    }

    private Map<String, Object> decrypt(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        CryptoService.Decrypted d = crypto.decrypt(p.bytes("ciphertext", dev.enclavekms.format.Envelope.MAX_ENVELOPE_BYTES),
                context(p));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", d.key());
        r.put("version", (long) d.version());
        r.put("plaintext", base64AndClose(d.plaintext()));
        return r;
    }

    private Map<String, Object> decryptBatch(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        List<byte[]> ciphertexts = ciphertexts(p);
        List<Object> results = new ArrayList<>(ciphertexts.size());
        List<CryptoService.BatchEntry> entries = crypto.decryptBatch(ciphertexts, context(p));
        try {
            encodeBatch(entries, results);
        } finally {
            entries.forEach(e -> {
                if (e.result() != null) e.result().plaintext().close();
            });
        }
        return Map.of("results", results);
    }

    private static void encodeBatch(List<CryptoService.BatchEntry> entries, List<Object> results) {
        for (CryptoService.BatchEntry e : entries) {
            Map<String, Object> r = new LinkedHashMap<>();
            if (e.result() != null) {
                r.put("plaintext", base64AndClose(e.result().plaintext()));
                r.put("key", e.result().key());
                r.put("version", (long) e.result().version());
            } else {
                r.put("error", ErrorMapping.shortName(e.error()));
                r.put("message", e.error().getMessage());
            }
            results.add(r);
        }
    }

    private Map<String, Object> sign(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        CryptoService.Signed s = crypto.sign(p.string("key", MAX_KEY_NAME),
                p.optBytes("message", CryptoService.MAX_MESSAGE_BYTES), p.optBytes("digest", 64));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", s.key());
        r.put("version", (long) s.version());
        r.put("algorithm", s.algorithm().name());
        r.put("signature", B64.encodeToString(s.signature()));
        return r;
    }

    private Map<String, Object> verify(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        boolean valid = crypto.verify(p.string("key", MAX_KEY_NAME), (int) p.integer("version", 1, Integer.MAX_VALUE),
                p.bytes("signature", 1024), p.optBytes("message", CryptoService.MAX_MESSAGE_BYTES),
                p.optBytes("digest", 64));
        return Map.of("valid", valid);
    }

    private Map<String, Object> getPublicKey(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        Long v = p.optInteger("version", 1, Integer.MAX_VALUE);
        CryptoService.PublicKeyOf k = crypto.publicKey(p.string("key", MAX_KEY_NAME), v == null ? null : v.intValue());
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", k.key());
        r.put("version", (long) k.version());
        r.put("algorithm", k.algorithm().name());
        r.put("pem", pem(k.publicKey()));
        return r;
    }

    private Map<String, Object> status() throws KmsError {
        List<KeyRecord> keys = admin.list();
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

    // ------------------------------------------------------------------ Admin

    private Map<String, Object> createKey(Call c) throws KmsError, VarlinkError {
        authorizer.requireAdmin(c.peer());
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
        KeyRecord k = admin.createKey(p.string("name", MAX_KEY_NAME), purpose, algorithm,
                p.optString("description", 1024), required, period == null ? null : java.time.Duration.ofSeconds(period),
                days == null ? null : days.intValue());
        return Map.of("key", describe(k));
    }

    private Map<String, Object> listKeys(Call c) throws KmsError {
        authorizer.requireAdmin(c.peer());
        List<Object> out = new ArrayList<>();
        for (KeyRecord k : admin.list()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", k.name());
            m.put("purpose", k.purpose().name());
            m.put("algorithm", k.algorithm().name());
            m.put("primary_version", (long) k.primaryVersion());
            m.put("versions", (long) k.versions().size());
            out.add(m);
        }
        return Map.of("keys", out);
    }

    private Map<String, Object> describeKey(Call c) throws KmsError, VarlinkError {
        authorizer.requireAdmin(c.peer());
        return Map.of("key", describe(admin.describe(c.parameters().string("name", MAX_KEY_NAME))));
    }

    private static Map<String, Object> describe(KeyRecord k) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", k.name());
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
        return c -> {
            authorizer.requireAdmin(c.peer());
            Params p = c.parameters();
            return keyReply(change.apply(p.string("name", MAX_KEY_NAME), (int) p.integer("version", 1, Integer.MAX_VALUE)));
        };
    }

    private static Map<String, Object> keyReply(KeyRecord k) {
        return Map.of("key", describe(k));
    }

    private Map<String, Object> updateKeyPolicy(Call c) throws KmsError, VarlinkError {
        authorizer.requireAdmin(c.peer());
        Params p = c.parameters();
        String name = p.string("name", MAX_KEY_NAME);
        KeyRecord current = admin.describe(name);
        Long period = p.optInteger("rotation_period_seconds", 0, 100L * 365 * 86400);
        java.time.Duration rotation = period == null ? current.rotationPeriod()
                : period == 0 ? null : java.time.Duration.ofSeconds(period);
        Long days = p.optInteger("destroy_wait_days", 0, Integer.MAX_VALUE);
        return keyReply(lifecycle.updatePolicy(name, rotation, days == null ? null : days.intValue()));
    }

    private Map<String, Object> getPublicKeys(Call c) throws KmsError, VarlinkError {
        String name = c.parameters().string("key", MAX_KEY_NAME);
        List<Object> versions = new ArrayList<>();
        for (CryptoService.VersionKey v : crypto.publicKeys(name)) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("version", (long) v.version());
            m.put("state", v.state().name());
            m.put("primary", v.primary());
            m.put("pem", pem(v.publicKey()));
            versions.add(m);
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("key", name);
        r.put("algorithm", crypto.signingKeyRecord(name).algorithm().name());
        r.put("versions", versions);
        return r;
    }

    private Map<String, Object> reEncrypt(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        Map<String, String> newContext = p.optStringMap("new_context", EncryptionContext.MAX_ENTRIES,
                EncryptionContext.MAX_LENGTH);
        CryptoService.ReEncrypted r = crypto.reEncrypt(
                p.bytes("ciphertext", dev.enclavekms.format.Envelope.MAX_ENVELOPE_BYTES), context(p),
                p.optString("key", MAX_KEY_NAME), newContext == null ? null : contextOf(p, "new_context", newContext),
                authorizer.mayReEncryptRevoked(c.peer()));
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

    private Map<String, Object> reEncryptBatch(Call c) throws KmsError, VarlinkError {
        Params p = c.parameters();
        List<byte[]> ciphertexts = ciphertexts(p);
        List<Object> results = new ArrayList<>(ciphertexts.size());
        for (CryptoService.ReEncryptEntry e : crypto.reEncryptBatch(ciphertexts, context(p),
                p.optString("key", MAX_KEY_NAME), authorizer.mayReEncryptRevoked(c.peer()))) {
            if (e.result() != null) {
                results.add(reEncrypted(e.result()));
            } else {
                results.add(Map.of("error", ErrorMapping.shortName(e.error()), "message", e.error().getMessage()));
            }
        }
        return Map.of("results", results);
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
