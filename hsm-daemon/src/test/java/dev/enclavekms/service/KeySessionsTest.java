package dev.enclavekms.service;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.SqliteRegistryStore;
import dev.enclavekms.testing.MutableClock;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The session store in process, on a real SoftHSM token and a {@link MutableClock}: expiry
 * by the sweep and across a restart, and the chunk format's integrity — a reordered,
 * truncated, re-flagged or transplanted chunk is never returned as material.
 */
class KeySessionsTest {
    @TempDir
    static Path dir;
    static TestTokens.TestToken token;
    static Pkcs11Enclave enclave;
    static SqliteRegistryStore registry;
    static ObjectId wrap;
    static final MutableClock clock = new MutableClock(Instant.parse("2026-11-22T00:00:00Z"));
    static final List<KeySessions.Ended> ended = new ArrayList<>();
    static final Caller caller = Caller.system();

    @BeforeAll
    static void setUp() throws Exception {
        token = TestTokens.fresh("key-sessions");
        enclave = token.open();
        registry = SqliteRegistryStore.open(dir.resolve("registry.db"));
        KeyAdmin admin = new KeyAdmin(enclave, registry, clock);
        wrap = admin.ensureInternalKey(KeySessions.WRAP_KEY, Purpose.ENCRYPT, KeyAlgorithm.AES_256_GCM, "sessions")
                .primary().objectId();
    }

    @AfterAll
    static void tearDown() {
        registry.close();
        enclave.close();
    }

    static KeySessions store(Path where) throws Exception {
        return KeySessions.open(enclave, wrap, where, clock, KeySessions.Limits.DEFAULT, ended::add);
    }

