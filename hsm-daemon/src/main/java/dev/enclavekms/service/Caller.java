package dev.enclavekms.service;

import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.policy.Decision;
import dev.enclavekms.policy.Identity;
import dev.enclavekms.policy.Policy;
import dev.enclavekms.policy.Request;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryStore;
import dev.enclavekms.registry.TokenRecord;

import java.util.Map;

/**
 * Who is making one call, for which method, under which policy: the services ask it
 * before they use a key. Every key lookup of a call goes through {@link #resolve}, which
 * decides in the order that reveals least:
 *
 * <ol>
 *   <li>the policy, on the key's <em>name</em> and the call's context: a caller without a
 *       grant for the name is denied without the key being looked up, so it learns nothing
 *       about whether the key exists;</li>
 *   <li>the lookup, limited to the caller's tenant (unless its grant acts on all tenants):
 *       another tenant's key is {@link KmsError.KeyNotFound} with the very message a
 *       missing key gets;</li>
 *   <li>the policy again, with what only the key can tell: its purpose.</li>
 * </ol>
 *
 * <p>{@link #system()} is the daemon itself (the lifecycle sweep) and tests: every key,
 * no checks. The varlink API never uses it.
 */
public final class Caller {
    private static final Caller SYSTEM = new Caller(null, null, null, KeyRecord.DEFAULT_TENANT);

    private final Policy policy;
    private final Identity identity;
    private final String method;
    private final String tenant;

    private Caller(Policy policy, Identity identity, String method, String tenant) {
        this.policy = policy;
        this.identity = identity;
        this.method = method;
        this.tenant = tenant;
    }

    public static Caller system() {
        return SYSTEM;
    }

    /** @param method the policy's name of the method, e.g. {@code Kms.Decrypt} */
    public static Caller of(Policy policy, Identity identity, String method) {
        return new Caller(policy, identity, method, policy.tenantOf(identity));
    }

    public boolean isSystem() {
        return policy == null;
    }

    public Identity identity() {
        return identity;
    }

    public Policy policy() {
        return policy;
    }

    public String method() {
        return method;
    }

    /** The caller's tenant, or null when it belongs to none (then every call is denied). */
    public String tenant() {
        return tenant;
    }

    /** Admission: does any grant of the caller's cover the method at all? */
    public void admit() throws KmsError.PermissionDenied {
        if (isSystem()) return;
        require(policy.decide(identity, Request.method(method)));
    }

    private static Decision require(Decision d) throws KmsError.PermissionDenied {
        if (!d.allowed()) throw new KmsError.PermissionDenied(d.denial());
        return d;
    }

    private static Map<String, String> entries(EncryptionContext context) {
        return context == null ? null : context.entries();
    }

    /**
     * The key named {@code name}, if this caller may use it for its method with this
     * context (null for methods without one).
     *
     * @throws KmsError.PermissionDenied no grant allows it
     * @throws KmsError.KeyNotFound      no such key in the caller's tenant
     */
    public KeyRecord resolve(RegistryStore registry, String name, EncryptionContext context) throws KmsError {
        if (isSystem()) {
            return registry.find(name).orElseThrow(() -> new KmsError.KeyNotFound(name));
        }
        Decision byName = require(policy.decide(identity, Request.name(method, name, entries(context))));
        boolean anyTenant = byName.allTenants();
        KeyRecord key = registry.find(name).filter(k -> anyTenant || k.tenant().equals(tenant))
                .orElseThrow(() -> new KmsError.KeyNotFound(name));
        require(policy.decide(identity, Request.key(method, name, key.purpose(), key.tenant(), entries(context))));
        return key;
    }

    /** Whether ReEncrypt may use a REVOKED version of {@code key}: the caller's grant has reencrypt_revoked. */
    public boolean mayUseRevoked(KeyRecord key, EncryptionContext context) {
        if (isSystem()) return true;
        return policy.decide(identity, Request.key(method, key.name(), key.purpose(), key.tenant(), entries(context))
                .needingRevoked()).allowed();
    }

    /**
     * Whether a grant lets the caller have the CA key {@code key} sign a certificate naming
     * {@code san} ({@code DNS:name} or {@code IP:address}): the grant's {@code san} patterns.
     */
    public boolean mayRequestSan(KeyRecord key, String san) {
        if (isSystem()) return true;
        return policy.decide(identity, Request.key(method, key.name(), key.purpose(), key.tenant(), null)
                .requestingSan(san)).allowed();
    }

    /** A grant's limit on certificate TTLs, and which grant sets it (for the refusal's message). */
    public record TtlLimit(java.time.Duration maxTtl, String grant) { }

