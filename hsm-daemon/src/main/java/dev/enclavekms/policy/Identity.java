package dev.enclavekms.policy;

import java.util.ArrayList;
import java.util.List;

/**
 * Who is calling, for the life of one connection: the kernel's view (SO_PEERCRED user
 * and group at connect time, with their numbers when they could be resolved) and, once
 * the connection has presented a bearer token, the identity the token was issued for.
 *
 * <p>A connection that has authenticated with a token acts as {@code token:NAME} only:
 * the grants of its unix user and group no longer apply to it (a token is how a caller
 * whose uid says little, e.g. one of many containers under one uid, gets an identity
 * of its own; adding both sets of grants would make either hard to reason about).
 *
 * @param user          user name, or the uid as a number when it has no name; {@code ?} when unknown
 * @param group         primary group name (or number); {@code ?} when unknown
 * @param uid           the uid, or null when it could not be resolved
 * @param gid           the gid, or null when it could not be resolved
 * @param tokenIdentity the identity of the token presented on this connection, or null
 * @param tokenId       the id of that token (never its secret), or null
 * @param connectionId  the connection's number within this daemon run
 */
public record Identity(String user, String group, Long uid, Long gid, String tokenIdentity, String tokenId,
                       long connectionId) {
    /** The name SO_PEERCRED gives when credentials could not be read: such a caller is never granted anything. */
    public static final String UNKNOWN = "?";

    public static Identity unix(String user, String group, Long uid, Long gid, long connectionId) {
        return new Identity(user, group, uid, gid, null, null, connectionId);
    }

    /** The same connection after it presented a valid token. */
    public Identity withToken(String identity, String id) {
        return new Identity(user, group, uid, gid, identity, id, connectionId);
    }

    public boolean authenticated() {
        return tokenIdentity != null;
    }

    /**
     * The names grants are matched against: the token identity alone after
     * authentication, else user then primary group. Empty for an unidentified peer.
     */
    public List<Principal> principals() {
        if (tokenIdentity != null) {
            return List.of(Principal.token(tokenIdentity));
        }
        List<Principal> out = new ArrayList<>(2);
        if (user != null && !user.equals(UNKNOWN)) out.add(Principal.user(user));
        if (group != null && !group.equals(UNKNOWN)) out.add(Principal.group(group));
        return out;
    }

    /**
     * An identity written as policies and {@code kmsctl policy explain --as} write it:
     * {@code user:alice}, {@code user:alice,group:ml}, {@code group:ml} or {@code token:ci}.
     *
     * @throws IllegalArgumentException with a message for the operator
     */
    public static Identity parse(String spec) {
        String user = UNKNOWN;
        String group = UNKNOWN;
        String token = null;
        for (String part : spec.split(",", -1)) {
            Principal p = Principal.parse(part.trim());
            switch (p.kind()) {
                case USER -> {
                    if (!user.equals(UNKNOWN)) throw new IllegalArgumentException("'" + spec + "': two users");
                    user = p.name();
                }
                case GROUP -> {
                    if (!group.equals(UNKNOWN)) throw new IllegalArgumentException("'" + spec + "': two groups");
                    group = p.name();
                }
                case TOKEN -> {
                    if (token != null) throw new IllegalArgumentException("'" + spec + "': two tokens");
                    token = p.name();
                }
            }
        }
        if (token != null && (!user.equals(UNKNOWN) || !group.equals(UNKNOWN))) {
            throw new IllegalArgumentException("'" + spec + "': a token identity stands alone (a connection that"
                    + " presented a token acts as the token only)");
        }
        Identity i = unix(user, group, null, null, 0);
        return token == null ? i : i.withToken(token, null);
    }

    /** How messages name the caller, e.g. {@code user:alice (group ml)} or {@code token:ci (token 1f2e..., user:runner)}. */
    public String describe() {
        if (tokenIdentity != null) {
            if (tokenId == null) return "token:" + tokenIdentity;
            return "token:" + tokenIdentity + " (token " + tokenId
                    + (user == null || user.equals(UNKNOWN) ? "" : ", connected as user:" + user) + ")";
        }
        if (user == null || user.equals(UNKNOWN)) {
            return group == null || group.equals(UNKNOWN) ? "an unidentified caller (its credentials could not be read)"
                    : "group:" + group;
        }
        return "user:" + user + (group == null || group.equals(UNKNOWN) ? "" : " (group " + group + ")");
    }
}
