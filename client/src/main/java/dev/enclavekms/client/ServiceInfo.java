package dev.enclavekms.client;

import java.util.List;
import java.util.Objects;

/**
 * What {@code org.varlink.service.GetInfo} reports: the implementation and the
 * interfaces the daemon serves.
 *
 * @param interfaces fully qualified interface names (unmodifiable)
 */
public record ServiceInfo(String vendor, String product, String version, String url, List<String> interfaces) {
    public ServiceInfo {
        Objects.requireNonNull(vendor, "vendor");
        Objects.requireNonNull(product, "product");
        Objects.requireNonNull(version, "version");
        Objects.requireNonNull(url, "url");
        interfaces = List.copyOf(interfaces);
    }
}
