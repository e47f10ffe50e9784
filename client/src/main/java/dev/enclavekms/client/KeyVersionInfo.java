package dev.enclavekms.client;

import java.time.Instant;
import java.util.Objects;

/**
 * One version of a key, as {@link KmsClient#describeKey} and the lifecycle methods
 * report it.
 *
 * @param version      the version number (1 for the first; never reused)
 * @param state        {@code PENDING}, {@code ENABLED}, {@code DISABLED}, {@code REVOKED},
 *                     {@code DESTROY_SCHEDULED} or {@code DESTROYED} (a string, so that a
 *                     newer daemon's states still read)
 * @param created      when the version was created
 * @param stateChanged when its state last changed (its creation, for a version never changed)
 * @param destroyAt    for {@code DESTROY_SCHEDULED}, when the hardware object will be
 *                     destroyed; for {@code DESTROYED}, when it was; otherwise null
 * @param encryptions  encryptions made with this version (the daemon reserves them in
 *                     blocks, so this may run slightly ahead of the true count)
 * @param objectId     the hardware object's id (CKA_ID), lowercase or uppercase hex as sent
 * @param pkcs11Uri    for a TLS_SERVER or TLS_CLIENT key, the RFC 7512 URI of the version's
 *                     private key on the token; otherwise null
 */
public record KeyVersionInfo(int version, String state, Instant created, Instant stateChanged, Instant destroyAt,
                             long encryptions, String objectId, String pkcs11Uri) {
    public KeyVersionInfo {
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(created, "created");
        Objects.requireNonNull(stateChanged, "stateChanged");
        Objects.requireNonNull(objectId, "objectId");
    }

    /** A version of a key that is not a TLS key (no PKCS#11 URI). */
    public KeyVersionInfo(int version, String state, Instant created, Instant stateChanged, Instant destroyAt,
                          long encryptions, String objectId) {
        this(version, state, created, stateChanged, destroyAt, encryptions, objectId, null);
    }
}
