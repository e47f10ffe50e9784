package dev.enclavekms.policy;

import dev.enclavekms.registry.Purpose;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One grant of a tenant's policy: which of the tenant's members ({@code to}; all of them
 * when empty) may call which methods, on keys of which names, with which context
 * values, for keys of which purposes. A call is allowed when one grant allows all of it;
 * nothing is allowed otherwise.
 *
 * @param line             where the grant starts in the policy file (1-based), for explanations
 * @param methods          the methods its patterns cover (expanded when the file was read)
 * @param purposes         key purposes it covers; empty: any
 * @param reencryptRevoked ReEncrypt through this grant may use REVOKED versions
 * @param tokenAdmin       may create, list and revoke tokens of the tenant's token identities
 * @param allTenants       acts on every tenant's keys and tokens, not only its own (a global administrator)
 * @param sans             subject alternative names ({@code DNS:...}, {@code IP:...}) a CA may sign for
 *                         the caller through this grant; empty: none (certificates without SANs only)
 * @param maxTtl           the longest certificate Kms.IssueCertificate issues through this grant, or null
 *                         for the daemon's {@code ca.max-ttl-seconds} alone (docs/policy.md)
 */
public record Grant(String tenant, String name, int line, Set<Principal> to, List<String> methodPatterns,
                    Set<String> methods, List<Glob> keys, Map<String, Glob> context, Set<Purpose> purposes,
                    boolean reencryptRevoked, boolean tokenAdmin, boolean allTenants, List<Glob> sans,
                    java.time.Duration maxTtl) {

    public Grant {
        sans = List.copyOf(sans);
        to = Set.copyOf(to);
        methodPatterns = List.copyOf(methodPatterns);
        methods = Set.copyOf(methods);
        keys = List.copyOf(keys);
        context = Map.copyOf(context);
        purposes = purposes.isEmpty() ? Set.of() : Set.copyOf(purposes);
    }

    /** Whether this grant is given to a caller known by these names (all members when {@code to} is empty). */
    public boolean grantedTo(List<Principal> principals) {
        if (to.isEmpty()) return true;
        for (Principal p : principals) {
            if (to.contains(p)) return true;
        }
        return false;
    }

    public boolean covers(String method) {
        return covers(method, Methods.traits(method));
    }

    private boolean covers(String method, Set<Methods.Trait> traits) {
        if (traits.contains(Methods.Trait.TOKEN)) return tokenAdmin;
        return methods.contains(method);
    }

    /** How explanations name the grant: {@code 'inference' (line 14)}. */
    public String label() {
        return "'" + name + "' (line " + line + ")";
    }

    /**
     * Why this grant does not allow {@code r} for a caller of {@code callerTenant}, or
     * null when it does.
     */
    public String mismatch(Request r, String callerTenant) {
        // Every call is decided against each of its caller's grants: the method's traits are looked up once.
        Set<Methods.Trait> traits = Methods.traits(r.method());
        if (!covers(r.method(), traits)) {
            return traits.contains(Methods.Trait.TOKEN) ? "has no token_admin: true"
                    : "does not cover " + r.method();
        }
        if (traits.contains(Methods.Trait.GLOBAL) && !allTenants) {
            return r.method() + " acts on every tenant and needs a grant with all_tenants: true";
        }
        if (r.admission()) {
            return null;
        }
        if (r.key() != null && traits.contains(Methods.Trait.KEYED)) {
            if (!anyMatches(keys, r.key())) {
                return "key '" + r.key() + "' matches none of its keys " + keys;
            }
            if (r.keyTenant() != null && !allTenants && !r.keyTenant().equals(callerTenant)) {
                return "the key is not the tenant's";
            }
            if (r.purpose() != null && !purposes.isEmpty() && !purposes.contains(r.purpose())) {
                return "the key's purpose " + r.purpose() + " is not one of its purposes " + purposes;
            }
        }
        if (!context.isEmpty()) {
            if (!traits.contains(Methods.Trait.CONTEXT)) {
                return "requires context " + conditions() + ", which " + r.method() + " does not carry";
            }
            Map<String, String> given = r.context() == null ? Map.of() : r.context();
            for (Map.Entry<String, Glob> c : new java.util.TreeMap<>(context).entrySet()) {
                String v = given.get(c.getKey());
                if (v == null) {
                    return "requires the context entry " + c.getKey() + "=" + c.getValue() + ", which the call lacks";
                }
                if (!c.getValue().matches(v)) {
                    return "requires context " + c.getKey() + "=" + c.getValue() + "; the call has "
                            + c.getKey() + "=" + v;
                }
            }
        }
        if (r.reencryptRevoked() && !reencryptRevoked) {
            return "has no reencrypt_revoked: true (needed to re-encrypt from a REVOKED version)";
        }
        if (r.san() != null && !anyMatches(sans, r.san())) {
            return "certificate name '" + r.san() + "' matches none of its san patterns " + sans;
        }
        return null;
    }

    private static boolean anyMatches(List<Glob> globs, String s) {
        for (Glob g : globs) {
            if (g.matches(s)) return true;
        }
        return false;
    }

    private String conditions() {
        StringBuilder b = new StringBuilder();
        new java.util.TreeMap<>(context).forEach((k, v) -> b.append(b.isEmpty() ? "" : ", ").append(k).append('=').append(v));
        return b.toString();
    }
}
