package dev.enclavekms.policy;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A policy as read from its file (docs/policy.md): tenants, their members and grants.
 * Immutable; a reload replaces the whole object at once, so a call is decided by one
 * policy from start to end.
 *
 * <p>Default deny: a caller that belongs to no tenant may do nothing, and a member may
 * do only what one of its tenant's grants allows.
 */
public final class Policy {
    /** The tenant of keys created before tenants existed (registry migration). */
    public static final String DEFAULT_TENANT = "default";

    private final String source;
    private final String sha256;
    private final String defaultTenant;
    private final Map<String, Tenant> tenants;
    private final Map<Principal, String> members;

    Policy(String source, String sha256, String defaultTenant, Map<String, Tenant> tenants) {
        this.source = source;
        this.sha256 = sha256;
        this.defaultTenant = defaultTenant;
        this.tenants = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(tenants));
        Map<Principal, String> m = new LinkedHashMap<>();
        for (Tenant t : tenants.values()) {
            for (Principal p : t.members()) m.put(p, t.name());
        }
        this.members = java.util.Collections.unmodifiableMap(m);
    }

    /** Where the policy came from: its file, or {@code built-in} (docs/policy.md, "Without a policy file"). */
    public String source() {
        return source;
    }

    /** SHA-256 of the file's bytes, hex: tells operators which version of the file is in force. */
    public String sha256() {
        return sha256;
    }

    public String defaultTenant() {
        return defaultTenant;
    }

    public Collection<Tenant> tenants() {
        return tenants.values();
    }

    public Tenant tenant(String name) {
        return tenants.get(name);
    }

    public int grantCount() {
        return tenants.values().stream().mapToInt(t -> t.grants().size()).sum();
    }

    /** Which tenant a caller belongs to, and why. */
    public record Membership(String tenant, String reason) { }

    /**
     * The caller's tenant: the tenant listing its token identity (after authentication),
     * else its user, else its primary group, else {@code default_tenant}. Null when none
     * applies, and always for an unidentified caller.
     */
    public Membership membership(Identity who) {
        return membership(who.principals());
    }

    private Membership membership(List<Principal> principals) {
        if (principals.isEmpty()) {
            return null;
        }
        for (Principal p : principals) {
            String t = members.get(p);
            if (t != null) return new Membership(t, "member " + p);
        }
        return defaultTenant == null ? null : new Membership(defaultTenant, "default_tenant");
    }

    public String tenantOf(Identity who) {
        Membership m = membership(who);
        return m == null ? null : m.tenant();
    }

    /** The tenant a token identity belongs to (as for a caller authenticated with such a token), or null. */
    public String tenantOfTokenIdentity(String identity) {
        String t = members.get(Principal.token(identity));
        return t != null ? t : defaultTenant;
    }

    /**
     * The tenant that new keys of this name belong to: the tenant whose key prefix it
     * starts with, else the tenant without prefixes, else none (null).
     */
    public String tenantOwningName(String keyName) {
        String catchAll = null;
        for (Tenant t : tenants.values()) {
            if (t.claims(keyName)) return t.name();
            if (t.keyPrefixes().isEmpty()) catchAll = t.name();
        }
        return catchAll;
    }

    /**
     * Decides one request; see {@link Request} for the two steps of a call on a key. The
     * decision carries no {@linkplain Decision#trace() trace} ({@link #explain} has one): every
     * call is decided, and the trace's line per grant would be built for nobody.
     */
    public Decision decide(Identity who, Request r) {
        return decide(who, r, false);
    }

    private Decision decide(Identity who, Request r, boolean traced) {
        List<Principal> principals = who.principals();
        Membership m = membership(principals);
        if (m == null) {
            String why = principals.isEmpty() ? "" : " and there is no default_tenant";
            return new Decision(false, null, List.of(), List.of(), who.describe() + " belongs to no tenant of the policy"
                    + why + "; every call is denied (" + r.method() + ")");
        }
        Tenant t = tenants.get(m.tenant());
        List<Grant> matched = new ArrayList<>();
        List<String> trace = new ArrayList<>();
        List<String> reasons = new ArrayList<>();
        for (Grant g : t.grants()) {
            if (!g.grantedTo(principals)) {
                if (traced) trace.add("grant " + g.label() + ": not given to " + describe(principals) + " (to: " + g.to() + ")");
                continue;
            }
            String why = g.mismatch(r, t.name());
            if (why == null) {
                matched.add(g);
                if (traced) trace.add("grant " + g.label() + ": allows");
            } else {
                if (traced) trace.add("grant " + g.label() + ": " + why);
                if (g.covers(r.method())) reasons.add("grant " + g.label() + " " + why);
            }
        }
        if (!matched.isEmpty()) {
            return new Decision(true, t.name(), matched, trace, null);
        }
        StringBuilder d = new StringBuilder(who.describe()).append(" (tenant ").append(t.name()).append(") may not call ")
                .append(r.method());
        if (r.key() != null) d.append(" on key '").append(r.key()).append('\'');
        d.append(": ");
        if (reasons.isEmpty()) {
            if (Methods.has(r.method(), Methods.Trait.TOKEN)) {
                d.append("the token methods need a grant with token_admin: true, and none of the caller's grants has it");
            } else if (r.method().startsWith(Methods.ADMIN + ".")) {
                d.append("Admin methods need an admin grant, and no grant of the caller's covers ").append(r.method());
            } else {
                d.append("no grant of the caller's covers ").append(r.method());
            }
        } else {
            d.append(String.join("; ", reasons));
        }
        return new Decision(false, t.name(), List.of(), trace, d.toString());
    }

    private static String describe(List<Principal> principals) {
        return principals.stream().map(Principal::toString).reduce((a, b) -> a + "/" + b).orElse("nobody");
    }

    /**
     * A readable account of how the policy decides {@code r} for {@code who}: tenant and
     * why, each grant and why it allows or not, the result. For {@code Admin.CreateKey}
     * also which tenant owns the name.
     */
    public List<String> explain(Identity who, Request r) {
        List<String> out = new ArrayList<>();
        Decision d = decide(who, r, true);
        Membership m = membership(who);
        out.add("policy:   " + source + (sha256 == null ? "" : " (sha256 " + sha256.substring(0, 16) + "…)"));
        out.add("identity: " + describe(who.principals()));
        out.add("tenant:   " + (m == null ? "none" : m.tenant() + " (" + m.reason() + ")"));
        out.add("method:   " + r.method());
        if (r.key() != null) out.add("key:      " + r.key() + (r.purpose() == null ? "" : " (purpose " + r.purpose() + ")"));
        if (r.context() != null && !r.context().isEmpty()) {
            StringBuilder c = new StringBuilder();
            new java.util.TreeMap<>(r.context()).forEach((k, v) -> c.append(c.isEmpty() ? "" : ", ").append(k).append('=').append(v));
            out.add("context:  " + c);
        }
        boolean allowed = d.allowed();
        String namespace = null;
        if (allowed && r.method().equals("Admin.CreateKey") && r.key() != null) {
            String owner = tenantOwningName(r.key());
            if (!d.allTenants() && !d.tenant().equals(owner)) {
                allowed = false;
                namespace = "key names like '" + r.key() + "' are not tenant " + d.tenant() + "'s to create"
                        + namespaceHint(d.tenant());
            } else if (owner == null) {
                allowed = false;
                namespace = "no tenant's key_prefixes cover '" + r.key() + "' and no tenant takes the other names";
            }
        }
        for (String line : d.trace()) out.add("  " + line);
        if (allowed) {
            out.add("result:   ALLOW by grant " + d.grant().label());
        } else {
            out.add("result:   DENY: " + (namespace != null ? namespace : d.denial()));
        }
        return out;
    }

    /** What a tenant's members may name new keys, for messages: {@code (its names start with acme/)}. */
    public String namespaceHint(String tenant) {
        Tenant t = tenants.get(tenant);
        if (t == null) return "";
        return t.keyPrefixes().isEmpty() ? " (its keys take the names no other tenant's prefixes claim)"
                : " (its key names start with " + String.join(" or ", t.keyPrefixes()) + ")";
    }

    // ------------------------------------------------------------------ without a policy file

    /**
     * The policy in force when none is configured, as a file: today's rules before
     * policies existed. Every caller that can open the socket (its mode and group are the
     * gate) may use every Kms method on every key; the daemon's own user and root may
     * also use every Admin method, manage tokens, act on every tenant and re-encrypt
     * from REVOKED versions and have certificates signed for any name. Unidentified callers
     * may do nothing.
     */
    public static String builtInText(String daemonUser) {
        String admins = "[\"user:root\"]";
        try {
            Principal.parse("user:" + daemonUser);
            if (!daemonUser.equals("root")) admins = "[\"user:" + daemonUser + "\", \"user:root\"]";
        } catch (IllegalArgumentException unnamed) {
            // a daemon user that cannot be written in a policy is nobody's name: root alone administers
        }
        return """
                # enclave-kms policy: the rules in force without a policy file (docs/policy.md).
                # Every caller that can open the socket may use every Kms method on every key;
                # the daemon's user and root may also administer keys, tokens and the policy,
                # and have CA keys sign certificates for any name (socket users: nameless only).
                version: 1
                default_tenant: default
                tenants:
                  default:
                    grants:
                      - name: socket-users
                        methods: ["Kms.*"]
                        keys: ["*"]
                      - name: administrators
                        to: %s
                        methods: ["Kms.*", "Admin.*"]
                        keys: ["*"]
                        reencrypt_revoked: true
                        token_admin: true
                        all_tenants: true
                        san: ["DNS:*", "IP:*"]
                """.formatted(admins);
    }

    public static Policy builtIn(String daemonUser) {
        try {
            return PolicyParser.parse(builtInText(daemonUser), "built-in");
        } catch (PolicyException e) {
            throw new IllegalStateException("the built-in policy does not parse: " + e.getMessage(), e);
        }
    }
}
