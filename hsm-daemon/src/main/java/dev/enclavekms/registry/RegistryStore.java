package dev.enclavekms.registry;

import java.util.List;
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

    @Override
    void close();
}
