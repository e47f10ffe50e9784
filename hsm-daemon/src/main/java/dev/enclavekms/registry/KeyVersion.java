package dev.enclavekms.registry;

import dev.enclavekms.enclave.ObjectId;

import java.time.Instant;

/**
 * One version of a key: its number, its hardware object and its state. Not secret.
 *
 * @param destroyAt            for DESTROY_SCHEDULED, when the hardware object will be
 *                             destroyed; for DESTROYED, when it was; otherwise null
 * @param encryptionsReserved  encryptions this version may have made: counted in
 *                             reserved blocks, so after a crash it errs high, never low
 * @param stateBeforeDestruction for DESTROY_SCHEDULED, the state it was scheduled from
 *                             (decides where a cancellation returns it); otherwise null
 */
public record KeyVersion(int version, ObjectId objectId, VersionState state, Instant created, Instant stateChanged,
                         Instant destroyAt, long encryptionsReserved, VersionState stateBeforeDestruction) {
}
