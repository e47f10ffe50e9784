package dev.enclavekms.client;

import java.time.Instant;
import java.util.Objects;

/**
 * A bearer token as {@link KmsClient#listTokens} shows it: never the token itself.
 *
 * @param id       16 hex digits, not secret: lists, logs and audit records name tokens by it
 * @param identity the token identity it authenticates as ({@code token:IDENTITY} in policies)
 * @param tenant   the tenant it was issued for
 * @param revoked  when it was revoked, or null
 */
public record TokenInfo(String id, String identity, String tenant, Instant created, Instant expires, Instant revoked) {
    public TokenInfo {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(identity, "identity");
        Objects.requireNonNull(tenant, "tenant");
        Objects.requireNonNull(created, "created");
        Objects.requireNonNull(expires, "expires");
    }
}
