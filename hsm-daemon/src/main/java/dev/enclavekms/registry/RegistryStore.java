package dev.enclavekms.registry;

import dev.enclavekms.enclave.ObjectId;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.Optional;

/**
 * Durable key metadata. Writes go through {@link #apply} only: each command is checked
 * against the current state and applied atomically, or refused with nothing changed.
 */
public interface RegistryStore extends AutoCloseable {

    /** Applies one command atomically and durably. */
    void apply(RegistryCommand command) throws RegistryException;

    /** Reads never fail: stores serve them from committed state held in memory. */
    Optional<KeyRecord> find(String name);

    /** Every key, ordered by name. */
    List<KeyRecord> list();

    /** A bearer token's record by id (served from memory, like keys). */
    Optional<TokenRecord> findToken(String id);

    /** Every token, revoked and expired ones included, ordered by creation. */
    List<TokenRecord> tokens();

    /**
     * Node-local bookkeeping of orphan hardware objects (not a replicated command: each
     * node has its own device): remembers when each object in {@code present} was first
     * seen, forgets the ones no longer present, and returns the first-seen times.
     */
    Map<ObjectId, Instant> trackOrphans(Set<ObjectId> present, Instant now) throws RegistryException;

    @Override
    void close();

    /** The certificate of this serial (lowercase hex) a CA key issued, if the registry recorded it. */
    Optional<CertificateRecord> findCertificate(String serial) throws RegistryException;

    /** Revoked certificates of one CA key version that are still valid at {@code now}, by serial. */
    List<CertificateRecord> revokedCertificates(String name, int version, Instant now) throws RegistryException;

    /** The last CRL number used by a CA key version; 0 before its first CRL. */
    long crlNumber(String name, int version) throws RegistryException;
}
