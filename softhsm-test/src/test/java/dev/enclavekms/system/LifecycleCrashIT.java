package dev.enclavekms.system;

import dev.enclavekms.client.Ciphertext;
import dev.enclavekms.client.KeyDescription;
import dev.enclavekms.client.KeyVersionDestroyedException;
import dev.enclavekms.client.KeyVersionInfo;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.Signature;
import dev.enclavekms.client.Status;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real daemon killed with SIGKILL between the steps of rotate and destroy, then started
 * again on the same token and registry (docs/lifecycle.md, "Crash safety").
 *
 * <p>Each test starts a daemon on a fresh state directory, makes keys and records
 * ciphertexts and signatures; restarts it with {@code --test-pause-at POINT}, which makes
 * the daemon print {@code PAUSED AT POINT} and stop for good at that step; triggers the
 * operation (RotateKey from another thread, whose call never returns; or a destruction
 * made due by moving the daemon's clock); kills it; and restarts it normally. Then: the
 * daemon starts, every key has exactly one ENABLED primary and versions 1..n, nothing
 * registered is missing, every recorded ciphertext decrypts and every signature verifies —
 * except those of a version that was being destroyed, which fail with
 * {@code KeyVersionDestroyed} and nothing else. pkcs11-tool reads the token between the
 * kill and the restart, to show that the crash really fell between the two steps.
 */
class LifecycleCrashIT {
    private static final Map<String, String> CONTEXT = Map.of("tenant", "crash-test");

    @TempDir
    Path dir;
    DaemonProcess daemon;
    Path clockFile;

    private record Sealed(String key, int version, byte[] plaintext, byte[] ciphertext) {
    }

    private final List<Sealed> sealed = new ArrayList<>();
    private final List<Signature> signatures = new ArrayList<>();
    private final byte[] message = "release manifest".getBytes(StandardCharsets.UTF_8);

    @AfterEach
    void stop() throws Exception {
        if (daemon != null) daemon.close();
    }

    private void setClockOffset(Duration offset) throws Exception {
        Path tmp = clockFile.resolveSibling(clockFile.getFileName() + ".tmp");
        Files.writeString(tmp, Long.toString(offset.toSeconds()));
        Files.move(tmp, clockFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private KmsClient client() throws Exception {
        return KmsClient.connect(daemon.socket());
    }

    /** A fresh daemon with "enc" at v2 (data under v1 and v2) and "sig" (one signature); then armed at {@code point}. */
    private void startArmed(String point) throws Exception {
        clockFile = dir.resolve("clock-offset");
        setClockOffset(Duration.ZERO);
        daemon = DaemonProcess.start(dir);
        try (KmsClient kms = client()) {
            kms.createKey("enc", "ENCRYPT");
            kms.createKey("sig", "SIGN", "EC_P256_SHA256", null, null);
            encrypt(kms, 1);
            kms.rotateKey("enc");
            encrypt(kms, 2);
            signatures.add(kms.sign("sig", message));
        }
        daemon.restart("--test-pause-at", point, "--test-clock-file", clockFile.toString(), "--test-sweep-interval", "1");
        try (KmsClient kms = client()) {
            checkInvariants(kms, 0); // the restart itself lost nothing
        }
    }

    private void encrypt(KmsClient kms, int expectedVersion) throws Exception {
        for (int i = 0; i < 3; i++) {
            byte[] plain = ("secret " + expectedVersion + "." + i).getBytes(StandardCharsets.UTF_8);
            Ciphertext c = kms.encrypt("enc", plain, CONTEXT);
            assertEquals(expectedVersion, c.version());
            sealed.add(new Sealed("enc", c.version(), plain, c.ciphertext()));
        }
    }

    /**
     * Calls RotateKey on another thread: with the daemon paused inside the rotation the call
     * never returns; once the daemon is killed it must fail with a broken connection.
     */
    private CompletableFuture<KeyDescription> rotateInBackground(String key) {
        return CompletableFuture.supplyAsync(() -> {
            try (KmsClient kms = client()) {
                return kms.rotateKey(key);
            } catch (Exception e) {
                throw new java.util.concurrent.CompletionException(e);
            }
        });
    }

    private void killAndExpectTheCallLost(CompletableFuture<KeyDescription> call) throws Exception {
        assertFalse(call.isDone(), "the paused daemon must not have answered");
        kill();
        ExecutionException e = assertThrows(ExecutionException.class, () -> call.get(30, TimeUnit.SECONDS));
        assertInstanceOf(IOException.class, e.getCause(), "the caller sees a broken connection, not an answer");
    }

    private void kill() throws Exception {
        assertEquals(137, daemon.kill9(), "killed by SIGKILL (128 + 9)");
        assertFalse(daemon.stderrOfThisStart().contains("stopping"), "no shutdown hook ran: this was a crash");
    }

    /**
     * What must hold after any crash and restart. {@code destroyedVersion} of "enc" (0: none)
     * is the only one whose data may fail, and only with KeyVersionDestroyed.
     */
    private void checkInvariants(KmsClient kms, int destroyedVersion) throws Exception {
        Set<String> objectIds = new HashSet<>();
        for (String name : List.of("enc", "sig")) {
            KeyDescription k = kms.describeKey(name);
            int n = 0;
            int primaries = 0;
            for (KeyVersionInfo v : k.versions()) {
                assertEquals(++n, v.version(), name + ": versions are 1..n in order, none reused: " + k.versions());
                assertTrue(objectIds.add(v.objectId()), name + ": object " + v.objectId() + " used twice");
                if (v.version() == k.primaryVersion()) {
                    primaries++;
                    assertEquals("ENABLED", v.state(), name + ": the primary is ENABLED");
                }
            }
            assertEquals(1, primaries, name + ": exactly one primary among " + k.versions());
        }
        Status status = kms.status();
        assertEquals(List.of(), status.missing(), "no registered version lost its object");
        for (Sealed s : sealed) {
            if (s.version() == destroyedVersion) {
                var e = assertThrows(KeyVersionDestroyedException.class, () -> kms.decrypt(s.ciphertext(), CONTEXT));
                assertEquals(destroyedVersion, e.version());
            } else {
                assertArrayEquals(s.plaintext(), kms.decrypt(s.ciphertext(), CONTEXT).plaintext(),
                        "ciphertext of enc v" + s.version() + " decrypts");
            }
        }
        for (Signature s : signatures) {
            assertTrue(kms.verify(s.key(), s.version(), s.signature(), message), "signature of v" + s.version());
        }
    }

    private static String onlyOrphan(Status status) {
        assertEquals(1, status.orphans().size(), "one orphan: " + status.orphans());
        return status.orphans().getFirst().split(" ")[0];
    }

    @Test
    void killAfterRotationsHardwareStep_orphanReportedAndLaterRemoved_nextRotationUsesANewObject() throws Exception {
        startArmed("rotate.after-hardware");
        CompletableFuture<KeyDescription> call = rotateInBackground("enc");
        daemon.awaitOutput("PAUSED AT rotate.after-hardware", Duration.ofSeconds(30));
        killAndExpectTheCallLost(call);
        String listing = TokenObjects.list(daemon);
        assertTrue(listing.contains("enclave-kms:enc:v3:"), "the new object was made before the kill:\n" + listing);

        // Restarted normally (the clock file kept, to move time past the orphan grace period later).
        daemon.restart("--test-clock-file", clockFile.toString(), "--test-sweep-interval", "1");
        try (KmsClient kms = client()) {
            checkInvariants(kms, 0);
            KeyDescription enc = kms.describeKey("enc");
            assertEquals(2, enc.primaryVersion(), "the rotation did not happen");
            assertEquals(2, enc.versions().size());
            Status status = kms.status();
            String orphan = onlyOrphan(status);
            assertTrue(status.orphans().getFirst().contains("enclave-kms:enc:v3:"), status.orphans().toString());
            assertTrue(TokenObjects.has(daemon, orphan), "kept during the grace period");

            KeyDescription rotated = kms.rotateKey("enc");
            assertTrue(rotated.primaryVersion() >= 3, "a higher or equal number than the orphan's: " + rotated);
            String newObject = rotated.version(rotated.primaryVersion()).orElseThrow().objectId();
            assertNotEquals(orphan, newObject, "a new object, never the orphan");
            encrypt(kms, rotated.primaryVersion());
            checkInvariants(kms, 0);

            // After the grace period (24 h) the sweep removes the orphan, and only it.
            setClockOffset(Duration.ofHours(25));
            Await.until("the sweep to remove orphan " + orphan, Duration.ofSeconds(30),
                    () -> !TokenObjects.has(daemon, orphan));
            assertTrue(TokenObjects.has(daemon, newObject));
            checkInvariants(kms, 0);
        }
    }

    @Test
    void killAfterRotationsRegistryStep_newVersionIsPrimaryAfterRestart() throws Exception {
        startArmed("rotate.after-registry");
        CompletableFuture<KeyDescription> call = rotateInBackground("enc");
        daemon.awaitOutput("PAUSED AT rotate.after-registry", Duration.ofSeconds(30));
        killAndExpectTheCallLost(call);

        daemon.restart();
        try (KmsClient kms = client()) {
            checkInvariants(kms, 0);
            KeyDescription enc = kms.describeKey("enc");
            assertEquals(3, enc.primaryVersion(), "the committed rotation stands although its caller got no answer");
            String v3 = enc.version(3).orElseThrow().objectId();
            assertTrue(TokenObjects.has(daemon, v3));
            assertEquals(List.of(), kms.status().orphans(), "the new version's object is not an orphan");
            encrypt(kms, 3);
            checkInvariants(kms, 0);
        }
    }

    @Test
    void killAfterDestructionsRegistryStep_versionDestroyedAndObjectRemovedAtRestart() throws Exception {
        startArmed("destroy.after-registry");
        String v1;
        try (KmsClient kms = client()) {
            kms.scheduleKeyVersionDestruction("enc", 1, 7);
            v1 = kms.describeKey("enc").version(1).orElseThrow().objectId();
        }
        setClockOffset(Duration.ofDays(8)); // the next sweep (every second) finds v1 due
        daemon.awaitOutput("PAUSED AT destroy.after-registry", Duration.ofSeconds(30));
        kill();
        assertTrue(TokenObjects.has(daemon, v1), "the kill came before C_DestroyObject: v1's object is still there");

        daemon.restart();
        // Checked at once: the sweep that runs before the socket opens has removed the leftover.
        assertFalse(TokenObjects.has(daemon, v1), "v1's object is gone after the restart");
        try (KmsClient kms = client()) {
            KeyDescription enc = kms.describeKey("enc");
            assertEquals("DESTROYED", enc.version(1).orElseThrow().state(), "the registry step stands");
            Status status = kms.status();
            assertEquals(List.of(), status.orphans(), "a destroyed version's leftover is not an orphan");
            checkInvariants(kms, 1);
            assertEquals(2, enc.primaryVersion());
        }
    }
}