    static byte[] read(KeySessions s, String id, String name) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (KeySessions.MaterialReader r = s.read(caller, id, name)) {
            while (r.hasNext()) out.write(r.next());
        }
        return out.toByteArray();
    }

    static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (i * 31 + seed);
        return b;
    }

    /** Three chunks of 100 bytes each, sealed. */
    static String threeChunks(KeySessions s, String name) throws Exception {
        String id = s.open(caller, Duration.ofMinutes(10)).id();
        for (int i = 0; i < 3; i++) {
            s.put(caller, id, name, bytes(100, i), i * 100L, i == 2);
        }
        return id;
    }

    static Path blob(Path where, String id, String name) {
        return where.resolve("material").resolve(id).resolve(name + ".blob");
    }

    @Test
    void expiry_sweepShredsKeyRecordThenMaterial_andRecordsTheEnd() throws Exception {
        Path where = dir.resolve("expiry");
        KeySessions s = store(where);
        String id = s.open(caller, Duration.ofSeconds(30)).id();
        s.put(caller, id, "evk", bytes(10, 1), 0, true);
        assertTrue(Files.exists(where.resolve("keys").resolve(id + ".json")));
        clock.advance(Duration.ofSeconds(29));
        s.sweep();
        assertArrayEquals(bytes(10, 1), read(s, id, "evk"));
        clock.advance(Duration.ofSeconds(1));
        s.sweep();
        assertFalse(Files.exists(where.resolve("keys").resolve(id + ".json")));
        assertFalse(Files.exists(where.resolve("material").resolve(id)));
        assertThrows(KmsError.SessionNotFound.class, () -> read(s, id, "evk"));
        assertTrue(ended.contains(new KeySessions.Ended(id, "default", "expired")), ended.toString());
    }

    @Test
    void restart_keepsLiveSessions_andShredsThoseThatExpiredMeanwhile() throws Exception {
        Path where = dir.resolve("restart");
        KeySessions before = store(where);
        String shortLived = before.open(caller, Duration.ofSeconds(60)).id();
        String longLived = before.open(caller, Duration.ofHours(1)).id();
        before.put(caller, shortLived, "a", bytes(5, 2), 0, true);
        before.put(caller, longLived, "a", bytes(5, 3), 0, false);
        clock.advance(Duration.ofSeconds(61));
        KeySessions after = store(where);
        assertFalse(Files.exists(where.resolve("material").resolve(shortLived)));
        assertThrows(KmsError.SessionNotFound.class, () -> after.put(caller, shortLived, "a", new byte[1], 5, true));
        // The unsealed blob continues where it stopped, with the key unwrapped again.
        after.put(caller, longLived, "a", bytes(5, 4), 5, true);
        byte[] expected = new byte[10];
        System.arraycopy(bytes(5, 3), 0, expected, 0, 5);
        System.arraycopy(bytes(5, 4), 0, expected, 5, 5);
        assertArrayEquals(expected, read(after, longLived, "a"));
    }

    @Test
    void reorderedChunks_areRefused() throws Exception {
        Path where = dir.resolve("reorder");
        KeySessions s = store(where);
        String id = threeChunks(s, "m");
        Path f = blob(where, id, "m");
        byte[] all = Files.readAllBytes(f);
        int rec = all.length / 3; // equal chunks: equal records
        byte[] swapped = all.clone();
        System.arraycopy(all, rec, swapped, 0, rec);
        System.arraycopy(all, 0, swapped, rec, rec);
        Files.write(f, swapped);
        KmsError.Internal e = assertThrows(KmsError.Internal.class, () -> read(s, id, "m"));
        assertTrue(e.getMessage().contains("corrupt"), e.getMessage());
    }

    @Test
    void finalFlagMovedOrFileTruncated_isRefused() throws Exception {
        Path where = dir.resolve("truncate");
        KeySessions s = store(where);
        String id = threeChunks(s, "m");
        Path f = blob(where, id, "m");
        byte[] all = Files.readAllBytes(f);
        int rec = all.length / 3;
        // The second chunk claims to be the last one.
        byte[] flagged = all.clone();
        flagged[rec + 4] = 1;
        Files.write(f, Arrays.copyOf(flagged, 2 * rec));
        assertThrows(KmsError.Internal.class, () -> read(s, id, "m"));
        // The flag back in its place but the last chunk cut off: the reader knows three chunks.
        Files.write(f, Arrays.copyOf(all, 2 * rec));
        assertThrows(KmsError.Internal.class, () -> read(s, id, "m"));
        // After a restart, the blob without its final chunk is not sealed, so not readable.
        KeySessions after = store(where);
        assertThrows(KmsError.SessionMaterialNotFound.class, () -> read(after, id, "m"));
    }

    @Test
    void chunkTransplantedToAnotherSessionOrName_isRefused() throws Exception {
        Path where = dir.resolve("transplant");
        KeySessions s = store(where);
        String a = threeChunks(s, "m");
        String b = threeChunks(s, "m");
        Files.copy(blob(where, a, "m"), blob(where, b, "m"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThrows(KmsError.Internal.class, () -> read(s, b, "m"));
        // Same session, other name (the AAD names the blob).
        String c = threeChunks(s, "x");
        s.put(caller, c, "y", bytes(100, 0), 0, false);
        s.put(caller, c, "y", bytes(100, 1), 100, false);
        s.put(caller, c, "y", bytes(100, 2), 200, true);
        Files.copy(blob(where, c, "x"), blob(where, c, "y"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThrows(KmsError.Internal.class, () -> read(s, c, "y"));
        assertArrayEquals(bytes(100, 0), Arrays.copyOf(read(s, c, "x"), 100));
    }

    @Test
    void limits_ttlChunkAndSessionSize_refusedWithTheirErrors() throws Exception {
        KeySessions s = KeySessions.open(enclave, wrap, dir.resolve("limits"), clock,
                KeySessions.Limits.DEFAULT.withMaxTtl(Duration.ofMinutes(5)).withMaxSessionBytes(150), ended::add);
        assertThrows(KmsError.InvalidParameter.class, () -> s.open(caller, Duration.ofMinutes(6)));
        assertEquals(300, s.open(caller, null).ttlSeconds()); // the default is capped by the maximum
        String id = s.open(caller, Duration.ofMinutes(5)).id();
        assertThrows(KmsError.InvalidParameter.class,
                () -> s.put(caller, id, "m", new byte[KeySessions.MAX_CHUNK_BYTES + 1], 0, false));
        assertThrows(KmsError.InvalidParameter.class, () -> s.put(caller, id, "../etc", new byte[1], 0, true));
        s.put(caller, id, "m", new byte[100], 0, true);
        assertThrows(KmsError.SessionLimitExceeded.class, () -> s.put(caller, id, "n", new byte[51], 0, true));
        assertThrows(IllegalArgumentException.class,
                () -> KeySessions.Limits.DEFAULT.withMaxTtl(KeySessions.HARD_MAX_TTL.plusSeconds(1)));
    }

    @Test
    void malformedOrUnknownId_isSessionNotFound() {
        assertThrows(KmsError.SessionNotFound.class, () -> store(dir.resolve("ids")).close(caller, "../../keys"));
        assertThrows(KmsError.SessionNotFound.class, () -> store(dir.resolve("ids")).close(caller, "ab".repeat(24)));
    }

    @Test
    void tenantSessionMaxTtl_fromThePolicy_boundsOpenSession() throws Exception {
        dev.enclavekms.policy.Policy policy = dev.enclavekms.policy.PolicyParser.parse("""
                version: 1
                tenants:
                  acme:
                    session_max_ttl_seconds: 600
                    members: ["user:alice"]
                    grants:
                      - name: sessions
                        methods: ["Kms.OpenSession"]
                """, "test policy");
        Caller alice = Caller.of(policy, dev.enclavekms.policy.Identity.unix("alice", "alice", null, null, 1),
                "Kms.OpenSession");
        KeySessions s = store(dir.resolve("sessions-ttl"));
        assertEquals(600, s.open(alice, null).ttlSeconds(), "the default is cut to the tenant's maximum");
        assertEquals(600, s.open(alice, java.time.Duration.ofSeconds(600)).ttlSeconds());
        var e = org.junit.jupiter.api.Assertions.assertThrows(KmsError.InvalidParameter.class,
                () -> s.open(alice, java.time.Duration.ofSeconds(601)));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("session_max_ttl_seconds"), e.getMessage());
    }
}
