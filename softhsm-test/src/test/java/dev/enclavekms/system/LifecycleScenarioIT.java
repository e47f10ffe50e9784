package dev.enclavekms.system;

import dev.enclavekms.client.Ciphertext;
import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.KeyDescription;
import dev.enclavekms.client.KeyVersionDestroyedException;
import dev.enclavekms.client.KeyVersionInfo;
import dev.enclavekms.client.KeyVersionUnusableException;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.PublicKeyInfo;
import dev.enclavekms.client.PublicKeys;
import dev.enclavekms.client.ReEncrypted;
import dev.enclavekms.client.Signature;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The key lifecycle through a real daemon process on its own SoftHSM token, driven by the
 * Java client over the socket, with the daemon's clock moved by a file
 * ({@code --test-clock-file}) and its sweep running every second.
 *
 * <p>The first test is Vault's transit rotation scenario carried to destruction: v1..v4,
 * disable and enable v2, revoke v3 and re-encrypt its data (the test runs as root, which
 * holds the re-encryption grant), schedule, cancel and schedule v1 again, move time past
 * the waiting period, and see the object gone from the token with pkcs11-tool and v1's
 * ciphertexts fail with the distinct "destroyed" error. Then a PENDING signing version
 * published before its first signature, and rotation at a usage limit.
 */
class LifecycleScenarioIT {
    private static final Map<String, String> CONTEXT = Map.of("model", "llama-3-8b");

    @TempDir
    static Path dir;
    static DaemonProcess daemon;
    static Path clockFile;

    @BeforeAll
    static void start() throws Exception {
        clockFile = dir.resolve("clock-offset");
        setClockOffset(Duration.ZERO);
        daemon = DaemonProcess.start(dir, "--test-clock-file", clockFile.toString(), "--test-sweep-interval", "1",
                "--test-rotation-limit", "50");
    }

    @AfterAll
    static void stop() throws Exception {
        daemon.close();
    }

    /** Moves the daemon's clock: written to a temporary file and renamed, so it never reads half a number. */
    /** Whether one record (line) of the daemon's audit files holds every fragment (keys are sorted: version is last). */
    static boolean auditHas(String... fragments) throws java.io.IOException {
        try (var files = java.nio.file.Files.walk(daemon.stateDir().resolve("audit"))) {
            for (Path f : files.filter(java.nio.file.Files::isRegularFile).toList()) {
                for (String line : java.nio.file.Files.readAllLines(f)) {
                    if (java.util.Arrays.stream(fragments).allMatch(line::contains)) return true;
                }
            }
        }
        return false;
    }

