package dev.enclavekms.server;

import dev.enclavekms.server.varlink.Peer;
import dev.enclavekms.service.KmsError;

/**
 * Who may call what, until the policy engine exists: the socket's mode (0660) admits
 * only the daemon's user and the socket's group to the Kms methods; Admin methods are
 * further limited to the daemon's own user and root. Default deny for anything else.
 */
final class Authorizer {
    private final String daemonUser;

    Authorizer(String daemonUser) {
        this.daemonUser = daemonUser;
    }

    /**
     * The re-encryption grant: may a REVOKED version be used to migrate data? Until the
     * policy engine, admins hold it.
     */
    boolean mayReEncryptRevoked(Peer peer) {
        return isAdmin(peer);
    }

    private boolean isAdmin(Peer peer) {
        // An unidentified peer ("?": its credentials could not be read) matches nobody,
        // not even a daemon whose own name could not be resolved.
        if (peer.user().equals(Peer.UNKNOWN)) {
            return false;
        }
        return peer.user().equals(daemonUser) || peer.user().equals("root");
    }

    void requireAdmin(Peer peer) throws KmsError.PermissionDenied {
        if (!isAdmin(peer)) {
            throw new KmsError.PermissionDenied("Admin methods need an admin grant; user '" + peer.user()
                    + "' has none (only '" + daemonUser + "' and root are admins without a policy)");
        }
    }
}
