package dev.enclavekms.audit;

/**
 * Turns a sensitive string into what the audit log shows instead: {@code hmac-sha256:<hex>},
 * the HMAC-SHA256 of its UTF-8 bytes under the audit HMAC key. Equal strings give equal
 * output, so an operator can search the log for a value they know ({@code kmsctl audit hmac
 * VALUE}), but the log itself never reveals one (as Vault's audit devices do).
 */
@FunctionalInterface
public interface StringHasher {
    /** The prefix of every HMAC'd value in the log. */
    String PREFIX = "hmac-sha256:";

    String hmac(String value) throws AuditUnavailableException;
}
