package dev.enclavekms.client;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A key's metadata: the result of {@link KmsClient#createKey}, {@link KmsClient#describeKey}
 * and of every lifecycle method (rotate, promote, enable, disable, revoke, schedule or
 * cancel destruction, update policy), which answer with the key as it is after the change.
 * Holds no key material (no API returns any).
 *
 * @param name            the key's name
 * @param purpose         {@code ENCRYPT} or {@code SIGN}
 * @param algorithm       e.g. {@code AES_256_GCM}, {@code EC_P256_SHA256}
 * @param description     free text, empty when none was given
 * @param created         when the key was created
 * @param primaryVersion  the version that encrypts or signs
 * @param requiredContext context keys every Encrypt/Decrypt call must carry (unmodifiable)
 * @param rotationPeriod  how often the daemon rotates the key by itself; null when it rotates
 *                        only on demand (and at a version's usage limit)
 * @param nextRotation    when the next automatic rotation is due; null when none is planned
 * @param destroyWaitDays the waiting period between scheduling a version's destruction and
 *                        the destruction
 * @param versions        every version, as the daemon lists them (unmodifiable)
 */
public record KeyDescription(String name, String purpose, String algorithm, String description, Instant created,
                             int primaryVersion, List<String> requiredContext, Duration rotationPeriod,
                             Instant nextRotation, int destroyWaitDays, List<KeyVersionInfo> versions) {
    public KeyDescription {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(purpose, "purpose");
        Objects.requireNonNull(algorithm, "algorithm");
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(created, "created");
        requiredContext = List.copyOf(requiredContext);
        versions = List.copyOf(versions);
    }

    /** Version {@code version} of this key, or empty when the daemon did not list it. */
    public Optional<KeyVersionInfo> version(int version) {
        return versions.stream().filter(v -> v.version() == version).findFirst();
    }
}
