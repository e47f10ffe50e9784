package dev.enclavekms.client;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * A key's metadata: the result of {@link KmsClient#createKey} and
 * {@link KmsClient#describeKey}. Holds no key material (no API returns any).
 *
 * @param name            the key's name
 * @param purpose         {@code ENCRYPT} or {@code SIGN}
 * @param algorithm       e.g. {@code AES_256_GCM}, {@code EC_P256_SHA256}
 * @param description     free text, empty when none was given
 * @param created         when the key was created
 * @param primaryVersion  the version that encrypts or signs
 * @param requiredContext context keys every Encrypt/Decrypt call must carry (unmodifiable)
 * @param versions        every version, as the daemon lists them (unmodifiable)
 */
public record KeyDescription(String name, String purpose, String algorithm, String description, Instant created,
                             int primaryVersion, List<String> requiredContext, List<KeyVersionInfo> versions) {
    public KeyDescription {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(purpose, "purpose");
        Objects.requireNonNull(algorithm, "algorithm");
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(created, "created");
        requiredContext = List.copyOf(requiredContext);
        versions = List.copyOf(versions);
    }
}