    /**
     * The longest certificate the grants that let the caller use CA key {@code key} allow:
     * the largest {@code max_ttl_seconds} among them, or none when one of them has no such
     * limit (the daemon's ca.max-ttl-seconds still applies). Built-in callers have none.
     */
    public java.util.Optional<TtlLimit> certificateTtlLimit(KeyRecord key) {
        if (isSystem()) return java.util.Optional.empty();
        Decision d = policy.decide(identity, Request.key(method, key.name(), key.purpose(), key.tenant(), null));
        TtlLimit best = null;
        for (var g : d.matched()) {
            if (g.maxTtl() == null) return java.util.Optional.empty();
            if (best == null || g.maxTtl().compareTo(best.maxTtl()) > 0) {
                best = new TtlLimit(g.maxTtl(), "grant " + g.label() + " of tenant '" + g.tenant() + "'");
            }
        }
        return java.util.Optional.ofNullable(best);
    }

    /**
     * Whether a listing (ListKeys, Status) shows this key: it is the caller's tenant's (or
     * the caller acts on all tenants) and, for ListKeys, a grant covers its name.
     */
    public boolean sees(KeyRecord key) {
        if (isSystem()) return true;
        if (dev.enclavekms.policy.Methods.has(method, dev.enclavekms.policy.Methods.Trait.KEYED)) {
            Decision byName = policy.decide(identity, Request.name(method, key.name(), null));
            if (!byName.allowed() || !(byName.allTenants() || key.tenant().equals(tenant))) return false;
            return policy.decide(identity, Request.key(method, key.name(), key.purpose(), key.tenant(), null)).allowed();
        }
        return key.tenant().equals(tenant) || policy.decide(identity, Request.method(method)).allTenants();
    }

    /**
     * The tenant a new key of this name and purpose will belong to: the caller's own, and
     * only under a name its tenant may create; a caller acting on all tenants creates it
     * in the tenant that owns the name.
     */
    public String tenantForNewKey(String name, Purpose purpose) throws KmsError.PermissionDenied {
        if (isSystem()) return KeyRecord.DEFAULT_TENANT;
        Decision d = require(policy.decide(identity, Request.key(method, name, purpose, null, null)));
        String owner = policy.tenantOwningName(name);
        if (d.allTenants()) {
            if (owner == null) {
                throw new KmsError.PermissionDenied("no tenant may own a key named '" + name + "': no tenant's"
                        + " key_prefixes cover it and every tenant has key_prefixes (policy " + policy.source() + ")");
            }
            return owner;
        }
        if (!tenant.equals(owner)) {
            throw new KmsError.PermissionDenied(identity.describe() + " (tenant " + tenant + ") may not create a key"
                    + " named '" + name + "': the name is not the tenant's" + policy.namespaceHint(tenant));
        }
        return tenant;
    }

    /**
     * The tenant a token for {@code tokenIdentity} will be issued for: the tenant the
     * policy puts that identity in, which must be the caller's unless it acts on all tenants.
     */
    public String tenantForToken(String tokenIdentity) throws KmsError.PermissionDenied {
        if (isSystem()) return KeyRecord.DEFAULT_TENANT;
        Decision d = require(policy.decide(identity, Request.method(method)));
        String t = policy.tenantOfTokenIdentity(tokenIdentity);
        if (t == null) {
            throw new KmsError.PermissionDenied("token identity '" + tokenIdentity + "' belongs to no tenant: add"
                    + " token:" + tokenIdentity + " to a tenant's members in " + policy.source());
        }
        if (!d.allTenants() && !t.equals(tenant)) {
            throw new KmsError.PermissionDenied(identity.describe() + " (tenant " + tenant + ") may not manage tokens"
                    + " of token identity '" + tokenIdentity + "': it is not a member of tenant " + tenant);
        }
        return t;
    }

    /**
     * Admits an act on all of {@code tenant}'s sessions (RevokeSessions): the caller's own
     * tenant, or any with a grant that acts on all tenants.
     */
    public void requireTenant(String tenant) throws KmsError.PermissionDenied {
        if (isSystem()) return;
        Decision d = require(policy.decide(identity, Request.method(method)));
        if (!d.allTenants() && !tenant.equals(this.tenant)) {
            throw new KmsError.PermissionDenied(identity.describe() + " (tenant " + this.tenant + ") may not act on"
                    + " the sessions of tenant " + tenant + ": that needs a grant with all_tenants: true");
        }
    }

    /** Whether ListTokens shows, and RevokeToken may revoke, this token. */
    public boolean sees(TokenRecord token) {
        if (isSystem()) return true;
        Decision d = policy.decide(identity, Request.method(method));
        return d.allowed() && (d.allTenants() || token.tenant().equals(tenant));
    }
}
