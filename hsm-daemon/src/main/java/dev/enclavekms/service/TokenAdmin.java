package dev.enclavekms.service;

import dev.enclavekms.policy.BearerToken;
import dev.enclavekms.policy.Identity;
import dev.enclavekms.policy.Policy;
import dev.enclavekms.policy.Principal;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.RegistryException;
import dev.enclavekms.registry.RegistryStore;
import dev.enclavekms.registry.TokenRecord;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * Bearer tokens: issued by token administrators for a token identity of their tenant,
 * shown once, stored as a hash (see {@link BearerToken}), checked when a connection
 * presents one and again on every later call of that connection, so a revoked or
 * expired token stops working at once, not at the next connection.
 */
public final class TokenAdmin {
    private static final System.Logger LOG = System.getLogger(TokenAdmin.class.getName());
    public static final Duration DEFAULT_TTL = Duration.ofDays(90);
    public static final Duration MIN_TTL = Duration.ofMinutes(1);
    public static final Duration MAX_TTL = Duration.ofDays(366);

    private final RegistryStore registry;
    private final Clock clock;

    public TokenAdmin(RegistryStore registry, Clock clock) {
        this.registry = registry;
        this.clock = clock;
    }

    /** A new token: {@code token} is its only copy, for the one reply that shows it. */
    public record Issued(String token, TokenRecord record) {
        @Override
        public String toString() {
            return "Issued[" + record + "]"; // never the token
        }
    }

    public Issued create(Caller caller, String identity, Duration ttl) throws KmsError {
        try {
            Principal.checkTokenIdentity(identity);
        } catch (IllegalArgumentException e) {
            throw new KmsError.InvalidParameter("identity", "identity: " + e.getMessage());
        }
        Duration life = ttl == null ? DEFAULT_TTL : ttl;
        if (life.compareTo(MIN_TTL) < 0 || life.compareTo(MAX_TTL) > 0) {
            throw new KmsError.InvalidParameter("ttl_seconds", "ttl_seconds: a token lives " + MIN_TTL.toSeconds()
                    + " to " + MAX_TTL.toSeconds() + " seconds");
        }
        String tenant = caller.tenantForToken(identity);
        BearerToken.Minted minted = BearerToken.mint();
        Instant now = clock.instant().truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
        try {
            registry.apply(new RegistryCommand.CreateToken(minted.id(), identity, tenant, minted.hash(), now, now.plus(life)));
        } catch (RegistryException e) {
            throw new KmsError.Internal("registry write failed while creating a token", e);
        }
        LOG.log(System.Logger.Level.INFO, "created token " + minted.id() + " for token:" + identity + " (tenant " + tenant
                + ", expires " + now.plus(life) + ")");
        return new Issued(minted.secret(), registry.findToken(minted.id()).orElseThrow());
    }

    /** The tokens the caller may manage: its tenant's, or all for a caller acting on every tenant. */
    public List<TokenRecord> list(Caller caller) {
        return registry.tokens().stream().filter(caller::sees).toList();
    }

    /** Revokes a token for good; revoking a revoked token changes nothing and answers the same. */
    public TokenRecord revoke(Caller caller, String id) throws KmsError {
        TokenRecord t = registry.findToken(id).filter(caller::sees).orElseThrow(() ->
                new KmsError.InvalidParameter("id", "id: no token with id '" + id + "'"));
        if (t.revoked() != null) {
            return t;
        }
        try {
            registry.apply(new RegistryCommand.RevokeToken(id, clock.instant().truncatedTo(java.time.temporal.ChronoUnit.SECONDS)));
        } catch (RegistryException.Conflict raced) {
            // revoked by someone else meanwhile: the outcome the caller wanted
        } catch (RegistryException e) {
            throw new KmsError.Internal("registry write failed while revoking token " + id, e);
        }
        LOG.log(System.Logger.Level.INFO, "revoked token " + id + " of token:" + t.identity());
        return registry.findToken(id).orElseThrow();
    }

    /**
     * The token a connection presents. Unknown, malformed and wrong tokens get one
     * message; revoked and expired ones, only once the secret has matched, say so.
     * Messages name the token's id at most, never the token.
     *
     * @throws KmsError.PermissionDenied when it is not a valid token now, under {@code policy}
     */
    public TokenRecord authenticate(String presented, Policy policy) throws KmsError.PermissionDenied {
        String id = BearerToken.idOf(presented);
        TokenRecord t = id == null ? null : registry.findToken(id).orElse(null);
        // Hash even when there is nothing to compare with, so the answer takes as long.
        boolean match = BearerToken.matches(t == null ? "00".repeat(32) : t.hash(), presented == null ? "" : presented);
        if (t == null || !match) {
            throw new KmsError.PermissionDenied("the token is not valid: it is malformed, unknown or wrong"
                    + " (tokens look like ekms_<id>_<secret> and come from 'kmsctl token create')");
        }
        return check(t, policy);
    }

    /** A token that was valid when presented, checked again for a later call of its connection. */
    public TokenRecord revalidate(Identity who, Policy policy) throws KmsError.PermissionDenied {
        TokenRecord t = registry.findToken(who.tokenId()).orElseThrow(() -> new KmsError.PermissionDenied(
                "token " + who.tokenId() + " no longer exists; authenticate again on a new connection"));
        return check(t, policy);
    }

    private TokenRecord check(TokenRecord t, Policy policy) throws KmsError.PermissionDenied {
        if (t.revoked() != null) {
            throw new KmsError.PermissionDenied("token " + t.id() + " (token:" + t.identity() + ") was revoked at "
                    + t.revoked());
        }
        Instant now = clock.instant();
        if (!now.isBefore(t.expires())) {
            throw new KmsError.PermissionDenied("token " + t.id() + " (token:" + t.identity() + ") expired at "
                    + t.expires());
        }
        String tenant = policy.tenantOfTokenIdentity(t.identity());
        if (!t.tenant().equals(tenant)) {
            throw new KmsError.PermissionDenied("token " + t.id() + " (token:" + t.identity() + ") was issued for"
                    + " another tenant than the policy now puts token:" + t.identity() + " in; ask for a new token");
        }
        return t;
    }
}
