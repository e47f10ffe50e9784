package dev.enclavekms.policy;

import java.util.List;

/**
 * A tenant: the keys it owns (every key records its tenant when created), the names it
 * may create keys under, its members and its grants. A tenant never sees another
 * tenant's keys or tokens: to its members they do not exist.
 *
 * @param keyPrefixes the key names this tenant creates start with one of these; empty:
 *                    every name no other tenant claims (at most one tenant per policy)
 * @param members     the identities that belong to this tenant
 */
public record Tenant(String name, int line, List<String> keyPrefixes, List<Principal> members, List<Grant> grants,
                     java.time.Duration sessionMaxTtl) {
    /** A tenant without a session TTL limit of its own (the daemon's {@code sessions.max-ttl-seconds} applies). */
    public Tenant(String name, int line, List<String> keyPrefixes, List<Principal> members, List<Grant> grants) {
        this(name, line, keyPrefixes, members, grants, null);
    }

    public Tenant {
        keyPrefixes = List.copyOf(keyPrefixes);
        members = List.copyOf(members);
        grants = List.copyOf(grants);
    }

    /** Whether new keys of this name belong to this tenant by its prefixes (not by being the catch-all). */
    public boolean claims(String keyName) {
        for (String p : keyPrefixes) {
            if (keyName.startsWith(p)) return true;
        }
        return false;
    }
}
