package dev.enclavekms.registry;

import dev.enclavekms.enclave.KeyAlgorithm;

import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * A key's metadata as the registry holds it. Not secret: the key material is in the
 * enclave, referenced by each version's object id.
 *
 * @param requiredContext context keys every call with this key must carry
 */
public record KeyRecord(String name, Purpose purpose, KeyAlgorithm algorithm, String description, Instant created,
                        int primaryVersion, List<String> requiredContext, List<KeyVersion> versions) {

    public KeyRecord {
        requiredContext = List.copyOf(requiredContext);
        versions = List.copyOf(versions);
    }

    public Optional<KeyVersion> version(int v) {
        for (KeyVersion kv : versions) {
            if (kv.version() == v) return Optional.of(kv);
        }
        return Optional.empty();
    }

    public KeyVersion primary() {
        return version(primaryVersion).orElseThrow(
                () -> new IllegalStateException("key " + name + " has no primary version " + primaryVersion));
    }

    /** The highest version number ever used; numbers are never reused. */
    public int latestVersion() {
        int max = 0;
        for (KeyVersion kv : versions) max = Math.max(max, kv.version());
        return max;
    }
}
