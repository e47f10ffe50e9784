package dev.enclavekms.client;

import java.util.Objects;

/**
 * One event of {@code Kms.WatchRevocations}: version {@code version} of {@code key} became
 * {@code state} (DISABLED, REVOKED, DESTROY_SCHEDULED or DESTROYED) and data keys it
 * protects must no longer be used from caches.
 */
public record Revocation(String key, int version, String state) {
    public Revocation {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(state, "state");
    }
}
