package dev.enclavekms.client;

import dev.enclavekms.server.varlink.ServerLimits;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.interfaces.ECPublicKey;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;

import static dev.enclavekms.client.ContractServer.ADMIN;
import static dev.enclavekms.client.ContractServer.KMS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * KmsClient against a real varlink server on a real socket whose handlers hold the
 * client to the shipped IDL (see {@link ContractServer}): exact parameter names and
 * types on the way out, IDL-shaped replies on the way in, every error to its type.
 */
@Timeout(60) // KmsClient has no read timeout: a server bug must fail a test, not hang the build
class KmsClientWireTest {
    private static final Map<String, String> CONTEXT = Map.of("model", "llama-3-8b");
    private static final byte[] DATA_KEY = bytes(32, 0x11);
    private static final byte[] ENVELOPE = bytes(80, 0x22);

    @TempDir
    Path dir;
    ContractServer server;
    KmsClient kms;

    @BeforeEach
    void start() throws IOException, KmsException {
        server = ContractServer.start(dir.resolve("kms.sock"));
        kms = KmsClient.connect(server.socket());
        // One answered call, so the server has accepted and registered the connection before
        // any test can shut it down: VarlinkServer loses a connection accepted during
        // shutdown (never closes it), and a client on it would wait forever.
        kms.getInfo();
    }

    @AfterEach
    void stop() throws IOException {
        kms.close();
        server.close();
        server.assertNoViolations();
    }

