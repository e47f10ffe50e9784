package dev.enclavekms.service;

/**
 * Told of what the lifecycle sweep does on its own, with no call behind it — an automatic
 * rotation, a destruction whose waiting period ended, the removal of an orphaned object —
 * so that the audit log records it (docs/audit.md, "lifecycle"). Calls are recorded as the
 * calls they are; this is for the daemon's own acts.
 */
@FunctionalInterface
public interface LifecycleEvents {

    /**
     * @param event   {@code rotated}, {@code destroyed} or {@code orphan_removed}
     * @param key     the key's name; null for an orphan (no registry entry names it)
     * @param version the version rotated to or destroyed; 0 for an orphan
     * @param detail  why (rotation: {@code period} or {@code usage_limit}), or the orphan's
     *                object id in hex; never key material
     */
    void happened(String event, String key, int version, String detail);

    LifecycleEvents NONE = (event, key, version, detail) -> { };
}
