package dev.enclavekms.system;

import dev.enclavekms.client.KeySession;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.PermissionDeniedException;
import dev.enclavekms.client.SessionNotFoundException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ephemeral key sessions against the real daemon (dev mode, SoftHSM, a test clock, a
 * policy with two tenants whose callers are token identities): TTL expiry shreds the key
 * and the material — also while the daemon is down, and files put back after a crash stay
 * unreadable; another tenant's session is exactly a missing one; a 256 MiB blob goes in
 * and comes back with its SHA-256; RevokeSessions ends one tenant's sessions and none of
 * another's; and no blob ever appears in the daemon's output, its audit log, or — in clear
 * — in its session files.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SessionIT {
    static final String POLICY = """
            version: 1
            tenants:
              ops:
                members: %s
                grants:
                  - name: operators
                    methods: ["Kms.*", "Admin.*"]
                    keys: ["*"]
                    all_tenants: true
                    token_admin: true
              acme:
                key_prefixes: ["acme/"]
                members: ["token:acme-a", "token:acme-b"]
                grants:
                  - name: sessions
                    methods: ["Kms.OpenSession", "Kms.PutSessionMaterial", "Kms.GetSessionMaterial",
                              "Kms.CloseSession", "Admin.RevokeSessions"]
              globex:
                key_prefixes: ["globex/"]
                members: ["token:globex-a"]
                grants:
                  - name: sessions
                    methods: ["Kms.OpenSession", "Kms.PutSessionMaterial", "Kms.GetSessionMaterial",
                              "Kms.CloseSession", "Admin.RevokeSessions"]
            """;

    @TempDir
    static Path dir;
    static Path clock;
    static long clockSeconds;
    static DaemonProcess daemon;
    static KmsClient admin;
    static String acmeToken;
    static String acmeToken2;
    static String globexToken;
    /** Every blob the suite stored, for the scan at the end. */
    static final List<byte[]> samples = new ArrayList<>();
    static final SecureRandom random = new SecureRandom();

    @BeforeAll
    static void start() throws Exception {
        clock = dir.resolve("clock");
        setClock(0);
        Path state = Files.createDirectories(dir.resolve("state"));
        String me = System.getProperty("user.name");
        Files.writeString(state.resolve("policy.yaml"),
                POLICY.formatted(me.equals("root") ? "[\"user:root\"]" : "[\"user:root\", \"user:" + me + "\"]"));
        daemon = DaemonProcess.start(dir, List.of("--test-clock-file", clock.toString(), "--test-sweep-interval", "1"));
        admin = KmsClient.connect(daemon.socket());
        acmeToken = admin.createToken("acme-a", Duration.ofDays(30)).token();
        acmeToken2 = admin.createToken("acme-b", Duration.ofDays(30)).token();
        globexToken = admin.createToken("globex-a", Duration.ofDays(30)).token();
    }

    @AfterAll
    static void stop() throws Exception {
        if (admin != null) admin.close();
        if (daemon != null) daemon.close();
    }

    static void setClock(long seconds) throws Exception {
        clockSeconds = seconds;
        Path tmp = dir.resolve("clock.tmp");
        Files.writeString(tmp, Long.toString(seconds));
        Files.move(tmp, clock, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    static KmsClient as(String token) throws Exception {
        KmsClient c = KmsClient.connect(daemon.socket());
        c.authenticate(token);
        return c;
    }

    static byte[] sample(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        samples.add(b);
        return b;
    }

    static Path keyRecord(String id) {
        return daemon.stateDir().resolve("sessions/keys/" + id + ".json");
    }

    static Path material(String id) {
        return daemon.stateDir().resolve("sessions/material/" + id);
    }

    static String missingId() {
        byte[] b = new byte[24];
        random.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    @Test
    @Order(1)
    void smallBlob_putInChunksAndSealed_readsBackOnlyWhenFinal() throws Exception {
        try (KmsClient a = as(acmeToken); KmsClient b = as(acmeToken2)) {
            KeySession s = a.openSession(Duration.ofMinutes(10));
            assertEquals("acme", s.tenant());
            assertTrue(s.id().matches("[0-9a-f]{48}"), s.id());
            byte[] blob = sample(3000);
            assertEquals(1000, a.putSessionMaterial(s.id(), "evk", java.util.Arrays.copyOfRange(blob, 0, 1000), 0, false));
            // Not final yet: not readable.
            assertThrows(dev.enclavekms.client.SessionMaterialNotFoundException.class,
                    () -> a.getSessionMaterial(s.id(), "evk"));
            // Offsets must be contiguous.
            var gap = assertThrows(dev.enclavekms.client.InvalidParameterException.class,
                    () -> a.putSessionMaterial(s.id(), "evk", new byte[1], 1500, false));
            assertTrue(gap.getMessage().contains("offset 1000"), gap.getMessage());
            assertEquals(3000, a.putSessionMaterial(s.id(), "evk", java.util.Arrays.copyOfRange(blob, 1000, 3000), 1000,
                    true));
            // Sealed: cannot change.
            assertThrows(dev.enclavekms.client.InvalidParameterException.class,
                    () -> a.putSessionMaterial(s.id(), "evk", new byte[1], 3000, true));
            // Another caller of the same tenant reads it.
            assertArrayEquals(blob, b.getSessionMaterial(s.id(), "evk"));
            assertThrows(dev.enclavekms.client.SessionMaterialNotFoundException.class,
                    () -> b.getSessionMaterial(s.id(), "nope"));
            // Too long a ttl: refused, not capped silently.
            assertThrows(dev.enclavekms.client.InvalidParameterException.class,
                    () -> a.openSession(Duration.ofHours(4).plusSeconds(1)));
            a.closeSession(s.id());
            assertFalse(Files.exists(keyRecord(s.id())), "key record destroyed on close");
            assertFalse(Files.exists(material(s.id())), "material removed on close");
            assertThrows(SessionNotFoundException.class, () -> b.getSessionMaterial(s.id(), "evk"));
            assertThrows(SessionNotFoundException.class, () -> a.closeSession(s.id()));
        }
    }

    @Test
    @Order(2)
    void otherTenantsSession_isIndistinguishableFromAMissingOne() throws Exception {
        try (KmsClient a = as(acmeToken); KmsClient g = as(globexToken)) {
            KeySession s = a.openSession(null);
            byte[] blob = sample(100);
            a.putSessionMaterial(s.id(), "pk", blob, 0, true);
            String missing = missingId();
            List<ThrowingCall> calls = List.of(
                    id -> g.getSessionMaterial(id, "pk"),
                    id -> g.putSessionMaterial(id, "pk", new byte[] {1}, 100, true),
                    id -> g.putSessionMaterial(id, "other", new byte[] {1}, 0, true),
                    id -> g.closeSession(id));
            for (ThrowingCall call : calls) {
                SessionNotFoundException other = assertThrows(SessionNotFoundException.class, () -> call.run(s.id()));
                SessionNotFoundException none = assertThrows(SessionNotFoundException.class, () -> call.run(missing));
                assertEquals(none.error(), other.error());
                assertEquals(none.getMessage().replace(missing, "ID"), other.getMessage().replace(s.id(), "ID"));
            }
            // Globex may not revoke acme's sessions; acme's session is untouched by all of it.
            assertThrows(PermissionDeniedException.class, () -> g.revokeSessions("acme"));
            assertArrayEquals(blob, a.getSessionMaterial(s.id(), "pk"));
            a.closeSession(s.id());
        }
    }

    @Test
    @Order(3)
    void material256MiB_roundTrip_sha256Matches() throws Exception {
        long size = 256L * 1024 * 1024;
        try (KmsClient a = as(acmeToken)) {
            KeySession s = a.openSession(Duration.ofMinutes(30));
            MessageDigest sent = MessageDigest.getInstance("SHA-256");
            long stored = a.putSessionMaterial(s.id(), "evaluation-keys",
                    new java.security.DigestInputStream(new PseudoRandom(size, 42), sent));
            assertEquals(size, stored);
            MessageDigest received = MessageDigest.getInstance("SHA-256");
            long[] count = {0};
            long read = a.getSessionMaterial(s.id(), "evaluation-keys", new OutputStream() {
                @Override
                public void write(int b) {
                    throw new UnsupportedOperationException();
                }

                @Override
                public void write(byte[] b, int off, int len) {
                    received.update(b, off, len);
                    count[0] += len;
                }
            });
            assertEquals(size, read);
            assertEquals(size, count[0]);
            assertArrayEquals(sent.digest(), received.digest());
            // At rest: the files hold ciphertext (the first bytes of the stream are not there).
            byte[] head = new byte[64];
            new PseudoRandom(size, 42).readNBytes(head, 0, head.length);
            samples.add(head);
            a.closeSession(s.id());
            assertFalse(Files.exists(material(s.id())));
        }
    }

    @Test
    @Order(4)
    void ttlExpiry_shredsKeyAndMaterial_andFilesLeftByACrashStayUnreadable() throws Exception {
        try (KmsClient a = as(acmeToken)) {
            KeySession s = a.openSession(Duration.ofSeconds(60));
            KeySession down = a.openSession(Duration.ofSeconds(60));
            KeySession lives = a.openSession(Duration.ofHours(2));
            byte[] blob = sample(5000);
            a.putSessionMaterial(s.id(), "evk", blob, 0, true);
            a.putSessionMaterial(down.id(), "evk", sample(700), 0, true);
            a.putSessionMaterial(lives.id(), "evk", blob, 0, true);
            assertTrue(Files.exists(keyRecord(s.id())));
            // What a crash (or a backup, or a forensic copy of the disk) would leave: the material.
            Path copy = dir.resolve("copy-" + s.id());
            copyTree(material(s.id()), copy);
            // Ciphertext at rest.
            for (Path f : files(copy)) {
                assertFalse(contains(Files.readAllBytes(f), blob), f + " holds the blob in clear");
            }

            setClock(clockSeconds + 61);
            assertThrows(SessionNotFoundException.class, () -> a.getSessionMaterial(s.id(), "evk"));
            assertFalse(Files.exists(keyRecord(s.id())), "wrapped key destroyed at expiry");
            assertFalse(Files.exists(material(s.id())), "material removed at expiry");
            // The other expired session too, without any call, once the daemon restarts on it.
            daemon.restart();
            assertFalse(Files.exists(keyRecord(down.id())), "expired while down: key destroyed at start");
            assertFalse(Files.exists(material(down.id())), "expired while down: material removed at start");

            // The copied files put back, the daemon restarted on them: without the wrapped key
            // they are nothing. The session does not come back, and the start removes them.
            copyTree(copy, material(s.id()));
            daemon.restart();
            admin.close();
            admin = KmsClient.connect(daemon.socket()); // the old connection died with the old process
            try (KmsClient a2 = as(acmeToken)) {
                assertThrows(SessionNotFoundException.class, () -> a2.getSessionMaterial(s.id(), "evk"));
                assertFalse(Files.exists(material(s.id())), "orphaned material removed at start");
                // The unexpired session survived both restarts with its material.
                assertArrayEquals(blob, a2.getSessionMaterial(lives.id(), "evk"));
                a2.closeSession(lives.id());
            }
            // The expiries are in the audit log; the daemon's own record of each.
            String audit = auditText();
            assertTrue(audit.contains("\"session\":\"" + s.id() + "\""), "expiry of " + s.id() + " audited");
            assertTrue(audit.contains("\"event\":\"expired\""), "expiry audited");
        }
    }

    @Test
    @Order(8)
    void ttlExpiry_withNoCallAtAll_theSweepShredsTheSession() throws Exception {
        try (KmsClient a = as(acmeToken)) {
            KeySession s = a.openSession(Duration.ofSeconds(30));
            a.putSessionMaterial(s.id(), "evk", sample(300), 0, true);
            setClock(clockSeconds + 31);
            Await.until("the sweep shreds " + s.id(), Duration.ofSeconds(30),
                    () -> !Files.exists(keyRecord(s.id())) && !Files.exists(material(s.id())));
            assertThrows(SessionNotFoundException.class, () -> a.getSessionMaterial(s.id(), "evk"));
        }
    }

    @Test
    @Order(5)
    void revokeSessions_endsEveryOneOfTheTenant_andNoneOfAnother() throws Exception {
        try (KmsClient a = as(acmeToken); KmsClient g = as(globexToken)) {
            List<String> acme = new ArrayList<>();
            List<String> globex = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                String id = a.openSession(null).id();
                a.putSessionMaterial(id, "m", sample(64), 0, true);
                acme.add(id);
            }
            for (int i = 0; i < 2; i++) {
                String id = g.openSession(null).id();
                g.putSessionMaterial(id, "m", sample(64), 0, true);
                globex.add(id);
            }
            assertEquals(3, admin.revokeSessions("acme"));
            for (String id : acme) {
                assertThrows(SessionNotFoundException.class, () -> a.getSessionMaterial(id, "m"));
                assertFalse(Files.exists(keyRecord(id)));
                assertFalse(Files.exists(material(id)));
            }
            for (String id : globex) {
                assertEquals(64, g.getSessionMaterial(id, "m").length);
            }
            // A tenant may revoke its own.
            assertEquals(2, g.revokeSessions("globex"));
            assertEquals(0, admin.revokeSessions("acme"));
        }
    }

    @Test
    @Order(6)
    void kmsctlSession_openPutGetClose_roundTripsAFileOfSeveralChunks() throws Exception {
        Path tokenFile = dir.resolve("acme.token");
        Files.writeString(tokenFile, acmeToken);
        byte[] blob = new byte[3 * 1024 * 1024 + 5];
        random.nextBytes(blob);
        samples.add(blob);
        Path in = dir.resolve("blob.in");
        Path out = dir.resolve("blob.out");
        Files.write(in, blob);
        String id = kmsctl("--token-file", tokenFile.toString(), "session", "open", "--ttl", "10m")
                .requireSuccess().stdout().strip();
        assertTrue(id.matches("[0-9a-f]{48}"), id);
        kmsctl("--token-file", tokenFile.toString(), "session", "put", id, "evk", in.toString()).requireSuccess();
        kmsctl("--token-file", tokenFile.toString(), "session", "get", id, "evk", out.toString()).requireSuccess();
        assertArrayEquals(blob, Files.readAllBytes(out));
        // Another tenant: the daemon's error, exit 4, and no file.
        Path globexFile = dir.resolve("globex.token");
        Files.writeString(globexFile, globexToken);
        Path none = dir.resolve("none.out");
        Commands.Result refused = kmsctl("--token-file", globexFile.toString(), "session", "get", id, "evk",
                none.toString());
        assertEquals(4, refused.exit(), refused.stderr());
        assertTrue(refused.stderr().contains("SessionNotFound"), refused.stderr());
        assertFalse(Files.exists(none));
        kmsctl("--token-file", tokenFile.toString(), "session", "close", id).requireSuccess();
        assertTrue(kmsctl("session", "revoke", "acme").requireSuccess().stdout().contains("revoked 0 sessions"));
    }

    @Test
    @Order(7)
    void pythonClient_putBlobAndStreamItBack_sha256Matches() throws Exception {
        String script = """
                import hashlib, io, os, sys
                sys.path.insert(0, sys.argv[2])
                import enclave_kms
                c = enclave_kms.KmsClient(sys.argv[1], timeout=60)
                c.call("dev.enclavekms.Kms.Authenticate", {"token": sys.stdin.read().strip()})
                blob = os.urandom(2 * 1024 * 1024 + 7)
                s = c.open_session(600)["session"]
                assert c.put_session_blob(s, "evk", io.BytesIO(blob)) == len(blob)
                h = hashlib.sha256()
                for chunk in c.get_session_material(s, "evk"):
                    h.update(chunk)
                assert h.digest() == hashlib.sha256(blob).digest()
                c.close_session(s)
                try:
                    list(c.get_session_material(s, "evk"))
                    raise SystemExit("read after close")
                except enclave_kms.SessionNotFound:
                    pass
                print("ok")
                """;
        Path py = dir.resolve("session_client.py");
        Files.writeString(py, script);
        Commands.Result r = Commands.run(List.of("python3", py.toString(), daemon.socket().toString(),
                Commands.repoFile("client-python").toString()), java.util.Map.of(),
                acmeToken.getBytes(StandardCharsets.US_ASCII)).requireSuccess();
        assertEquals("ok", r.stdout().strip());
    }

    static Commands.Result kmsctl(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Commands.repoFile("bin/kmsctl").toString(), "--socket",
                daemon.socket().toString()));
        cmd.addAll(List.of(args));
        return Commands.run(cmd, java.util.Map.of(), null);
    }

    @Test
    @Order(100)
    void secretsScan_noBlobInDaemonOutputOrAuditLog() throws Exception {
        assertFalse(samples.isEmpty());
        String output = daemon.output();
        String audit = auditText();
        // The audit log does record the lifecycle.
        assertTrue(audit.contains("dev.enclavekms.Kms.OpenSession"), "OpenSession audited");
        assertTrue(audit.contains("dev.enclavekms.Kms.PutSessionMaterial"), "PutSessionMaterial audited");
        assertTrue(audit.contains("dev.enclavekms.Admin.RevokeSessions"), "RevokeSessions audited");
        assertFalse(audit.contains("\"data\""), "no data field in any audit record");
        List<String> leaks = new ArrayList<>();
        for (byte[] s : samples) {
            byte[] probe = java.util.Arrays.copyOf(s, Math.min(s.length, 48)); // a base64-aligned prefix
            for (String form : List.of(HexFormat.of().formatHex(probe), Base64.getEncoder().encodeToString(probe),
                    Base64.getUrlEncoder().withoutPadding().encodeToString(probe))) {
                if (output.contains(form)) leaks.add("daemon output holds " + form);
                if (audit.contains(form)) leaks.add("audit log holds " + form);
            }
        }
        // And nothing in clear anywhere under the state directory (registry, sessions, audit).
        for (Path f : files(daemon.stateDir())) {
            byte[] content = Files.readAllBytes(f);
            for (byte[] s : samples) {
                if (contains(content, java.util.Arrays.copyOf(s, Math.min(s.length, 48)))) {
                    leaks.add(f + " holds a blob in clear");
                }
            }
        }
        assertEquals(List.of(), leaks);
        // The log with its session records still verifies.
        Path pem = dir.resolve("audit.pem");
        kmsctl("audit", "public-key", "--out", pem.toString()).requireSuccess();
        kmsctl("audit", "verify", "--daemon", "--public-key", pem.toString(),
                daemon.stateDir().resolve("audit").toString()).requireSuccess();
    }

    // ------------------------------------------------------------------ helpers

    @FunctionalInterface
    interface ThrowingCall {
        void run(String id) throws Exception;
    }

    static String auditText() throws IOException {
        StringBuilder b = new StringBuilder();
        for (Path f : files(daemon.stateDir().resolve("audit"))) {
            b.append(Files.readString(f, StandardCharsets.UTF_8));
        }
        return b.toString();
    }

    static List<Path> files(Path root) throws IOException {
        if (!Files.exists(root)) return List.of();
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(Files::isRegularFile).filter(p -> !p.getFileName().toString().endsWith(".sock")).toList();
        }
    }

    static void copyTree(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        for (Path f : files(from)) {
            Path t = to.resolve(from.relativize(f).toString());
            Files.createDirectories(t.getParent());
            Files.copy(f, t, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    static boolean contains(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) continue outer;
            }
            return true;
        }
        return false;
    }

    /** {@code size} deterministic pseudo-random bytes, generated as read: no 256 MiB array anywhere. */
    static final class PseudoRandom extends InputStream {
        private final SplittableRandom r;
        private long left;

        PseudoRandom(long size, long seed) {
            this.r = new SplittableRandom(seed);
            this.left = size;
        }

        @Override
        public int read() {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) {
            if (left == 0) return -1;
            int n = (int) Math.min(len, left);
            int i = 0;
            for (; i + 8 <= n; i += 8) {
                long v = r.nextLong();
                for (int k = 0; k < 8; k++) b[off + i + k] = (byte) (v >>> (8 * k));
            }
            if (i < n) {
                long v = r.nextLong();
                for (int k = 0; i < n; i++, k++) b[off + i] = (byte) (v >>> (8 * k));
            }
            left -= n;
            return n;
        }
    }
}
