package dev.enclavekms.service;

import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.SqliteRegistryStore;
import dev.enclavekms.registry.VersionState;
import dev.enclavekms.testing.MutableClock;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Rotation, state changes, re-encryption and scheduled destruction on a real SoftHSM
 * token, with a clock the test moves. The first test is Vault's rotation scenario.
 */
class KeyLifecycleTest {
    private static final EncryptionContext CTX = EncryptionContext.of(Map.of("model", "llama-3-8b"));

    @TempDir
    static Path dir;
    static TestTokens.TestToken token;
    static Pkcs11Enclave enclave;
    static SqliteRegistryStore registry;
    static MutableClock clock = new MutableClock(Instant.parse("2026-11-22T00:00:00Z"));
    static KeyAdmin admin;
    static KeyLifecycle lifecycle;
    static CryptoService crypto;
    static UsageMeter usage;
    static final AtomicInteger rotationRequests = new AtomicInteger();

    @BeforeAll
    static void setUp() throws Exception {
        token = TestTokens.fresh("lifecycle");
        enclave = token.open();
        registry = SqliteRegistryStore.open(dir.resolve("registry.db"));
        admin = new KeyAdmin(enclave, registry, clock);
        usage = new UsageMeter(registry, 64, rotationRequests::incrementAndGet);
        lifecycle = new KeyLifecycle(enclave, registry, clock, usage, Duration.ofHours(24), PausePoints.NONE);
        crypto = new CryptoService(enclave, registry, KeyHealth.reconcile(enclave, registry.list()), usage);
    }

