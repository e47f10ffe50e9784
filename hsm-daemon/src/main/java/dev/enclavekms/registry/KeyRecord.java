package dev.enclavekms.registry;

import dev.enclavekms.enclave.KeyAlgorithm;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * A key's metadata as the registry holds it. Not secret: the key material is in the
 * enclave, referenced by each version's object id.
 *
 * @param requiredContext context keys every call with this key must carry
 * @param rotationPeriod  automatic rotation period, or null for rotation on demand only
 * @param destroyWaitDays waiting period between scheduling a version's destruction and doing it
 * @param tenant          the tenant that owns the key (docs/policy.md); keys made before tenants
 *                        existed belong to {@code default}
 */
public record KeyRecord(String name, Purpose purpose, KeyAlgorithm algorithm, String description, Instant created,
                        int primaryVersion, List<String> requiredContext, Duration rotationPeriod,
                        int destroyWaitDays, List<KeyVersion> versions, String tenant) {
    /** The tenant of keys made before tenants existed. */
    public static final String DEFAULT_TENANT = "default";

    /** Destruction waiting periods: default, and the bounds an operator may choose within. */
    public static final int DEFAULT_DESTROY_WAIT_DAYS = 30;
    public static final int MIN_DESTROY_WAIT_DAYS = 7;
    public static final int MAX_DESTROY_WAIT_DAYS = 3650;
    /** Shortest automatic rotation period. */
    public static final Duration MIN_ROTATION_PERIOD = Duration.ofHours(1);

    public KeyRecord {
        requiredContext = List.copyOf(requiredContext);
        versions = List.copyOf(versions);
        if (tenant == null) throw new IllegalArgumentException("a key belongs to a tenant");
    }

    /** A key of the default tenant. */
    public KeyRecord(String name, Purpose purpose, KeyAlgorithm algorithm, String description, Instant created,
                     int primaryVersion, List<String> requiredContext, Duration rotationPeriod,
                     int destroyWaitDays, List<KeyVersion> versions) {
        this(name, purpose, algorithm, description, created, primaryVersion, requiredContext, rotationPeriod,
                destroyWaitDays, versions, DEFAULT_TENANT);
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

    /** When automatic rotation is next due, or null when the key has no rotation period. */
    public Instant nextRotation() {
        return rotationPeriod == null ? null : primary().created().plus(rotationPeriod);
    }

    /** The highest version number ever used; numbers are never reused. */
    public int latestVersion() {
        int max = 0;
        for (KeyVersion kv : versions) max = Math.max(max, kv.version());
        return max;
    }
}
