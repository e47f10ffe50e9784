package dev.enclavekms.registry;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;

import java.time.Instant;
import java.util.List;

/**
 * Every change to the registry is one of these commands, applied through
 * {@link RegistryStore#apply}. Keeping writes as data means the same commands can later
 * be replicated through a Raft log and applied identically on every node.
 */
public sealed interface RegistryCommand {

    /** A new key with its first version, which becomes primary. */
    record CreateKey(String name, Purpose purpose, KeyAlgorithm algorithm, String description,
                     List<String> requiredContext, ObjectId firstVersionObject, VersionState firstVersionState,
                     Instant at) implements RegistryCommand { }

    /** A new version of an existing key; its number is the key's latest plus one. */
    record AddVersion(String name, int version, ObjectId objectId, VersionState state, Instant at)
            implements RegistryCommand { }

    record SetPrimaryVersion(String name, int version, Instant at) implements RegistryCommand { }

    record SetVersionState(String name, int version, VersionState state, Instant at) implements RegistryCommand { }
}
