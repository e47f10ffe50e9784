package dev.enclavekms.system;

import dev.enclavekms.client.Authenticated;
import dev.enclavekms.client.IssuedToken;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.PermissionDeniedException;
import dev.enclavekms.client.TokenInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bearer tokens against the real daemon (dev mode, its written-out dev policy, a test
 * clock): a valid token gives the connection its identity; wrong, malformed, expired and
 * revoked tokens are refused with clear messages, also on connections that presented
 * them while they were valid; and no token ever appears in the daemon's output, in an
 * error, or in the registry's files — as text, hex, base64 or raw bytes.
 */
class TokenIT {
    @TempDir
    static Path dir;
    static Path clock;
    static DaemonProcess daemon;
    static KmsClient admin;
    static final List<String> issued = new ArrayList<>();
    static final List<String> messages = new ArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        clock = dir.resolve("clock");
        setClock(0);
        daemon = DaemonProcess.start(dir, List.of("--test-clock-file", clock.toString()));
        admin = KmsClient.connect(daemon.socket());
        admin.createKey("k", "ENCRYPT");
    }

    @AfterAll
    static void stop() throws Exception {
        admin.close();
        daemon.close();
    }

    static void setClock(long seconds) throws Exception {
        Path tmp = dir.resolve("clock.tmp");
        Files.writeString(tmp, Long.toString(seconds));
        Files.move(tmp, dir.resolve("clock"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    static IssuedToken issue(String identity, Duration ttl) throws Exception {
        IssuedToken t = admin.createToken(identity, ttl);
        issued.add(t.token());
        return t;
    }

    /** The refusal's message, kept for the scan for tokens. */
    static String refused(KmsClient c, String token) {
        PermissionDeniedException e = assertThrows(PermissionDeniedException.class, () -> c.authenticate(token));
        messages.add(e.getMessage());
        return e.getMessage();
    }

    static String refusedCall(KmsClient c) {
        PermissionDeniedException e = assertThrows(PermissionDeniedException.class,
                () -> c.encrypt("k", new byte[] {1}, null));
        messages.add(e.getMessage());
        return e.getMessage();
    }

    @Test
    void validToken_givesTheConnectionItsIdentity() throws Exception {
        IssuedToken t = issue("ci-valid", Duration.ofHours(1));
        assertTrue(t.token().startsWith("ekms_" + t.info().id() + "_"), "format");
        try (KmsClient c = KmsClient.connect(daemon.socket())) {
            Authenticated a = c.authenticate(t.token());
            assertEquals("token:ci-valid", a.identity());
            assertEquals("default", a.tenant());
            assertEquals(t.info().id(), a.tokenId());
            assertNotNull(c.encrypt("k", new byte[] {1}, null));
            // Once per connection.
            assertTrue(refused(c, t.token()).contains("already authenticated as token:ci-valid"));
            // Token identities have no Admin grant in the dev policy: only root and the daemon's user do.
            PermissionDeniedException e = assertThrows(PermissionDeniedException.class, c::listKeys);
            messages.add(e.getMessage());
            assertTrue(e.getMessage().startsWith("token:ci-valid (token " + t.info().id()), e.getMessage());
        }
    }

    @Test
    void wrongAndMalformedTokens_areRefusedAlike_andTheConnectionKeepsItsIdentity() throws Exception {
        IssuedToken t = issue("ci-wrong", Duration.ofHours(1));
        String wrong = t.token().substring(0, t.token().length() - 1) + (t.token().endsWith("A") ? "B" : "A");
        issued.add(wrong);
        String unknownId = "ekms_ffffffffffffffff_" + t.token().substring(t.token().length() - 43);
        issued.add(unknownId);
        try (KmsClient c = KmsClient.connect(daemon.socket())) {
            String m1 = refused(c, wrong);
            String m2 = refused(c, unknownId);
            String m3 = refused(c, "not-a-token");
            assertTrue(m1.startsWith("the token is not valid"), m1);
            assertEquals(m1, m2);
            assertEquals(m1, m3);
            // Still root: the failed attempts changed nothing.
            assertNotNull(c.listKeys());
        }
    }

    @Test
    void expiredToken_isRefused_alsoOnAConnectionThatPresentedItInTime() throws Exception {
        IssuedToken t = issue("ci-expiring", Duration.ofMinutes(10));
        try (KmsClient early = KmsClient.connect(daemon.socket()); KmsClient late = KmsClient.connect(daemon.socket())) {
            early.authenticate(t.token());
            assertNotNull(early.encrypt("k", new byte[] {1}, null));
            setClock(11 * 60);
            try {
                String m = refused(late, t.token());
                assertEquals("token " + t.info().id() + " (token:ci-expiring) expired at " + t.info().expires(), m);
                assertTrue(refusedCall(early).contains("expired at"));
            } finally {
                setClock(0);
            }
        }
    }

    @Test
    void revokedToken_isRefused_alsoOnAConnectionThatPresentedIt() throws Exception {
        IssuedToken t = issue("ci-revoked", Duration.ofHours(1));
        try (KmsClient before = KmsClient.connect(daemon.socket()); KmsClient after = KmsClient.connect(daemon.socket())) {
            before.authenticate(t.token());
            assertNotNull(before.encrypt("k", new byte[] {1}, null));
            TokenInfo r = admin.revokeToken(t.info().id());
            assertNotNull(r.revoked());
            assertEquals(r, admin.revokeToken(t.info().id()), "revoking again changes nothing");
            assertTrue(refusedCall(before).contains("was revoked at"));
            assertTrue(refused(after, t.token()).startsWith("token " + t.info().id() + " (token:ci-revoked) was revoked at"));
        }
        assertTrue(admin.listTokens().stream().anyMatch(i -> i.id().equals(t.info().id()) && i.revoked() != null));
    }

    @Test
    void tokens_neverAppearInOutputErrorsOrRegistryFiles() throws Exception {
        // Make sure every other test has contributed its tokens and messages first.
        validToken_givesTheConnectionItsIdentity();
        wrongAndMalformedTokens_areRefusedAlike_andTheConnectionKeepsItsIdentity();
        revokedToken_isRefused_alsoOnAConnectionThatPresentedIt();
        List<byte[]> haystacks = new ArrayList<>();
        haystacks.add(daemon.output().getBytes(StandardCharsets.UTF_8));
        haystacks.add(String.join("\n", messages).getBytes(StandardCharsets.UTF_8));
        try (Stream<Path> files = Files.list(daemon.stateDir())) {
            for (Path f : files.filter(f -> f.getFileName().toString().startsWith("registry.db")).toList()) {
                haystacks.add(Files.readAllBytes(f));
            }
        }
        assertTrue(haystacks.size() >= 3, "registry files not found");
        List<String> found = new ArrayList<>();
        for (String token : issued) {
            String secret = token.substring(token.lastIndexOf('_') + 1);
            if (secret.length() != 43) continue;
            byte[] raw = Base64.getUrlDecoder().decode(secret);
            List<byte[]> needles = List.of(token.getBytes(StandardCharsets.US_ASCII),
                    secret.getBytes(StandardCharsets.US_ASCII),
                    HexFormat.of().formatHex(raw).getBytes(StandardCharsets.US_ASCII),
                    Base64.getEncoder().encodeToString(raw).getBytes(StandardCharsets.US_ASCII), raw);
            for (byte[] hay : haystacks) {
                for (byte[] needle : needles) {
                    if (indexOf(hay, needle) >= 0) found.add(token.substring(0, 22) + "… as " + needle.length + " bytes");
                }
            }
        }
        assertEquals(List.of(), found);
        assertFalse(issued.isEmpty());
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) continue outer;
            }
            return i;
        }
        return -1;
    }

    @Test
    void createToken_ttlOutOfRange_isInvalidParameter() {
        KmsException e = assertThrows(KmsException.class, () -> admin.createToken("ci", Duration.ofDays(400)));
        assertEquals("InvalidParameter", e.shortName());
        assertEquals(Map.of("parameter", "ttl_seconds"), Map.of("parameter", e.parameters().get("parameter")));
    }
}
