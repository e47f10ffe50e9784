package dev.enclavekms.service;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.enclave.pkcs11.TestKeys;
import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.SqliteRegistryStore;
import dev.enclavekms.registry.VersionState;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The data plane on a real SoftHSM token and a real registry file: reconciliation of
 * registry and hardware at start (missing, weak and orphan objects), purpose, required
 * context and version-state enforcement, and old versions staying decryptable.
 */
class CryptoServiceTest {
    private static final EncryptionContext CTX = EncryptionContext.of(Map.of("model", "llama-3-8b"));

    @TempDir
    static Path dir;
    static TestTokens.TestToken token;
    static Pkcs11Enclave enclave;
    static SqliteRegistryStore registry;
    static KeyAdmin admin;
    static CryptoService crypto;
    static KeyHealth health;
    static ObjectId weakId = ObjectId.random();
    static ObjectId goneId = ObjectId.random();
    static ObjectId orphanId = ObjectId.random();

    @BeforeAll
    static void setUp() throws Exception {
        token = TestTokens.fresh("crypto-service");
        enclave = token.open();
        registry = SqliteRegistryStore.open(dir.resolve("registry.db"));
        admin = new KeyAdmin(enclave, registry, Clock.systemUTC());
        admin.createKey("weights", Purpose.ENCRYPT, null, "", List.of("model"));
        admin.createKey("signer", Purpose.SIGN, KeyAlgorithm.EC_P256_SHA256, "", List.of());
        // Registered versions whose hardware object is weak, or missing; an object nobody registered.
        TestKeys.makeWeakAesKey(token, weakId);
        registry.apply(new RegistryCommand.CreateKey("weak", Purpose.ENCRYPT, KeyAlgorithm.AES_256_GCM, "", List.of(),
                weakId, Instant.now()));
        registry.apply(new RegistryCommand.CreateKey("gone", Purpose.ENCRYPT, KeyAlgorithm.AES_256_GCM, "", List.of(),
                goneId, Instant.now()));
        enclave.generate(orphanId, KeyAlgorithm.AES_256_GCM, "left by a crash");
        health = KeyHealth.reconcile(enclave, registry.list());
        crypto = new CryptoService(enclave, registry, health,
                new UsageMeter(registry, UsageMeter.DEFAULT_ROTATION_LIMIT, () -> { }));
    }

    @AfterAll
    static void tearDown() {
        registry.close();
        enclave.close();
    }

    @Test
    void reconcile_reportsMissingWeakAndOrphans() throws Exception {
        assertTrue(health.refusal(weakId).orElseThrow().contains("CKA_EXTRACTABLE=true"), health.refusal(weakId).get());
        assertTrue(health.missing().stream().anyMatch(m -> m.startsWith("gone v1")), health.missing().toString());
        assertTrue(health.orphans().stream().anyMatch(o -> o.startsWith(orphanId.hex())), health.orphans().toString());
        assertTrue(health.refusal(admin.describe("weights").primary().objectId()).isEmpty());
    }

    @Test
    void weakOrMissingVersion_isNeverServed() {
        var weak = assertThrows(KmsError.KeyVersionUnusable.class,
                () -> crypto.encrypt("weak", new byte[16], EncryptionContext.EMPTY));
        assertTrue(weak.getMessage().contains("weaker than required"), weak.getMessage());
        var gone = assertThrows(KmsError.KeyVersionUnusable.class,
                () -> crypto.generateDataKey("gone", EncryptionContext.EMPTY, 32));
        assertTrue(gone.getMessage().contains("missing"), gone.getMessage());
    }

    @Test
    void requiredContext_mustBePresent() {
        var e = assertThrows(KmsError.InvalidParameter.class,
                () -> crypto.generateDataKey("weights", EncryptionContext.EMPTY, 32));
        assertEquals("context", e.parameter());
        assertTrue(e.getMessage().contains("'model'"), e.getMessage());
    }

    @Test
    void purpose_isEnforcedBothWays() {
        assertThrows(KmsError.InvalidKeyUsage.class, () -> crypto.encrypt("signer", new byte[1], EncryptionContext.EMPTY));
        assertThrows(KmsError.InvalidKeyUsage.class, () -> crypto.sign("weights", new byte[1], null));
    }

