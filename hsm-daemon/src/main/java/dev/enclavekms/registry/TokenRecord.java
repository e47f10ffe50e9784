package dev.enclavekms.registry;

import java.time.Instant;

/**
 * A bearer token as the registry keeps it: never the token, only its SHA-256.
 *
 * @param identity the token identity it authenticates as ({@code token:IDENTITY} in policies)
 * @param tenant   the tenant it was issued for; a token is refused once the policy puts
 *                 its identity in another tenant
 * @param hash     SHA-256 of the token text, hex
 * @param revoked  when it was revoked, or null
 */
public record TokenRecord(String id, String identity, String tenant, String hash, Instant created, Instant expires,
                          Instant revoked) {
    @Override
    public String toString() {
        return "TokenRecord[id=" + id + ", identity=" + identity + ", tenant=" + tenant + ", created=" + created
                + ", expires=" + expires + ", revoked=" + revoked + "]";
    }
}
