package dev.enclavekms.registry;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;

import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * Every change to the registry is one of these commands, applied through
 * {@link RegistryStore#apply}. Keeping writes as data means the same commands can later
 * be replicated through a Raft log and applied identically on every node.
 */
public sealed interface RegistryCommand {

    /** A new key with its first version, which becomes primary, owned by {@code tenant}. */
    record CreateKey(String name, Purpose purpose, KeyAlgorithm algorithm, String description,
                     List<String> requiredContext, Duration rotationPeriod, int destroyWaitDays,
                     ObjectId firstVersionObject, Instant at, String tenant) implements RegistryCommand {

        /** A key of the default tenant. */
        public CreateKey(String name, Purpose purpose, KeyAlgorithm algorithm, String description,
                         List<String> requiredContext, Duration rotationPeriod, int destroyWaitDays,
                         ObjectId firstVersionObject, Instant at) {
            this(name, purpose, algorithm, description, requiredContext, rotationPeriod, destroyWaitDays,
                    firstVersionObject, at, KeyRecord.DEFAULT_TENANT);
        }

        /** A key with no rotation period and the default destruction waiting period. */
        public CreateKey(String name, Purpose purpose, KeyAlgorithm algorithm, String description,
                         List<String> requiredContext, ObjectId firstVersionObject, Instant at) {
            this(name, purpose, algorithm, description, requiredContext, null, KeyRecord.DEFAULT_DESTROY_WAIT_DAYS,
                    firstVersionObject, at);
        }
    }

    /** Rotation period (null: none) and destruction waiting period of a key. */
    record UpdateKeyPolicy(String name, Duration rotationPeriod, int destroyWaitDays, Instant at)
            implements RegistryCommand { }

    /**
     * A new version of an existing key; its number is the key's latest plus one. With
     * {@code primary} it becomes primary in the same transaction, so a crash can never
     * leave a key with a new version but an old primary, or the reverse.
     */
    record AddVersion(String name, int version, ObjectId objectId, VersionState state, boolean primary, Instant at)
            implements RegistryCommand { }

    /** PENDING → ENABLED and primary, in one transaction. */
    record PromoteVersion(String name, int version, Instant at) implements RegistryCommand { }

    record SetPrimaryVersion(String name, int version, Instant at) implements RegistryCommand { }

    /**
     * A state change; {@code destroyAt} is required for DESTROY_SCHEDULED (when) and
     * DESTROYED (when it happened), and must be null otherwise.
     */
    record SetVersionState(String name, int version, VersionState state, Instant destroyAt, Instant at)
            implements RegistryCommand {
        public SetVersionState(String name, int version, VersionState state, Instant at) {
            this(name, version, state, null, at);
        }
    }

    /** Raises a version's reserved encryption count (never lowers it). */
    record ReserveEncryptions(String name, int version, long reservedUpTo) implements RegistryCommand { }

    /**
     * A bearer token for {@code identity}, issued to {@code tenant}: only its hash is stored
     * (docs/policy.md). Tokens are policy state shared by every node, hence commands.
     */
    record CreateToken(String id, String identity, String tenant, String hash, Instant created, Instant expires)
            implements RegistryCommand {
        @Override
        public String toString() {
            return "CreateToken[id=" + id + ", identity=" + identity + ", tenant=" + tenant + ", expires=" + expires + "]";
        }
    }

    /** Revokes a token for good. */
    record RevokeToken(String id, Instant at) implements RegistryCommand { }

    /**
     * A certificate version {@code version} of CA key {@code name} issued (serial: lowercase
     * hex). Recorded before the certificate is handed out, so every certificate in anyone's
     * hands can be revoked; a serial is recorded once.
     */
    record RecordCertificate(String serial, String name, int version, Instant notAfter, Instant at)
            implements RegistryCommand { }

    /** Revokes a recorded certificate for good (a second revocation is refused as a conflict). */
    record RevokeCertificate(String serial, RevocationReason reason, Instant at) implements RegistryCommand { }

    /**
     * The CRL number (RFC 5280 5.2.3) a CA version's next CRL carries; only ever raised, so
     * that relying parties see CRL numbers increase across restarts.
     */
    record AdvanceCrlNumber(String name, int version, long number) implements RegistryCommand { }
}
