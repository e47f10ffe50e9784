package dev.enclavekms.registry;

import dev.enclavekms.enclave.ObjectId;

import java.time.Instant;

/** One version of a key: its number, its hardware object and its state. Not secret. */
public record KeyVersion(int version, ObjectId objectId, VersionState state, Instant created, Instant stateChanged) {
    public KeyVersion withState(VersionState s, Instant at) {
        return new KeyVersion(version, objectId, s, created, at);
    }
}
