package dev.enclavekms.client;

/**
 * A signed checkpoint the daemon wrote on request ({@code Admin.AuditCheckpoint}): the head
 * of its audit log when it was written. Given to {@code kmsctl audit verify --head SEQ:HASH},
 * it proves that no record up to it was cut off.
 *
 * @param seq  the checkpoint's sequence number
 * @param hash its record hash (64 hex digits)
 * @param time when it was written (RFC 3339 UTC)
 * @param file the log file it is in, on the daemon's host
 */
public record AuditCheckpoint(long seq, String hash, String time, String file) {
}
