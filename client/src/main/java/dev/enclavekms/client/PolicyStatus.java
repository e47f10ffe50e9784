package dev.enclavekms.client;

import java.util.List;

/**
 * The policy put in force by {@link KmsClient#reloadPolicy}.
 *
 * @param source   the policy file, or {@code built-in}
 * @param sha256   SHA-256 of the file, hex
 * @param warnings likely mistakes that do not stop the policy from working
 */
public record PolicyStatus(String source, String sha256, int tenants, int grants, List<String> warnings) {
    public PolicyStatus {
        warnings = List.copyOf(warnings);
    }
}