    @Test
    void oldVersion_decryptsAfterNewPrimary_untilDisabled() throws Exception {
        admin.createKey("rollout", Purpose.ENCRYPT, null, "", List.of());
        CryptoService.Encrypted v1 = crypto.encrypt("rollout", "old secret".getBytes(StandardCharsets.UTF_8), CTX);
        // A second version becomes primary (what rotation will do).
        ObjectId v2 = ObjectId.random();
        enclave.generate(v2, KeyAlgorithm.AES_256_GCM, "rollout v2");
        registry.apply(new RegistryCommand.AddVersion("rollout", 2, v2, VersionState.ENABLED, false, Instant.now()));
        registry.apply(new RegistryCommand.SetPrimaryVersion("rollout", 2, Instant.now()));
        assertEquals(2, crypto.encrypt("rollout", new byte[1], CTX).version());
        try (var d = crypto.decrypt(v1.ciphertext(), CTX).plaintext()) {
            assertArrayEquals("old secret".getBytes(StandardCharsets.UTF_8), d.reveal());
        }
        registry.apply(new RegistryCommand.SetVersionState("rollout", 1, VersionState.DISABLED, Instant.now()));
        var e = assertThrows(KmsError.KeyVersionUnusable.class, () -> crypto.decrypt(v1.ciphertext(), CTX));
        assertEquals("DISABLED", e.state());
        registry.apply(new RegistryCommand.SetVersionState("rollout", 1, VersionState.ENABLED, Instant.now()));
        assertNotNull(crypto.decrypt(v1.ciphertext(), CTX));
    }

    @Test
    void pendingSigningVersion_publishesAndVerifiesButDoesNotSign() throws Exception {
        admin.createKey("manifest", Purpose.SIGN, KeyAlgorithm.ED25519, "", List.of());
        ObjectId v2 = ObjectId.random();
        enclave.generate(v2, KeyAlgorithm.ED25519, "manifest v2");
        registry.apply(new RegistryCommand.AddVersion("manifest", 2, v2, VersionState.PENDING, false, Instant.now()));
        assertEquals(2, crypto.publicKey("manifest", 2).version());
        CryptoService.Signed s = crypto.sign("manifest", "m".getBytes(StandardCharsets.UTF_8), null);
        assertEquals(1, s.version(), "the primary signs, not the pending version");
        assertFalse(crypto.verify("manifest", 2, s.signature(), "m".getBytes(StandardCharsets.UTF_8), null));
        assertTrue(crypto.verify("manifest", 1, s.signature(), "m".getBytes(StandardCharsets.UTF_8), null));
    }

    @Test
    void decryptBatch_reportsPerEntry() throws Exception {
        var good = crypto.generateDataKey("weights", CTX, 32);
        byte[] bad = good.ciphertext().clone();
        bad[bad.length - 1] ^= 1;
        List<CryptoService.BatchEntry> r = crypto.decryptBatch(List.of(good.ciphertext(), bad, new byte[3]), CTX);
        assertArrayEquals(good.plaintext().reveal(), r.get(0).result().plaintext().reveal());
        assertInstanceOf(KmsError.DecryptionFailed.class, r.get(1).error());
        assertInstanceOf(KmsError.DecryptionFailed.class, r.get(2).error());
    }

    @Test
    void envelope_bindsKeyNameVersionAndContext_underTheSameMasterKey() throws Exception {
        var dk = crypto.generateDataKey("weights", CTX, 32);
        var env = dev.enclavekms.format.Envelope.parse(dk.ciphertext());
        ObjectId master = admin.describe("weights").primary().objectId();
        var sealed = new dev.enclavekms.enclave.Sealed(env.iv(), env.ciphertext());
        // Same master key object each time: only the AAD differs, so only the binding can fail it.
        try (var ok = enclave.decrypt(master, env.aad(CTX), sealed)) {
            assertArrayEquals(dk.plaintext().reveal(), ok.reveal());
        }
        for (byte[] aad : List.of(
                dev.enclavekms.format.Envelope.aad("weights2", 1, env.scheme(), CTX),
                dev.enclavekms.format.Envelope.aad("weights", 2, env.scheme(), CTX),
                env.aad(EncryptionContext.of(Map.of("model", "llama-3-70b"))))) {
            assertThrows(dev.enclavekms.enclave.EnclaveException.AuthenticationFailed.class,
                    () -> enclave.decrypt(master, aad, sealed));
        }
    }

    @Test
    void generateDataKeys_batchIsDistinctAndDecryptable() throws Exception {
        var keys = crypto.generateDataKeys("weights", CTX, 32, 100);
        assertEquals(100, keys.stream().map(k -> java.util.HexFormat.of().formatHex(k.plaintext().reveal())).distinct().count());
        for (var k : keys.subList(0, 5)) {
            assertArrayEquals(k.plaintext().reveal(), crypto.decrypt(k.ciphertext(), CTX).plaintext().reveal());
        }
    }
}
