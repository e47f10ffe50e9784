package dev.enclavekms.client;

import java.util.List;
import java.util.Objects;

/**
 * The daemon's health: the result of {@link KmsClient#status}.
 *
 * @param version       the daemon's version
 * @param uptimeSeconds seconds since the daemon started
 * @param enclave       the hardware it uses
 * @param keys          number of keys in the registry
 * @param keyVersions   number of key versions in the registry
 * @param orphans       hardware objects with no registry entry (unmodifiable; empty when healthy)
 * @param missing       registry versions whose hardware object is missing (unmodifiable; empty when healthy)
 */
public record Status(String version, long uptimeSeconds, Enclave enclave, long keys, long keyVersions,
                     List<String> orphans, List<String> missing) {
    public Status {
        Objects.requireNonNull(version, "version");
        Objects.requireNonNull(enclave, "enclave");
        orphans = List.copyOf(orphans);
        missing = List.copyOf(missing);
    }

    /**
     * The hardware behind the daemon.
     *
     * @param kind e.g. {@code pkcs11} or {@code javacard}
     */
    public record Enclave(String kind, String label, String manufacturer, String model, String serial) {
        public Enclave {
            Objects.requireNonNull(kind, "kind");
            Objects.requireNonNull(label, "label");
            Objects.requireNonNull(manufacturer, "manufacturer");
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(serial, "serial");
        }
    }
}
