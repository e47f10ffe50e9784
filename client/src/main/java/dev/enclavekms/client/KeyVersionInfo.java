package dev.enclavekms.client;

import java.time.Instant;
import java.util.Objects;

/**
 * One version of a key, as {@link KmsClient#describeKey} reports it.
 *
 * @param version  the version number (1 for the first)
 * @param state    {@code PENDING}, {@code ENABLED}, {@code DISABLED}, {@code REVOKED},
 *                 {@code DESTROY_SCHEDULED} or {@code DESTROYED} (a string, so that a newer
 *                 daemon's states still read)
 * @param created  when the version was created
 * @param objectId the hardware object's id (CKA_ID), lowercase or uppercase hex as sent
 */
public record KeyVersionInfo(int version, String state, Instant created, String objectId) {
    public KeyVersionInfo {
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(created, "created");
        Objects.requireNonNull(objectId, "objectId");
    }
}
