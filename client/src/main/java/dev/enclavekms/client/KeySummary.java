package dev.enclavekms.client;

import java.util.Objects;

/**
 * One line of {@link KmsClient#listKeys}.
 *
 * @param name           the key's name
 * @param purpose        {@code ENCRYPT} or {@code SIGN}
 * @param algorithm      e.g. {@code AES_256_GCM}
 * @param primaryVersion the version that encrypts or signs
 * @param versions       how many versions the key has
 */
public record KeySummary(String name, String purpose, String algorithm, int primaryVersion, int versions) {
    public KeySummary {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(purpose, "purpose");
        Objects.requireNonNull(algorithm, "algorithm");
    }
}