    static void setClockOffset(Duration offset) throws Exception {
        Path tmp = clockFile.resolveSibling(clockFile.getFileName() + ".tmp");
        Files.writeString(tmp, Long.toString(offset.toSeconds()));
        Files.move(tmp, clockFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private static KmsClient client() throws Exception {
        return KmsClient.connect(daemon.socket());
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String decrypt(KmsClient kms, byte[] ciphertext) throws Exception {
        return new String(kms.decrypt(ciphertext, CONTEXT).plaintext(), StandardCharsets.UTF_8);
    }

    private static KeyVersionInfo version(KeyDescription k, int v) {
        return k.version(v).orElseThrow(() -> new AssertionError(k.name() + " has no version " + v));
    }

    @Test
    void vaultStyleScenario_disableEnableRevokeReEncryptScheduleCancelDestroy() throws Exception {
        try (KmsClient kms = client()) {
            kms.createKey("vault", "ENCRYPT");
            List<byte[]> ct = new ArrayList<>();
            ct.add(null); // versions count from 1
            for (int v = 1; v <= 4; v++) {
                if (v > 1) assertEquals(v, kms.rotateKey("vault").primaryVersion());
                Ciphertext c = kms.encrypt("vault", bytes("secret " + v), CONTEXT);
                assertEquals(v, c.version(), "encrypt uses the primary, the newest version");
                ct.add(c.ciphertext());
            }
            for (int v = 1; v <= 4; v++) assertEquals("secret " + v, decrypt(kms, ct.get(v)), "old versions decrypt");

            // Disable v2: its ciphertexts fail, the others decrypt; enable it: they decrypt again.
            assertEquals("DISABLED", version(kms.disableKeyVersion("vault", 2), 2).state());
            var disabled = assertThrows(KeyVersionUnusableException.class, () -> decrypt(kms, ct.get(2)));
            assertEquals(2, disabled.version());
            assertEquals("DISABLED", disabled.state());
            assertEquals("secret 1", decrypt(kms, ct.get(1)));
            assertEquals("secret 3", decrypt(kms, ct.get(3)));
            assertEquals("secret 4", decrypt(kms, ct.get(4)));
            kms.enableKeyVersion("vault", 2);
            assertEquals("secret 2", decrypt(kms, ct.get(2)));

            // Revoke v3: ordinary decryption refused; ReEncrypt, as root with the grant, moves it to v4.
            kms.revokeKeyVersion("vault", 3);
            var revoked = assertThrows(KeyVersionUnusableException.class, () -> decrypt(kms, ct.get(3)));
            assertEquals("REVOKED", revoked.state());
            ReEncrypted moved = kms.reEncrypt(ct.get(3), CONTEXT);
            assertTrue(moved.rewrapped());
            assertEquals(3, moved.sourceVersion());
            assertEquals(4, moved.version(), "re-encryption yields a ciphertext of the primary");
            assertEquals("secret 3", decrypt(kms, moved.ciphertext()));

            // Schedule v1, cancel (back to DISABLED, not ENABLED), schedule again with the minimum wait.
            KeyDescription k = kms.scheduleKeyVersionDestruction("vault", 1, null);
            assertEquals("DESTROY_SCHEDULED", version(k, 1).state());
            Instant due = version(k, 1).destroyAt();
            assertTrue(due.isAfter(Instant.now().plus(Duration.ofDays(29))), "the default wait is 30 days: " + due);
            var scheduled = assertThrows(KeyVersionUnusableException.class, () -> decrypt(kms, ct.get(1)));
            assertEquals("DESTROY_SCHEDULED", scheduled.state());
            assertTrue(scheduled.getMessage().contains(due.toString()), "says when: " + scheduled.getMessage());
            assertEquals("DISABLED", version(kms.cancelKeyVersionDestruction("vault", 1), 1).state());
            assertEquals("DISABLED", assertThrows(KeyVersionUnusableException.class,
                    () -> decrypt(kms, ct.get(1))).state());
            kms.scheduleKeyVersionDestruction("vault", 1, 7);
            String v1Object = version(kms.describeKey("vault"), 1).objectId();
            assertTrue(TokenObjects.has(daemon, v1Object), "the object stays during the waiting period");

            // Past the waiting period, the sweep (every second) destroys the object.
            setClockOffset(Duration.ofDays(8));
            Await.until("the sweep to destroy vault v1", Duration.ofSeconds(30),
                    () -> version(kms.describeKey("vault"), 1).state().equals("DESTROYED"));
            KeyDescription after = kms.describeKey("vault");
            assertEquals(4, after.primaryVersion());
            String listing = TokenObjects.list(daemon);
            assertFalse(TokenObjects.hasId(listing, v1Object), "v1's object is gone from the token:\n" + listing);
            for (int v = 2; v <= 4; v++) {
                assertTrue(TokenObjects.hasId(listing, version(after, v).objectId()), "v" + v + " is kept:\n" + listing);
            }
            var destroyed = assertThrows(KeyVersionDestroyedException.class, () -> decrypt(kms, ct.get(1)));
            assertEquals(1, destroyed.version());
            assertEquals(version(after, 1).destroyAt(), destroyed.destroyed(), "the tombstone keeps when");
            // The sweep acted on its own: the audit log has the daemon's record of it.
            Await.until("the destruction of vault v1 in the audit log", Duration.ofSeconds(10), () -> auditHas(
                    "\"type\":\"lifecycle\"", "\"event\":\"destroyed\"", "\"key\":\"vault\"", "\"version\":1}",
                    "\"detail\":\"" + v1Object + "\""));
            assertEquals("secret 2", decrypt(kms, ct.get(2)));
            assertEquals("secret 4", decrypt(kms, ct.get(4)));
            assertEquals("secret 3", decrypt(kms, moved.ciphertext()));
            assertEquals("REVOKED", assertThrows(KeyVersionUnusableException.class,
                    () -> decrypt(kms, ct.get(3))).state());
            assertThrows(KeyVersionDestroyedException.class, () -> kms.reEncrypt(ct.get(1), CONTEXT),
                    "not even re-encryption brings a destroyed version back");
        }
    }

    @Test
    void pendingSigningVersion_publishedBeforeItsFirstSignature_thenPromoted() throws Exception {
        try (KmsClient kms = client()) {
            kms.createKey("release", "SIGN", "EC_P256_SHA256", null, null);
            byte[] message = bytes("model card v1");
            Signature s1 = kms.sign("release", message);
            assertEquals(1, s1.version());

            KeyDescription k = kms.rotateKey("release", true);
            assertEquals(1, k.primaryVersion(), "a PENDING rotation leaves the primary alone");
            assertEquals("PENDING", version(k, 2).state());
            PublicKeys published = kms.getPublicKeys("release");
            assertEquals(List.of(1, 2), published.versions().stream().map(PublicKeys.Version::version).toList());
            assertEquals(List.of("ENABLED", "PENDING"), published.versions().stream().map(PublicKeys.Version::state).toList());
            assertEquals(1, published.primary().orElseThrow().version());
            assertEquals(1, kms.sign("release", message).version(), "the old primary signs until promotion");

            kms.promoteKeyVersion("release", 2);
            Signature s2 = kms.sign("release", message);
            assertEquals(2, s2.version());
            // A verifier that fetched the keys before the first v2 signature accepts it offline.
            List<PublicKeyInfo> learned = published.publicKeyInfos();
            assertTrue(verifyLocally(learned.get(1), message, s2.signature()), "v2 verifies with the early PEM");
            assertTrue(verifyLocally(learned.get(0), message, s1.signature()), "v1 still verifies");
            assertTrue(kms.verify("release", 1, s1.signature(), message));
            assertTrue(kms.verify("release", 2, s2.signature(), message));
            assertEquals(2, kms.getPublicKeys("release").primary().orElseThrow().version());
        }
    }

    private static boolean verifyLocally(PublicKeyInfo key, byte[] message, byte[] signature) throws Exception {
        java.security.Signature v = java.security.Signature.getInstance("SHA256withECDSA");
        v.initVerify(key.toPublicKey());
        v.update(message);
        return v.verify(signature);
    }

    @Test
    void usageLimit_rotatesThroughTheDaemon_andEarlierDataKeysStillDecrypt() throws Exception {
        try (KmsClient kms = client()) {
            kms.createKey("busy", "ENCRYPT");
            List<DataKey> firstVersion = new ArrayList<>();
            DataKey rotated = null;
            // The daemon's limit is 50 (--test-rotation-limit): at 50 it asks its sweep to
            // rotate; at 100 it refuses until rotated. Bounded: well past both.
            for (int i = 0; i < 300 && rotated == null; i++) {
                try {
                    DataKey dk = kms.generateDataKey("busy", CONTEXT);
                    if (dk.version() == 1) {
                        firstVersion.add(dk);
                    } else {
                        rotated = dk;
                    }
                } catch (KeyVersionUnusableException hardLimit) {
                    assertEquals(1, hardLimit.version(), hardLimit.getMessage());
                    Await.until("rotation of 'busy' after its usage limit", Duration.ofSeconds(30),
                            () -> kms.describeKey("busy").primaryVersion() > 1);
                }
            }
            assertTrue(rotated != null, "the primary changed within 300 data keys");
            Await.until("the automatic rotation of busy in the audit log", Duration.ofSeconds(10), () -> auditHas(
                    "\"type\":\"lifecycle\"", "\"event\":\"rotated\"", "\"key\":\"busy\"", "\"version\":2}",
                    "\"detail\":\"usage_limit\""));
            assertEquals(2, rotated.version());
            assertTrue(firstVersion.size() >= 50, "v1 made at least its limit of 50: " + firstVersion.size());
            assertTrue(firstVersion.size() <= 100, "and never more than the hard limit: " + firstVersion.size());
            KeyDescription k = kms.describeKey("busy");
            assertEquals(2, k.primaryVersion());
            assertTrue(version(k, 1).encryptions() >= firstVersion.size(), "the count is persisted: " + version(k, 1));
            for (DataKey dk : firstVersion) {
                assertArrayEquals(dk.plaintext(), kms.decrypt(dk.ciphertext(), CONTEXT).plaintext());
            }
            assertArrayEquals(rotated.plaintext(), kms.decrypt(rotated.ciphertext(), CONTEXT).plaintext());
        }
    }
}
