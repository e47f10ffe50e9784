package dev.enclavekms.service;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.format.Envelope;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.SqliteRegistryStore;
import dev.enclavekms.testing.MutableClock;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The daemon's own keys (reserved names such as {@code _audit/hmac}) on a real token: made
 * once by {@link KeyAdmin#ensureInternalKey}, and neither creatable, usable nor changeable
 * by callers through any service method.
 */
class InternalKeysTest {
    @TempDir
    static Path dir;
    static TestTokens.TestToken token;
    static Pkcs11Enclave enclave;
    static SqliteRegistryStore registry;
    static KeyAdmin admin;
    static KeyLifecycle lifecycle;
    static CryptoService crypto;
    static KeyRecord hmac;
    static KeyRecord signing;

    @BeforeAll
    static void setUp() throws Exception {
        token = TestTokens.fresh("internal-keys");
        enclave = token.open();
        registry = SqliteRegistryStore.open(dir.resolve("registry.db"));
        MutableClock clock = new MutableClock(Instant.parse("2026-11-22T00:00:00Z"));
        admin = new KeyAdmin(enclave, registry, clock);
        UsageMeter usage = new UsageMeter(registry, 64, () -> { });
        lifecycle = new KeyLifecycle(enclave, registry, clock, usage, Duration.ofHours(24), PausePoints.NONE);
        hmac = admin.ensureInternalKey("_audit/hmac", Purpose.AUDIT, KeyAlgorithm.HMAC_SHA256, "audit HMAC");
        signing = admin.ensureInternalKey("_audit/signing", Purpose.AUDIT, KeyAlgorithm.EC_P256_SHA256, "audit signing");
        crypto = new CryptoService(enclave, registry, KeyHealth.reconcile(enclave, registry.list()), usage);
    }

    @AfterAll
    static void tearDown() {
        registry.close();
        enclave.close();
    }

    @Test
    void ensureInternalKey_calledAgain_returnsTheSameKeyWithoutMakingAnother() throws Exception {
        KeyRecord again = admin.ensureInternalKey("_audit/hmac", Purpose.AUDIT, KeyAlgorithm.HMAC_SHA256, "audit HMAC");

        assertEquals(hmac.primary().objectId(), again.primary().objectId());
        long onToken = enclave.list().stream().filter(o -> o.label().startsWith("enclave-kms:_audit/hmac:")).count();
        assertEquals(1, onToken);
    }

    @Test
    void ensureInternalKey_registryHasItWithAnotherAlgorithm_throwsInternal() {
        assertThrows(KmsError.Internal.class, () -> admin.ensureInternalKey("_audit/hmac", Purpose.AUDIT,
                KeyAlgorithm.EC_P256_SHA256, "wrong"));
    }

    @Test
    void internalKeys_reconciledOnToken_soundAndNoOrphans() throws Exception {
        KeyHealth health = KeyHealth.reconcile(enclave, registry.list());

        assertEquals(List.of(), health.orphans());
        assertEquals(List.of(), health.missing());
        assertTrue(health.refusal(hmac.primary().objectId()).isEmpty(), "HMAC key refused");
        assertTrue(health.refusal(signing.primary().objectId()).isEmpty(), "signing key refused");
    }

    @Test
    void createKey_reservedNameOrAuditPurpose_refused() {
        KmsError.InvalidParameter name = assertThrows(KmsError.InvalidParameter.class,
                () -> admin.createKey("_audit/mine", Purpose.ENCRYPT, null, null, List.of()));
        assertTrue(name.getMessage().contains("reserved"), name.getMessage());
        KmsError.InvalidParameter purpose = assertThrows(KmsError.InvalidParameter.class,
                () -> admin.createKey("mine", Purpose.AUDIT, KeyAlgorithm.HMAC_SHA256, null, List.of()));
        assertEquals("purpose", purpose.parameter());
        KmsError.InvalidParameter algorithm = assertThrows(KmsError.InvalidParameter.class,
                () -> admin.createKey("mine", Purpose.ENCRYPT, KeyAlgorithm.HMAC_SHA256, null, List.of()));
        assertEquals("algorithm", algorithm.parameter());
    }

    @Test
    void dataPlane_internalKeyNamed_refused() {
        EncryptionContext none = EncryptionContext.of(null);
        assertThrows(KmsError.InvalidParameter.class, () -> crypto.generateDataKey("_audit/hmac", none, 32));
        assertThrows(KmsError.InvalidParameter.class, () -> crypto.encrypt("_audit/hmac", new byte[1], none));
        assertThrows(KmsError.InvalidParameter.class, () -> crypto.sign("_audit/signing", new byte[1], null));
        assertThrows(KmsError.InvalidParameter.class, () -> crypto.publicKey("_audit/signing", null));
        assertThrows(KmsError.InvalidParameter.class, () -> crypto.publicKeys("_audit/signing"));
        // An envelope that names an internal key: for the caller, no such key exists.
        byte[] forged = new Envelope("_audit/hmac", 1, Envelope.SealingScheme.AES_256_GCM, new byte[12], new byte[16])
                .encode();
        KmsError.KeyNotFound e = assertThrows(KmsError.KeyNotFound.class, () -> crypto.decrypt(forged, none));
        assertEquals("_audit/hmac", e.key());
    }

    @Test
    void lifecycle_internalKeyNamed_refusedAndUnchanged() throws Exception {
        for (LifecycleCall call : List.<LifecycleCall>of(
                () -> lifecycle.rotate("_audit/signing", false),
                () -> lifecycle.disable("_audit/signing", 1),
                () -> lifecycle.revoke("_audit/hmac", 1),
                () -> lifecycle.scheduleDestruction("_audit/hmac", 1, 7),
                () -> lifecycle.updatePolicy("_audit/hmac", Duration.ofDays(1), null))) {
            KmsError.InvalidParameter e = assertThrows(KmsError.InvalidParameter.class, call::run);
            assertTrue(e.getMessage().contains("daemon's own"), e.getMessage());
        }
        assertEquals(hmac, admin.describe("_audit/hmac"));
        assertEquals(signing, admin.describe("_audit/signing"));
    }

    @FunctionalInterface
    private interface LifecycleCall {
        void run() throws KmsError;
    }
}
