package dev.enclavekms.client;

import java.time.Instant;

/**
 * An ephemeral key session that {@link KmsClient#openSession} opened.
 *
 * @param id         the session id (48 hex digits) for the other session calls
 * @param tenant     the tenant it belongs to: only that tenant's callers can use it
 * @param expires    when the daemon destroys its key and material
 * @param ttlSeconds the lifetime granted
 */
public record KeySession(String id, String tenant, Instant expires, long ttlSeconds) { }