    private static byte[] bytes(int n, int fill) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (fill + i);
        return b;
    }

    private static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    private static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    // ------------------------------------------------------------------ data keys

    @Test
    void generateDataKey_sendsKeyAndContextOnly_returnsDecodedKey() throws Exception {
        server.reply(KMS + ".GenerateDataKey", map("key", "model-weights", "version", 3L,
                "plaintext", b64(DATA_KEY), "ciphertext", b64(ENVELOPE)));

        DataKey dk = kms.generateDataKey("model-weights", CONTEXT);

        assertEquals(map("key", "model-weights", "context", Map.of("model", "llama-3-8b")),
                server.lastParameters(KMS + ".GenerateDataKey"));
        assertEquals(new DataKey("model-weights", 3, DATA_KEY, ENVELOPE), dk);
    }

    @Test
    void generateDataKey_withBytes_sendsBytesAsInteger() throws Exception {
        server.reply(KMS + ".GenerateDataKey", map("key", "k", "version", 1L,
                "plaintext", b64(bytes(16, 0)), "ciphertext", b64(ENVELOPE)));

        assertEquals(16, kms.generateDataKey("k", null, 16).plaintext().length);

        assertEquals(map("key", "k", "bytes", 16L), server.lastParameters(KMS + ".GenerateDataKey"));
    }

    @Test
    void nullAndEmptyContext_bothOmitTheParameter() throws Exception {
        server.reply(KMS + ".Encrypt", map("key", "k", "version", 1L, "ciphertext", b64(ENVELOPE)));

        kms.encrypt("k", new byte[] {1}, null);
        Map<String, Object> withNull = server.lastParameters(KMS + ".Encrypt");
        kms.encrypt("k", new byte[] {1}, Map.of());
        Map<String, Object> withEmpty = server.lastParameters(KMS + ".Encrypt");

        assertEquals(map("key", "k", "plaintext", "AQ=="), withNull);
        assertEquals(withNull, withEmpty);
    }

    @Test
    void contextWithNullValue_throwsBeforeSending() {
        Map<String, String> context = new HashMap<>();
        context.put("model", null);

        assertThrows(NullPointerException.class, () -> kms.encrypt("k", new byte[1], context));
        assertEquals(List.of(), server.received());
    }

    @Test
    void generateDataKeys_sendsCount_givesEveryKeyTheReplysKeyAndVersion() throws Exception {
        server.reply(KMS + ".GenerateDataKeys", map("key", "shards", "version", 2L, "keys", List.of(
                map("plaintext", b64(bytes(32, 1)), "ciphertext", b64(bytes(60, 1))),
                map("plaintext", b64(bytes(32, 2)), "ciphertext", b64(bytes(60, 2))))));

        List<DataKey> keys = kms.generateDataKeys("shards", 2, Map.of("tier", "gold"));

        assertEquals(map("key", "shards", "count", 2L, "context", Map.of("tier", "gold")),
                server.lastParameters(KMS + ".GenerateDataKeys"));
        assertEquals(List.of(new DataKey("shards", 2, bytes(32, 1), bytes(60, 1)),
                new DataKey("shards", 2, bytes(32, 2), bytes(60, 2))), keys);
    }

    @Test
    void generateDataKeys_withBytes_sendsBytes() throws Exception {
        server.reply(KMS + ".GenerateDataKeys", map("key", "k", "version", 1L, "keys", List.of()));

        kms.generateDataKeys("k", 5, null, 24);

        assertEquals(map("key", "k", "count", 5L, "bytes", 24L), server.lastParameters(KMS + ".GenerateDataKeys"));
    }

    // ------------------------------------------------------------- encrypt/decrypt

    @Test
    void encrypt_sendsStandardBase64Plaintext_returnsCiphertext() throws Exception {
        byte[] secret = {(byte) 0xfb, (byte) 0xff, (byte) 0xbf}; // "+/+/" in standard base64, "-_-_" in URL-safe
        server.reply(KMS + ".Encrypt", map("key", "api-tokens", "version", 4L, "ciphertext", b64(ENVELOPE)));

        Ciphertext c = kms.encrypt("api-tokens", secret, CONTEXT);

        assertEquals(map("key", "api-tokens", "plaintext", "+/+/", "context", Map.of("model", "llama-3-8b")),
                server.lastParameters(KMS + ".Encrypt"));
        assertEquals(new Ciphertext("api-tokens", 4, ENVELOPE), c);
    }

    @Test
    void decrypt_sendsCiphertextAndContext_returnsPlaintextWithVersion() throws Exception {
        server.reply(KMS + ".Decrypt", map("key", "model-weights", "version", 1L, "plaintext", b64(DATA_KEY)));

        Plaintext p = kms.decrypt(ENVELOPE, CONTEXT);

        assertEquals(map("ciphertext", b64(ENVELOPE), "context", Map.of("model", "llama-3-8b")),
                server.lastParameters(KMS + ".Decrypt"));
        assertEquals(new Plaintext("model-weights", 1, DATA_KEY), p);
    }

    @Test
    void decryptBatch_mixedEntries_returnsOneResultPerEnvelopeInOrder() throws Exception {
        server.reply(KMS + ".DecryptBatch", map("results", List.of(
                map("plaintext", b64(bytes(32, 1)), "key", "k", "version", 1L),
                map("error", "DecryptionFailed", "message", "decryption failed"),
                map("error", "KeyVersionUnusable", "message", "version 2 is DISABLED", "key", "k", "version", 2L),
                map("plaintext", b64(bytes(32, 4)), "key", "k", "version", 3L))));

        List<DecryptResult> results = kms.decryptBatch(
                List.of(bytes(60, 1), bytes(60, 2), bytes(60, 3), bytes(60, 4)), CONTEXT);

        assertEquals(map("ciphertexts", List.of(b64(bytes(60, 1)), b64(bytes(60, 2)), b64(bytes(60, 3)),
                b64(bytes(60, 4))), "context", Map.of("model", "llama-3-8b")), server.lastParameters(KMS + ".DecryptBatch"));
        assertEquals(new Plaintext("k", 1, bytes(32, 1)), results.get(0));
        assertEquals(new DecryptResult.Failure("DecryptionFailed", "decryption failed", null, null), results.get(1));
        assertEquals(new DecryptResult.Failure("KeyVersionUnusable", "version 2 is DISABLED", "k", 2), results.get(2));
        assertEquals(new Plaintext("k", 3, bytes(32, 4)), results.get(3));
        assertInstanceOf(DecryptionFailedException.class, ((DecryptResult.Failure) results.get(1)).toException());
        KeyVersionUnusableException unusable = assertInstanceOf(KeyVersionUnusableException.class,
                ((DecryptResult.Failure) results.get(2)).toException());
        assertEquals(2, unusable.version());
    }

    @Test
    void decryptBatch_replyWithFewerResults_throwsIOException() {
        server.reply(KMS + ".DecryptBatch", map("results", List.of()));

        IOException e = assertThrows(IOException.class, () -> kms.decryptBatch(List.of(ENVELOPE), null));
        assertTrue(e.getMessage().contains("0 results for 1"), e.getMessage());
    }

    // ---------------------------------------------------------------- sign/verify

    @Test
    void sign_sendsMessageNotDigest() throws Exception {
        byte[] message = "release 1.2.3".getBytes(StandardCharsets.UTF_8);
        server.reply(KMS + ".Sign", map("key", "release", "version", 2L, "algorithm", "EC_P256_SHA256",
                "signature", b64(bytes(70, 3))));

        Signature s = kms.sign("release", message);

        assertEquals(map("key", "release", "message", b64(message)), server.lastParameters(KMS + ".Sign"));
        assertEquals(new Signature("release", 2, "EC_P256_SHA256", bytes(70, 3)), s);
    }

    @Test
    void signDigest_sendsDigestNotMessage() throws Exception {
        server.reply(KMS + ".Sign", map("key", "release", "version", 2L, "algorithm", "EC_P256_SHA256",
                "signature", b64(bytes(70, 3))));

        kms.signDigest("release", bytes(32, 9));

        assertEquals(map("key", "release", "digest", b64(bytes(32, 9))), server.lastParameters(KMS + ".Sign"));
    }

    @Test
    void verify_sendsVersionSignatureAndMessage_returnsValid() throws Exception {
        server.on(KMS + ".Verify", p -> map("valid", p.get("signature").equals(b64(bytes(70, 3)))));

        assertTrue(kms.verify("release", 2, bytes(70, 3), new byte[] {1, 2}));
        assertEquals(map("key", "release", "version", 2L, "signature", b64(bytes(70, 3)), "message", "AQI="),
                server.lastParameters(KMS + ".Verify"));
        assertFalse(kms.verify("release", 2, bytes(70, 4), new byte[] {1, 2}));
    }

    @Test
    void verifyDigest_sendsDigestNotMessage() throws Exception {
        server.reply(KMS + ".Verify", map("valid", false));

        assertFalse(kms.verifyDigest("release", 1, bytes(64, 0), bytes(32, 5)));

        assertEquals(map("key", "release", "version", 1L, "signature", b64(bytes(64, 0)), "digest", b64(bytes(32, 5))),
                server.lastParameters(KMS + ".Verify"));
    }

    @Test
    void getPublicKey_withoutVersion_omitsIt_andPemParsesWithJca() throws Exception {
        var pair = KeyPairGenerator.getInstance("EC").generateKeyPair();
        String pem = "-----BEGIN PUBLIC KEY-----\n" + Base64.getMimeEncoder().encodeToString(pair.getPublic().getEncoded())
                + "\n-----END PUBLIC KEY-----\n";
        server.reply(KMS + ".GetPublicKey", map("key", "release", "version", 5L, "algorithm", "EC_P256_SHA256", "pem", pem));

        PublicKeyInfo info = kms.getPublicKey("release");

        assertEquals(map("key", "release"), server.lastParameters(KMS + ".GetPublicKey"));
        assertEquals(new PublicKeyInfo("release", 5, "EC_P256_SHA256", pem), info);
        PublicKey k = info.toPublicKey();
        assertInstanceOf(ECPublicKey.class, k);
        assertArrayEquals(pair.getPublic().getEncoded(), k.getEncoded());
    }

    @Test
    void getPublicKey_withVersion_sendsIt() throws Exception {
        server.reply(KMS + ".GetPublicKey", map("key", "release", "version", 1L, "algorithm", "ED25519", "pem", "x"));

        assertEquals(1, kms.getPublicKey("release", 1).version());

        assertEquals(map("key", "release", "version", 1L), server.lastParameters(KMS + ".GetPublicKey"));
    }

    // --------------------------------------------------------------------- status

    static Map<String, Object> statusReply() {
        return map("version", "0.1.0", "uptime_seconds", 3723L,
                "enclave", map("kind", "pkcs11", "label", "enclave-kms", "manufacturer", "SoftHSM project",
                        "model", "SoftHSM v2", "serial", "1a2b3c"),
                "keys", 3L, "key_versions", 5L, "orphans", List.of("0badc0de"), "missing", List.of());
    }

    @Test
    void status_sendsNoParameters_readsEveryField() throws Exception {
        server.reply(KMS + ".Status", statusReply());

        Status s = kms.status();

        assertEquals(Map.of(), server.lastParameters(KMS + ".Status"));
        assertEquals(new Status("0.1.0", 3723, new Status.Enclave("pkcs11", "enclave-kms", "SoftHSM project",
                "SoftHSM v2", "1a2b3c"), 3, 5, List.of("0badc0de"), List.of()), s);
    }

    // ---------------------------------------------------------------------- admin

    static Map<String, Object> keyReply(String name, String purpose, String algorithm, List<String> required) {
        return map("key", map("name", name, "purpose", purpose, "algorithm", algorithm, "description", "for tests",
                "created", "2026-01-02T03:04:05Z", "primary_version", 2L, "required_context", required,
                "destroy_wait_days", 30L,
                "versions", List.of(
                        map("version", 1L, "state", "ENABLED", "created", "2026-01-02T03:04:05Z",
                                "state_changed", "2026-01-02T03:04:05Z", "encryptions", 12L, "object_id", "0a01"),
                        map("version", 2L, "state", "ENABLED", "created", "2026-02-02T03:04:05.5Z",
                                "state_changed", "2026-02-02T03:04:05.5Z", "encryptions", 0L, "object_id", "0a02"))));
    }

    /** A key in every state: what the lifecycle methods answer with. */
    static Map<String, Object> lifecycleKeyReply() {
        return map("key", map("name", "model-weights", "purpose", "ENCRYPT", "algorithm", "AES_256_GCM",
                "description", "", "created", "2026-01-01T00:00:00Z", "primary_version", 4L,
                "required_context", List.of(), "rotation_period_seconds", 7776000L,
                "next_rotation", "2026-07-01T00:00:00Z", "destroy_wait_days", 14L,
                "versions", List.of(
                        map("version", 1L, "state", "DESTROYED", "created", "2026-01-01T00:00:00Z",
                                "state_changed", "2026-03-15T00:00:00Z", "destroy_at", "2026-03-15T00:00:00Z",
                                "encryptions", 5000000000L, "object_id", "0a01"),
                        map("version", 2L, "state", "DESTROY_SCHEDULED", "created", "2026-02-01T00:00:00Z",
                                "state_changed", "2026-03-01T00:00:00Z", "destroy_at", "2026-03-15T00:00:00Z",
                                "encryptions", 10L, "object_id", "0a02"),
                        map("version", 3L, "state", "REVOKED", "created", "2026-03-01T00:00:00Z",
                                "state_changed", "2026-03-02T00:00:00Z", "encryptions", 3L, "object_id", "0a03"),
                        map("version", 4L, "state", "ENABLED", "created", "2026-04-01T00:00:00Z",
                                "state_changed", "2026-04-01T00:00:00Z", "encryptions", 0L, "object_id", "0a04"))));
    }

    @Test
    void createKey_minimal_sendsOnlyNameAndPurpose() throws Exception {
        server.reply(ADMIN + ".CreateKey", keyReply("k", "ENCRYPT", "AES_256_GCM", List.of()));

        kms.createKey("k", "ENCRYPT");

        assertEquals(map("name", "k", "purpose", "ENCRYPT"), server.lastParameters(ADMIN + ".CreateKey"));
    }

    @Test
    void createKey_full_sendsSnakeCaseParameters_returnsDescription() throws Exception {
        server.reply(ADMIN + ".CreateKey", keyReply("model-weights", "ENCRYPT", "AES_256_GCM", List.of("model", "tier")));

        KeyDescription d = kms.createKey("model-weights", "ENCRYPT", "AES_256_GCM", "for tests", List.of("model", "tier"));

        assertEquals(map("name", "model-weights", "purpose", "ENCRYPT", "algorithm", "AES_256_GCM",
                "description", "for tests", "required_context", List.of("model", "tier")),
                server.lastParameters(ADMIN + ".CreateKey"));
        assertEquals(new KeyDescription("model-weights", "ENCRYPT", "AES_256_GCM", "for tests",
                Instant.parse("2026-01-02T03:04:05Z"), 2, List.of("model", "tier"), null, null, 30, List.of(
                new KeyVersionInfo(1, "ENABLED", Instant.parse("2026-01-02T03:04:05Z"),
                        Instant.parse("2026-01-02T03:04:05Z"), null, 12, "0a01"),
                new KeyVersionInfo(2, "ENABLED", Instant.parse("2026-02-02T03:04:05.500Z"),
                        Instant.parse("2026-02-02T03:04:05.500Z"), null, 0, "0a02"))), d);
    }

    @Test
    void createKey_withLifecyclePolicy_sendsSecondsAndDays() throws Exception {
        server.reply(ADMIN + ".CreateKey", keyReply("k", "ENCRYPT", "AES_256_GCM", List.of()));

        kms.createKey("k", "ENCRYPT", null, null, null, Duration.ofDays(90), 14);

        assertEquals(map("name", "k", "purpose", "ENCRYPT", "rotation_period_seconds", 7776000L,
                "destroy_wait_days", 14L), server.lastParameters(ADMIN + ".CreateKey"));
    }

    @Test
    void createKey_zeroRotationPeriod_isNotSent() throws Exception {
        server.reply(ADMIN + ".CreateKey", keyReply("k", "ENCRYPT", "AES_256_GCM", List.of()));

        kms.createKey("k", "ENCRYPT", null, null, null, Duration.ZERO, null);

        assertEquals(map("name", "k", "purpose", "ENCRYPT"), server.lastParameters(ADMIN + ".CreateKey"));
    }

    @Test
    void createKey_fractionalRotationPeriod_throwsBeforeSending() {
        assertThrows(IllegalArgumentException.class,
                () -> kms.createKey("k", "ENCRYPT", null, null, null, Duration.ofMillis(3_600_500), null));
        assertThrows(IllegalArgumentException.class, () -> kms.updateKeyPolicy("k", Duration.ofHours(-1), null));
        assertEquals(List.of(), server.received());
    }

    @Test
    void describeKey_everyState_readsLifecycleFields() throws Exception {
        server.reply(ADMIN + ".DescribeKey", lifecycleKeyReply());

        KeyDescription d = kms.describeKey("model-weights");

        assertEquals(Duration.ofDays(90), d.rotationPeriod());
        assertEquals(Instant.parse("2026-07-01T00:00:00Z"), d.nextRotation());
        assertEquals(14, d.destroyWaitDays());
        assertEquals(4, d.primaryVersion());
        assertEquals(new KeyVersionInfo(1, "DESTROYED", Instant.parse("2026-01-01T00:00:00Z"),
                Instant.parse("2026-03-15T00:00:00Z"), Instant.parse("2026-03-15T00:00:00Z"), 5_000_000_000L, "0a01"),
                d.versions().get(0));
        assertEquals(Instant.parse("2026-03-15T00:00:00Z"), d.version(2).orElseThrow().destroyAt());
        assertNull(d.version(3).orElseThrow().destroyAt());
        assertEquals("REVOKED", d.version(3).orElseThrow().state());
        assertTrue(d.version(5).isEmpty());
    }

    // ------------------------------------------------------------------- lifecycle

    @Test
    void updateKeyPolicy_zeroTurnsRotationOff_nullLeavesUnsent() throws Exception {
        server.reply(ADMIN + ".UpdateKeyPolicy", lifecycleKeyReply());

        KeyDescription d = kms.updateKeyPolicy("model-weights", Duration.ZERO, null);

        assertEquals(map("name", "model-weights", "rotation_period_seconds", 0L),
                server.lastParameters(ADMIN + ".UpdateKeyPolicy"));
        assertEquals("model-weights", d.name());

        kms.updateKeyPolicy("model-weights", null, 21);
        assertEquals(map("name", "model-weights", "destroy_wait_days", 21L),
                server.lastParameters(ADMIN + ".UpdateKeyPolicy"));

        kms.updateKeyPolicy("model-weights", Duration.ofHours(12), 7);
        assertEquals(map("name", "model-weights", "rotation_period_seconds", 43200L, "destroy_wait_days", 7L),
                server.lastParameters(ADMIN + ".UpdateKeyPolicy"));
    }

    @Test
    void rotateKey_notPending_sendsNameOnly_pendingSendsTrue() throws Exception {
        server.reply(ADMIN + ".RotateKey", lifecycleKeyReply());

        assertEquals(4, kms.rotateKey("model-weights").primaryVersion());
        assertEquals(map("name", "model-weights"), server.lastParameters(ADMIN + ".RotateKey"));
        kms.rotateKey("model-weights", false);
        assertEquals(map("name", "model-weights"), server.lastParameters(ADMIN + ".RotateKey"));
        kms.rotateKey("release", true);
        assertEquals(map("name", "release", "pending", true), server.lastParameters(ADMIN + ".RotateKey"));
    }

    @Test
    void versionStateMethods_sendNameAndVersion_returnTheKey() throws Exception {
        record Case(String method, Call call) { }
        List<Case> cases = List.of(
                new Case("PromoteKeyVersion", () -> kms.promoteKeyVersion("model-weights", 3)),
                new Case("EnableKeyVersion", () -> kms.enableKeyVersion("model-weights", 3)),
                new Case("DisableKeyVersion", () -> kms.disableKeyVersion("model-weights", 3)),
                new Case("RevokeKeyVersion", () -> kms.revokeKeyVersion("model-weights", 3)),
                new Case("CancelKeyVersionDestruction", () -> kms.cancelKeyVersionDestruction("model-weights", 3)),
                new Case("ScheduleKeyVersionDestruction",
                        () -> kms.scheduleKeyVersionDestruction("model-weights", 3, null)));
        for (Case c : cases) {
            server.reply(ADMIN + "." + c.method(), lifecycleKeyReply());

            KeyDescription d = c.call().run();

            assertEquals(map("name", "model-weights", "version", 3L), server.lastParameters(ADMIN + "." + c.method()),
                    c.method());
            assertEquals(4, d.versions().size(), c.method());
        }
    }

    @FunctionalInterface
    private interface Call {
        KeyDescription run() throws Exception;
    }

    @Test
    void scheduleKeyVersionDestruction_withWaitDays_sendsThem() throws Exception {
        server.reply(ADMIN + ".ScheduleKeyVersionDestruction", lifecycleKeyReply());

        KeyDescription d = kms.scheduleKeyVersionDestruction("model-weights", 2, 14);

        assertEquals(map("name", "model-weights", "version", 2L, "wait_days", 14L),
                server.lastParameters(ADMIN + ".ScheduleKeyVersionDestruction"));
        assertEquals(Instant.parse("2026-03-15T00:00:00Z"), d.version(2).orElseThrow().destroyAt());
    }

    @Test
    void enableKeyVersion_revoked_throwsInvalidStateTransitionNamingState() {
        server.on(ADMIN + ".EnableKeyVersion", p -> { throw ContractServer.error(ADMIN + ".InvalidStateTransition",
                "key", "model-weights", "version", 3L, "state", "REVOKED",
                "message", "version 3 is REVOKED; a revoked version cannot be enabled"); });

        InvalidStateTransitionException e = assertThrows(InvalidStateTransitionException.class,
                () -> kms.enableKeyVersion("model-weights", 3));

        assertEquals("REVOKED", e.state());
        assertEquals(3, e.version());
        assertEquals("model-weights", e.key());
        assertEquals("version 3 is REVOKED; a revoked version cannot be enabled", e.getMessage());
    }

    // ------------------------------------------------------------------ re-encryption

    private static Map<String, Object> reEncryptReply(boolean rewrapped) {
        return map("key", "model-weights", "version", 4L, "source_key", "model-weights", "source_version",
                rewrapped ? 2L : 4L, "rewrapped", rewrapped, "ciphertext", b64(rewrapped ? bytes(80, 0x44) : ENVELOPE));
    }

    @Test
    void reEncrypt_minimal_sendsCiphertextAndContextOnly() throws Exception {
        server.reply(KMS + ".ReEncrypt", reEncryptReply(true));

        ReEncrypted r = kms.reEncrypt(ENVELOPE, CONTEXT);

        assertEquals(map("ciphertext", b64(ENVELOPE), "context", Map.of("model", "llama-3-8b")),
                server.lastParameters(KMS + ".ReEncrypt"));
        assertEquals(new ReEncrypted("model-weights", 4, "model-weights", 2, true, bytes(80, 0x44)), r);
    }

    @Test
    void reEncrypt_toOtherKeyWithNewContext_sendsKeyAndNewContext() throws Exception {
        server.reply(KMS + ".ReEncrypt", map("key", "weights-2027", "version", 1L, "source_key", "model-weights",
                "source_version", 3L, "rewrapped", true, "ciphertext", b64(bytes(70, 1))));

        ReEncrypted r = kms.reEncrypt(ENVELOPE, null, "weights-2027", Map.of("tier", "gold"));

        assertEquals(map("ciphertext", b64(ENVELOPE), "key", "weights-2027", "new_context", Map.of("tier", "gold")),
                server.lastParameters(KMS + ".ReEncrypt"));
        assertEquals("weights-2027", r.key());
        assertEquals("model-weights", r.sourceKey());
        assertEquals(3, r.sourceVersion());
    }

    @Test
    void reEncrypt_alreadyCurrent_returnsRewrappedFalseAndTheSameEnvelope() throws Exception {
        server.reply(KMS + ".ReEncrypt", reEncryptReply(false));

        ReEncrypted r = kms.reEncrypt(ENVELOPE, null);

        assertFalse(r.rewrapped());
        assertArrayEquals(ENVELOPE, r.ciphertext());
        assertFalse(r.toString().contains(b64(ENVELOPE)), r.toString());
    }

    @Test
    void reEncrypt_destroyedVersion_throwsKeyVersionDestroyedWithInstant() {
        server.on(KMS + ".ReEncrypt", p -> { throw ContractServer.error(KMS + ".KeyVersionDestroyed",
                "key", "model-weights", "version", 1L, "destroyed", "2026-03-15T00:00:00Z",
                "message", "version 1 of key 'model-weights' was destroyed on 2026-03-15T00:00:00Z"); });

        KeyVersionDestroyedException e = assertThrows(KeyVersionDestroyedException.class,
                () -> kms.reEncrypt(ENVELOPE, null));

        assertEquals(Instant.parse("2026-03-15T00:00:00Z"), e.destroyed());
        assertEquals(1, e.version());
        assertEquals("model-weights", e.key());
    }

    @Test
    void keyVersionDestroyed_unparsableInstant_destroyedIsNull() {
        KeyVersionDestroyedException e = new KeyVersionDestroyedException(KMS + ".KeyVersionDestroyed",
                map("destroyed", "last tuesday", "message", "gone"));

        assertNull(e.destroyed());
        assertEquals("gone", e.getMessage());
    }

    @Test
    void reEncryptBatch_mixedEntries_returnsOneResultPerEnvelopeInOrder() throws Exception {
        server.reply(KMS + ".ReEncryptBatch", map("results", List.of(
                map("key", "k", "version", 4L, "source_key", "k", "source_version", 1L, "rewrapped", true,
                        "ciphertext", b64(bytes(60, 1))),
                map("key", "k", "version", 4L, "source_key", "k", "source_version", 4L, "rewrapped", false,
                        "ciphertext", b64(bytes(60, 2))),
                map("error", "KeyVersionDestroyed", "message", "version 2 was destroyed", "source_key", "k",
                        "source_version", 2L),
                map("error", "DecryptionFailed", "message", "decryption failed"))));

        List<ReEncryptResult> results = kms.reEncryptBatch(
                List.of(bytes(60, 1), bytes(60, 2), bytes(60, 3), bytes(60, 4)), CONTEXT, "k");

        assertEquals(map("ciphertexts", List.of(b64(bytes(60, 1)), b64(bytes(60, 2)), b64(bytes(60, 3)),
                b64(bytes(60, 4))), "context", Map.of("model", "llama-3-8b"), "key", "k"),
                server.lastParameters(KMS + ".ReEncryptBatch"));
        assertEquals(new ReEncrypted("k", 4, "k", 1, true, bytes(60, 1)), results.get(0));
        assertEquals(new ReEncrypted("k", 4, "k", 4, false, bytes(60, 2)), results.get(1));
        assertEquals(new ReEncryptResult.Failure("KeyVersionDestroyed", "version 2 was destroyed", "k", 2, null, null),
                results.get(2));
        assertEquals(new ReEncryptResult.Failure("DecryptionFailed", "decryption failed", null, null, null, null),
                results.get(3));
        KeyVersionDestroyedException destroyed = assertInstanceOf(KeyVersionDestroyedException.class,
                ((ReEncryptResult.Failure) results.get(2)).toException());
        assertEquals(2, destroyed.version());
        assertEquals("k", destroyed.key());
        assertInstanceOf(DecryptionFailedException.class, ((ReEncryptResult.Failure) results.get(3)).toException());
    }

    @Test
    void reEncryptBatch_noTargetNoContext_sendsCiphertextsOnly() throws Exception {
        server.reply(KMS + ".ReEncryptBatch", map("results", List.of(map("key", "k", "version", 1L,
                "source_key", "k", "source_version", 1L, "rewrapped", false, "ciphertext", b64(ENVELOPE)))));

        kms.reEncryptBatch(List.of(ENVELOPE), Map.of(), null);

        assertEquals(map("ciphertexts", List.of(b64(ENVELOPE))), server.lastParameters(KMS + ".ReEncryptBatch"));
    }

    @Test
    void reEncryptBatch_replyWithFewerResults_throwsIOException() {
        server.reply(KMS + ".ReEncryptBatch", map("results", List.of()));

        IOException e = assertThrows(IOException.class, () -> kms.reEncryptBatch(List.of(ENVELOPE), null, null));
        assertTrue(e.getMessage().contains("0 results for 1"), e.getMessage());
    }

    @Test
    void getPublicKeys_readsEveryVerifiableVersion_pemsParseWithJca() throws Exception {
        var old = KeyPairGenerator.getInstance("EC").generateKeyPair();
        var pending = KeyPairGenerator.getInstance("EC").generateKeyPair();
        server.reply(KMS + ".GetPublicKeys", map("key", "release", "algorithm", "EC_P256_SHA256", "versions", List.of(
                map("version", 1L, "state", "ENABLED", "primary", true, "pem", pem(old.getPublic())),
                map("version", 2L, "state", "PENDING", "primary", false, "pem", pem(pending.getPublic())))));

        PublicKeys keys = kms.getPublicKeys("release");

        assertEquals(map("key", "release"), server.lastParameters(KMS + ".GetPublicKeys"));
        assertEquals(new PublicKeys("release", "EC_P256_SHA256", List.of(
                new PublicKeys.Version(1, "ENABLED", true, pem(old.getPublic())),
                new PublicKeys.Version(2, "PENDING", false, pem(pending.getPublic())))), keys);
        assertEquals(1, keys.primary().orElseThrow().version());
        List<PublicKeyInfo> infos = keys.publicKeyInfos();
        assertEquals(new PublicKeyInfo("release", 2, "EC_P256_SHA256", pem(pending.getPublic())), infos.get(1));
        assertArrayEquals(pending.getPublic().getEncoded(), infos.get(1).toPublicKey().getEncoded());
    }

    private static String pem(PublicKey k) {
        return "-----BEGIN PUBLIC KEY-----\n" + Base64.getMimeEncoder().encodeToString(k.getEncoded())
                + "\n-----END PUBLIC KEY-----\n";
    }

    @Test
    void listKeys_readsSummaries() throws Exception {
        server.reply(ADMIN + ".ListKeys", map("keys", List.of(
                map("name", "a", "purpose", "ENCRYPT", "algorithm", "AES_256_GCM", "primary_version", 1L, "versions", 1L),
                map("name", "b", "purpose", "SIGN", "algorithm", "ED25519", "primary_version", 3L, "versions", 4L))));

        assertEquals(List.of(new KeySummary("a", "ENCRYPT", "AES_256_GCM", 1, 1),
                new KeySummary("b", "SIGN", "ED25519", 3, 4)), kms.listKeys());
        assertEquals(Map.of(), server.lastParameters(ADMIN + ".ListKeys"));
    }

    @Test
    void describeKey_sendsName() throws Exception {
        server.reply(ADMIN + ".DescribeKey", keyReply("b", "SIGN", "ED25519", List.of()));

        assertEquals("ED25519", kms.describeKey("b").algorithm());
        assertEquals(map("name", "b"), server.lastParameters(ADMIN + ".DescribeKey"));
    }

    @Test
    void everyIdlMethod_hasAKmsClientMethodOfTheSameName() {
        Set<String> clientMethods = new TreeSet<>();
        for (Method m : KmsClient.class.getMethods()) clientMethods.add(m.getName());
        List<String> missing = new ArrayList<>();
        for (String iface : List.of(KMS, ADMIN)) {
            for (String method : server.idl(iface).methods().keySet()) {
                String java = Character.toLowerCase(method.charAt(0)) + method.substring(1);
                if (!clientMethods.contains(java)) missing.add(iface + "." + method + " (KmsClient." + java + ")");
            }
        }
        assertEquals(List.of(), missing);
    }

    // ------------------------------------------------------------ org.varlink.service

    @Test
    void getInfo_realServer_listsServedInterfaces() throws Exception {
        ServiceInfo info = kms.getInfo();

        assertEquals(List.of("org.varlink.service", KMS, ADMIN), info.interfaces());
        assertEquals("0.0.0-test", info.version());
    }

    @Test
    void getInterfaceDescription_returnsTheShippedIdl() throws Exception {
        assertEquals(VarlinkIdl.resourceText(KMS), kms.getInterfaceDescription(KMS));
    }

    @Test
    void getInterfaceDescription_unknownInterface_throwsPlainKmsExceptionWithName() {
        KmsException e = assertThrows(KmsException.class, () -> kms.getInterfaceDescription("com.example.Nope"));

        assertSame(KmsException.class, e.getClass());
        assertEquals("org.varlink.service.InterfaceNotFound", e.error());
        assertEquals("com.example.Nope", e.parameters().get("interface"));
    }

    // ------------------------------------------------------------------------ errors

    /** Every error of the IDL, with the exception it must become and its typed accessors. */
    private static final Map<String, Class<? extends KmsException>> EXPECTED = Map.ofEntries(
            Map.entry("InvalidParameter", InvalidParameterException.class),
            Map.entry("KeyNotFound", KeyNotFoundException.class),
            Map.entry("KeyVersionNotFound", KeyVersionNotFoundException.class),
            Map.entry("InvalidKeyUsage", InvalidKeyUsageException.class),
            Map.entry("KeyVersionUnusable", KeyVersionUnusableException.class),
            Map.entry("PermissionDenied", PermissionDeniedException.class),
            Map.entry("DecryptionFailed", DecryptionFailedException.class),
            Map.entry("EnclaveUnavailable", EnclaveUnavailableException.class),
            Map.entry("AuditUnavailable", AuditUnavailableException.class),
            Map.entry("InternalError", InternalErrorException.class),
            Map.entry("InvalidRequest", InvalidRequestException.class),
            Map.entry("RequestTooLarge", RequestTooLargeException.class),
            Map.entry("TooManyConnections", TooManyConnectionsException.class),
            Map.entry("KeyAlreadyExists", KeyAlreadyExistsException.class),
            Map.entry("KeyVersionDestroyed", KeyVersionDestroyedException.class),
            Map.entry("InvalidStateTransition", InvalidStateTransitionException.class),
            Map.entry("PolicyInvalid", PolicyInvalidException.class),
            Map.entry("SessionNotFound", SessionNotFoundException.class),
            Map.entry("SessionMaterialNotFound", SessionMaterialNotFoundException.class),
            Map.entry("SessionLimitExceeded", SessionLimitExceededException.class),
            Map.entry("CertificateRefused", CertificateRefusedException.class),
            Map.entry("CertificateNotFound", dev.enclavekms.client.CertificateNotFoundException.class));

    private static final Map<Class<?>, Function<KmsException, Object>> ACCESSORS = Map.of(
            InvalidParameterException.class, e -> ((InvalidParameterException) e).parameter(),
            KeyNotFoundException.class, e -> ((KeyNotFoundException) e).key(),
            KeyVersionNotFoundException.class, e -> ((KeyVersionNotFoundException) e).key() + "/"
                    + ((KeyVersionNotFoundException) e).version(),
            InvalidKeyUsageException.class, e -> ((InvalidKeyUsageException) e).key(),
            KeyVersionUnusableException.class, e -> ((KeyVersionUnusableException) e).key() + "/"
                    + ((KeyVersionUnusableException) e).version() + "/" + ((KeyVersionUnusableException) e).state(),
            RequestTooLargeException.class, e -> ((RequestTooLargeException) e).limit(),
            TooManyConnectionsException.class, e -> ((TooManyConnectionsException) e).limit(),
            KeyAlreadyExistsException.class, e -> ((KeyAlreadyExistsException) e).key(),
            KeyVersionDestroyedException.class, e -> ((KeyVersionDestroyedException) e).key() + "/"
                    + ((KeyVersionDestroyedException) e).version() + "/" + ((KeyVersionDestroyedException) e).destroyed(),
            InvalidStateTransitionException.class, e -> ((InvalidStateTransitionException) e).key() + "/"
                    + ((InvalidStateTransitionException) e).version() + "/" + ((InvalidStateTransitionException) e).state());

    private static final Map<Class<?>, Object> ACCESSOR_VALUES = Map.of(
            InvalidParameterException.class, "parameter-value",
            KeyNotFoundException.class, "key-value",
            KeyVersionNotFoundException.class, "key-value/7",
            InvalidKeyUsageException.class, "key-value",
            KeyVersionUnusableException.class, "key-value/7/state-value",
            RequestTooLargeException.class, 7L,
            TooManyConnectionsException.class, 7L,
            KeyAlreadyExistsException.class, "key-value",
            // the sample "destroyed-value" is no RFC 3339 time: the accessor gives null, not an exception
            KeyVersionDestroyedException.class, "key-value/7/null",
            InvalidStateTransitionException.class, "key-value/7/state-value");

    @Test
    void everyErrorOfBothIdls_becomesItsOwnExceptionType() throws Exception {
        List<String> failures = new ArrayList<>();
        TreeSet<String> declared = new TreeSet<>();
        for (String iface : List.of(KMS, ADMIN)) {
            VarlinkIdl idl = server.idl(iface);
            String probe = iface.equals(KMS) ? KMS + ".Status" : ADMIN + ".ListKeys";
            for (var error : idl.errors().entrySet()) {
                declared.add(error.getKey());
                String name = iface + "." + error.getKey();
                @SuppressWarnings("unchecked")
                Map<String, Object> params = (Map<String, Object>) idl.sample(error.getValue(), "");
                server.on(probe, p -> { throw new dev.enclavekms.varlink.VarlinkError(name, params); });
                try {
                    if (iface.equals(KMS)) kms.status(); else kms.listKeys();
                    failures.add(name + ": no exception");
                } catch (KmsException e) {
                    Class<? extends KmsException> want = EXPECTED.get(error.getKey());
                    if (e.getClass() != want) failures.add(name + ": got " + e.getClass().getSimpleName() + ", want " + want);
                    if (!e.error().equals(name)) failures.add(name + ": error() is " + e.error());
                    if (!e.shortName().equals(error.getKey())) failures.add(name + ": shortName() is " + e.shortName());
                    if (!e.getMessage().equals("message-value")) failures.add(name + ": message is " + e.getMessage());
                    var accessor = ACCESSORS.get(e.getClass());
                    if (accessor != null && !accessor.apply(e).equals(ACCESSOR_VALUES.get(e.getClass()))) {
                        failures.add(name + ": accessor gives " + accessor.apply(e));
                    }
                }
            }
        }
        assertEquals(List.of(), failures);
        assertEquals(new TreeSet<>(EXPECTED.keySet()), declared, "the IDLs' errors and the expected mapping differ");
    }

    @Test
    void unknownError_isPlainKmsExceptionKeepingNameAndParameters() {
        server.on(KMS + ".Status", p -> { throw ContractServer.error("com.example.Other.Busy", "message", "busy", "retry", 3L); });

        KmsException e = assertThrows(KmsException.class, () -> kms.status());

        assertSame(KmsException.class, e.getClass());
        assertEquals("com.example.Other.Busy", e.error());
        assertEquals("Busy", e.shortName());
        assertEquals("busy", e.getMessage());
        assertEquals(3L, e.parameters().get("retry"));
    }

    @Test
    void foreignErrorWithOurShortName_isNotMistakenForOurs() {
        server.on(KMS + ".Status", p -> { throw ContractServer.error("com.example.KeyNotFound", "message", "x"); });

        assertSame(KmsException.class, assertThrows(KmsException.class, () -> kms.status()).getClass());
    }

    @Test
    void handlerCrash_realServer_throwsInternalErrorWithoutItsText() {
        server.on(KMS + ".Status", p -> { throw new IllegalStateException("secret detail"); });

        InternalErrorException e = assertThrows(InternalErrorException.class, () -> kms.status());
        assertFalse(e.getMessage().contains("secret detail"), e.getMessage());
    }

    @Test
    void oversizedCall_realServerLimit_throwsRequestTooLargeWithLimit() throws Exception {
        try (ContractServer small = ContractServer.start(dir.resolve("small.sock"),
                ServerLimits.DEFAULT.withMaxMessageBytes(1024));
             KmsClient client = KmsClient.connect(small.socket())) {
            RequestTooLargeException e = assertThrows(RequestTooLargeException.class,
                    () -> client.encrypt("k", new byte[2048], null));
            assertEquals(1024, e.limit());
            small.reply(KMS + ".Status", statusReply());
            assertEquals("0.1.0", client.status().version(), "the connection survives an oversized call");
        }
    }

    @Test
    void connectionBeyondLimit_realServer_throwsTooManyConnections() throws Exception {
        try (ContractServer one = ContractServer.start(dir.resolve("one.sock"), ServerLimits.DEFAULT.withMaxConnections(1));
             KmsClient first = KmsClient.connect(one.socket());
             KmsClient second = KmsClient.connect(one.socket())) {
            one.reply(KMS + ".Status", statusReply());
            // Whichever connection the server accepted second is refused.
            List<Object> outcomes = new ArrayList<>();
            for (KmsClient c : List.of(first, second)) {
                try {
                    outcomes.add(c.status().version());
                } catch (TooManyConnectionsException e) {
                    assertEquals(1, e.limit());
                    outcomes.add("refused");
                }
            }
            assertEquals(1, outcomes.stream().filter("refused"::equals).count(), outcomes.toString());
        }
    }

    // ------------------------------------------------------------ transport failures

    @Test
    void connect_noSocket_throwsIOExceptionNamingPath() {
        Path missing = dir.resolve("absent.sock");

        IOException e = assertThrows(IOException.class, () -> KmsClient.connect(missing));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    }

    @Test
    void replyMissingField_throwsIOExceptionNamingFieldNotValue() {
        server.onUnchecked(KMS + ".Decrypt", p -> map("key", "k", "version", 1L));

        IOException e = assertThrows(IOException.class, () -> kms.decrypt(ENVELOPE, null));
        assertTrue(e.getMessage().contains("'plaintext' is missing"), e.getMessage());
    }

    @Test
    void replyWithBadBase64_throwsIOExceptionWithoutTheValue() {
        server.onUnchecked(KMS + ".Decrypt", p -> map("key", "k", "version", 1L, "plaintext", "s3cr3t!!"));

        IOException e = assertThrows(IOException.class, () -> kms.decrypt(ENVELOPE, null));
        assertFalse(e.getMessage().contains("s3cr3t"), e.getMessage());
    }

    @Test
    void replyWithWrongNestedType_namesThePath() {
        server.onUnchecked(ADMIN + ".ListKeys", p -> map("keys", List.of(map("name", "a", "purpose", "ENCRYPT",
                "algorithm", "AES_256_GCM", "primary_version", "1", "versions", 1L))));

        IOException e = assertThrows(IOException.class, () -> kms.listKeys());
        assertTrue(e.getMessage().contains("'keys[0].primary_version' is not an integer"), e.getMessage());
    }

    @Test
    void serverGone_callThrowsIOException() throws Exception {
        server.close();

        assertThrows(IOException.class, () -> kms.status());
    }

    @Test
    void afterClose_callThrowsIOException() throws Exception {
        kms.close();

        assertThrows(IOException.class, () -> kms.status());
    }

    @Test
    void contractServer_catchesAnUndeclaredParameter() throws Exception {
        // The judge itself: a client that sent a parameter the IDL lacks would be caught.
        try (ContractServer judge = ContractServer.start(dir.resolve("judge.sock"));
             var raw = dev.enclavekms.varlink.VarlinkClient.connect(judge.socket())) {
            judge.reply(KMS + ".Status", statusReply());
            assertThrows(dev.enclavekms.varlink.VarlinkError.class, () -> raw.call(KMS + ".Status", Map.of("verbose", true)));
            assertEquals(List.of("dev.enclavekms.Kms.Status call: verbose: not in the IDL"), judge.violations());
        }
    }

    @Test
    void contractServer_catchesAReplyThatIsNotIdlShaped() throws Exception {
        try (ContractServer judge = ContractServer.start(dir.resolve("judge.sock"));
             KmsClient client = KmsClient.connect(judge.socket())) {
            judge.reply(KMS + ".Verify", map("valid", "yes"));
            assertThrows(KmsException.class, () -> client.verify("k", 1, new byte[1], new byte[1]));
            assertEquals(List.of("dev.enclavekms.Kms.Verify reply: valid: expected bool but got String"), judge.violations());
        }
    }
}