    @AfterAll
    static void tearDown() {
        registry.close();
        enclave.close();
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String decrypt(byte[] ct) throws KmsError {
        try (CryptoService.Decrypted d = crypto.decrypt(ct, CTX)) {
            return new String(d.plaintext().reveal(), StandardCharsets.UTF_8);
        }
    }

    private static boolean onToken(ObjectId id) throws Exception {
        for (EnclaveObject o : enclave.list()) {
            if (o.id().equals(id)) return true;
        }
        return false;
    }

    @Test
    void vaultStyleScenario_rotateDisableEnableRevokeReEncryptDestroy() throws Exception {
        admin.createKey("scenario", Purpose.ENCRYPT, null, "", List.of());
        List<byte[]> ct = new ArrayList<>();
        ct.add(null); // versions count from 1
        for (int v = 1; v <= 4; v++) {
            if (v > 1) lifecycle.rotate("scenario", false);
            CryptoService.Encrypted e = crypto.encrypt("scenario", bytes("secret " + v), CTX);
            assertEquals(v, e.version(), "encrypt uses the primary, the newest version");
            ct.add(e.ciphertext());
        }
        for (int v = 1; v <= 4; v++) assertEquals("secret " + v, decrypt(ct.get(v)), "old versions still decrypt");

        // Disable v2: its ciphertexts fail, the others decrypt; enable it: they decrypt again.
        lifecycle.disable("scenario", 2);
        var disabled = assertThrows(KmsError.KeyVersionUnusable.class, () -> decrypt(ct.get(2)));
        assertEquals("DISABLED", disabled.state());
        assertEquals("secret 1", decrypt(ct.get(1)));
        assertEquals("secret 3", decrypt(ct.get(3)));
        lifecycle.enable("scenario", 2);
        assertEquals("secret 2", decrypt(ct.get(2)));

        // Revoke v3: ordinary decrypt refused; ReEncrypt with the grant yields a v4 ciphertext.
        lifecycle.revoke("scenario", 3);
        var revoked = assertThrows(KmsError.KeyVersionUnusable.class, () -> decrypt(ct.get(3)));
        assertTrue(revoked.getMessage().contains("REVOKED"), revoked.getMessage());
        assertThrows(KmsError.KeyVersionUnusable.class, () -> crypto.reEncrypt(ct.get(3), CTX, null, null, false));
        CryptoService.ReEncrypted moved = crypto.reEncrypt(ct.get(3), CTX, null, null, true);
        assertTrue(moved.rewrapped());
        assertEquals(3, moved.sourceVersion());
        assertEquals(4, moved.version());
        assertEquals("secret 3", decrypt(moved.ciphertext()));
        assertThrows(KmsError.InvalidStateTransition.class, () -> lifecycle.enable("scenario", 3),
                "revocation is irreversible");

        // Schedule v1 for destruction, cancel (-> DISABLED), schedule again, let the time pass.
        ObjectId v1Object = admin.describe("scenario").version(1).orElseThrow().objectId();
        lifecycle.scheduleDestruction("scenario", 1, null);
        var scheduled = assertThrows(KmsError.KeyVersionUnusable.class, () -> decrypt(ct.get(1)));
        assertTrue(scheduled.getMessage().contains("scheduled for destruction at 2026-12-22T00:00:00Z"),
                scheduled.getMessage());
        lifecycle.cancelDestruction("scenario", 1);
        assertEquals(VersionState.DISABLED, admin.describe("scenario").version(1).orElseThrow().state());
        lifecycle.scheduleDestruction("scenario", 1, 7);
        clock.advance(Duration.ofDays(6));
        lifecycle.sweep();
        assertTrue(onToken(v1Object), "not before the waiting period has passed");
        clock.advance(Duration.ofDays(1));
        lifecycle.sweep();
        assertFalse(onToken(v1Object), "destroyed on the token");
        KeyRecord k = admin.describe("scenario");
        assertEquals(VersionState.DESTROYED, k.version(1).orElseThrow().state());
        assertEquals(clock.instant(), k.version(1).orElseThrow().destroyAt(), "the tombstone keeps when");
        var destroyed = assertThrows(KmsError.KeyVersionDestroyed.class, () -> decrypt(ct.get(1)));
        assertEquals(1, destroyed.version());
        assertEquals("secret 2", decrypt(ct.get(2)));
        assertEquals("secret 4", decrypt(ct.get(4)));
    }

    @Test
    void cancelledDestruction_ofRevokedVersion_staysRevoked() throws Exception {
        admin.createKey("compromised", Purpose.ENCRYPT, null, "", List.of());
        lifecycle.rotate("compromised", false);
        lifecycle.revoke("compromised", 1);
        lifecycle.scheduleDestruction("compromised", 1, null);
        lifecycle.cancelDestruction("compromised", 1);
        assertEquals(VersionState.REVOKED, admin.describe("compromised").version(1).orElseThrow().state(),
                "cancelling must not launder a revocation into DISABLED");
        var e = assertThrows(KmsError.InvalidStateTransition.class, () -> lifecycle.enable("compromised", 1));
        assertEquals("REVOKED", e.state());
    }

    @Test
    void primaryVersion_cannotBeDisabledRevokedOrScheduled() throws Exception {
        admin.createKey("primary-guard", Purpose.ENCRYPT, null, "", List.of());
        for (var op : List.<java.util.concurrent.Callable<?>>of(() -> lifecycle.disable("primary-guard", 1),
                () -> lifecycle.revoke("primary-guard", 1), () -> lifecycle.scheduleDestruction("primary-guard", 1, null))) {
            var e = assertThrows(KmsError.InvalidStateTransition.class, op::call);
            assertEquals("ENABLED", e.state());
            assertTrue(e.getMessage().contains("primary"), e.getMessage());
        }
    }

    @Test
    void illegalTransition_namesTheCurrentState() throws Exception {
        admin.createKey("transitions", Purpose.ENCRYPT, null, "", List.of());
        lifecycle.rotate("transitions", false);
        lifecycle.disable("transitions", 1);
        var e = assertThrows(KmsError.InvalidStateTransition.class, () -> lifecycle.promote("transitions", 1));
        assertEquals("DISABLED", e.state());
        var c = assertThrows(KmsError.InvalidStateTransition.class, () -> lifecycle.cancelDestruction("transitions", 1));
        assertTrue(c.getMessage().contains("DISABLED"), c.getMessage());
        assertThrows(KmsError.KeyVersionNotFound.class, () -> lifecycle.enable("transitions", 9));
        assertThrows(KmsError.InvalidParameter.class, () -> lifecycle.scheduleDestruction("transitions", 1, 3),
                "the waiting period is at least 7 days");
    }

    @Test
    void disableOfScheduledVersion_isRefusedAndTheDestructionStands() throws Exception {
        admin.createKey("shred", Purpose.ENCRYPT, null, "", List.of());
        lifecycle.rotate("shred", false);
        lifecycle.scheduleDestruction("shred", 1, null);
        Instant due = admin.describe("shred").version(1).orElseThrow().destroyAt();
        var e = assertThrows(KmsError.InvalidStateTransition.class, () -> lifecycle.disable("shred", 1));
        assertEquals("DESTROY_SCHEDULED", e.state());
        assertTrue(e.getMessage().contains("CancelKeyVersionDestruction"), e.getMessage());
        var v1 = admin.describe("shred").version(1).orElseThrow();
        assertEquals(VersionState.DESTROY_SCHEDULED, v1.state(), "disabling must not cancel the destruction");
        assertEquals(due, v1.destroyAt());
    }

    @Test
    void enableOfPendingVersion_isRefused_promotionIsTheWay() throws Exception {
        admin.createKey("staged", Purpose.SIGN, KeyAlgorithm.EC_P256_SHA256, "", List.of());
        lifecycle.rotate("staged", true);
        var e = assertThrows(KmsError.InvalidStateTransition.class, () -> lifecycle.enable("staged", 2));
        assertEquals("PENDING", e.state());
        assertTrue(e.getMessage().contains("PromoteKeyVersion"), e.getMessage());
        assertEquals(VersionState.PENDING, admin.describe("staged").version(2).orElseThrow().state());
        lifecycle.promote("staged", 2);
        assertEquals(2, admin.describe("staged").primaryVersion());
    }

    @Test
    void pendingSigningVersion_isPublishedThenPromoted() throws Exception {
        admin.createKey("checkpoints", Purpose.SIGN, KeyAlgorithm.EC_P256_SHA256, "", List.of());
        lifecycle.rotate("checkpoints", true);
        assertEquals(List.of(1, 2), crypto.publicKeys("checkpoints").stream().map(CryptoService.VersionKey::version).toList());
        assertEquals(1, crypto.sign("checkpoints", bytes("m"), null).version(), "the old primary signs until promotion");
        lifecycle.promote("checkpoints", 2);
        CryptoService.Signed s = crypto.sign("checkpoints", bytes("m"), null);
        assertEquals(2, s.version());
        assertTrue(crypto.verify("checkpoints", 2, s.signature(), bytes("m"), null));
    }

    @Test
    void pendingRotation_refusedForEncryptionKeys() throws Exception {
        admin.createKey("scenario-enc", Purpose.ENCRYPT, null, "", List.of());
        var e = assertThrows(KmsError.InvalidParameter.class, () -> lifecycle.rotate("scenario-enc", true));
        assertEquals("pending", e.parameter());
    }

    @Test
    void rotationPeriod_rotatesWhenDue() throws Exception {
        admin.createKey("periodic", Purpose.ENCRYPT, null, "", List.of(), Duration.ofDays(90), null);
        lifecycle.sweep();
        assertEquals(1, admin.describe("periodic").primaryVersion());
        clock.advance(Duration.ofDays(90));
        lifecycle.sweep();
        KeyRecord k = admin.describe("periodic");
        assertEquals(2, k.primaryVersion());
        assertEquals(clock.instant().plus(Duration.ofDays(90)), k.nextRotation());
    }

    @Test
    void usageLimit_requestsRotation_persistsCount_andRotates() throws Exception {
        admin.createKey("busy", Purpose.ENCRYPT, null, "", List.of());
        int before = rotationRequests.get();
        crypto.generateDataKeys("busy", CTX, 32, 64); // the test meter's limit is 64
        assertTrue(rotationRequests.get() > before, "reaching the limit asks for rotation");
        assertTrue(admin.describe("busy").primary().encryptionsReserved() >= 64, "the count is persisted");
        lifecycle.sweep();
        assertEquals(2, admin.describe("busy").primaryVersion());
        assertEquals(2, crypto.encrypt("busy", new byte[1], CTX).version());
    }

    @Test
    void usageHardLimit_refusesToEncryptUntilRotated() throws Exception {
        admin.createKey("overused", Purpose.ENCRYPT, null, "", List.of());
        crypto.generateDataKeys("overused", CTX, 32, 128); // exactly the hard limit (twice 64)
        var e = assertThrows(KmsError.KeyVersionUnusable.class, () -> crypto.encrypt("overused", new byte[1], CTX));
        assertTrue(e.getMessage().contains("rotated"), e.getMessage());
        lifecycle.rotate("overused", false);
        assertEquals(2, crypto.encrypt("overused", new byte[1], CTX).version());
    }

    @Test
    void orphanOfOurs_removedAfterGrace_foreignObjectKept() throws Exception {
        ObjectId ours = ObjectId.random();
        ObjectId foreign = ObjectId.random();
        enclave.generate(ours, KeyAlgorithm.AES_256_GCM, KeyLifecycle.label("crashed", 2, ours));
        enclave.generate(foreign, KeyAlgorithm.AES_256_GCM, "someone-else");
        lifecycle.sweep();
        assertTrue(onToken(ours), "kept during the grace period");
        clock.advance(Duration.ofHours(25));
        lifecycle.sweep();
        assertFalse(onToken(ours), "removed after the grace period");
        assertTrue(onToken(foreign), "not ours: never removed");
        enclave.destroy(foreign);
    }

    @Test
    void reEncrypt_toAnotherKey_andAlreadyCurrent() throws Exception {
        admin.createKey("source", Purpose.ENCRYPT, null, "", List.of());
        admin.createKey("target", Purpose.ENCRYPT, null, "", List.of());
        byte[] ct = crypto.encrypt("source", bytes("move me"), CTX).ciphertext();
        CryptoService.ReEncrypted same = crypto.reEncrypt(ct, CTX, null, null, false);
        assertFalse(same.rewrapped(), "already on the primary");
        assertArrayEquals(ct, same.ciphertext());
        CryptoService.ReEncrypted moved = crypto.reEncrypt(ct, CTX, "target", null, false);
        assertTrue(moved.rewrapped());
        assertEquals("target", moved.key());
        assertEquals("move me", decrypt(moved.ciphertext()));
        EncryptionContext other = EncryptionContext.of(Map.of("model", "llama-4"));
        CryptoService.ReEncrypted recontext = crypto.reEncrypt(ct, CTX, null, other, false);
        assertTrue(recontext.rewrapped(), "a new context is a rewrap even on the primary");
        try (var d = crypto.decrypt(recontext.ciphertext(), other)) {
            assertEquals("move me", new String(d.plaintext().reveal(), StandardCharsets.UTF_8));
        }
        byte[] garbage = ct.clone();
        garbage[garbage.length - 1] ^= 1;
        assertThrows(KmsError.DecryptionFailed.class, () -> crypto.reEncrypt(garbage, CTX, null, null, false),
                "garbage is never 'already current'");
    }
}
