package dev.enclavekms.server;

import dev.enclavekms.server.varlink.Peer;
import dev.enclavekms.service.KmsError;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AuthorizerTest {
    private final Authorizer auth = new Authorizer("enclave-kms");

    @Test
    void daemonUserAndRoot_areAdmins() {
        assertDoesNotThrow(() -> auth.requireAdmin(new Peer("enclave-kms", "enclave-kms", 1)));
        assertDoesNotThrow(() -> auth.requireAdmin(new Peer("root", "root", 2)));
        assertTrue(auth.mayReEncryptRevoked(new Peer("root", "root", 3)));
    }

    @Test
    void otherUser_isDeniedWithAClearMessage() {
        var e = assertThrows(KmsError.PermissionDenied.class, () -> auth.requireAdmin(new Peer("inference", "ml", 4)));
        assertTrue(e.getMessage().contains("'inference'"), e.getMessage());
        assertFalse(auth.mayReEncryptRevoked(new Peer("inference", "ml", 5)));
    }

    @Test
    void unidentifiedPeer_matchesNobody_evenAnUnidentifiedDaemon() {
        Authorizer unnamed = new Authorizer(Peer.UNKNOWN);
        assertThrows(KmsError.PermissionDenied.class, () -> unnamed.requireAdmin(new Peer(Peer.UNKNOWN, Peer.UNKNOWN, 6)));
        assertThrows(KmsError.PermissionDenied.class, () -> auth.requireAdmin(new Peer(Peer.UNKNOWN, Peer.UNKNOWN, 7)));
    }
}
