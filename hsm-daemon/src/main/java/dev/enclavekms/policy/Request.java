package dev.enclavekms.policy;

import dev.enclavekms.registry.Purpose;

import java.util.Map;

/**
 * What a call asks for, as far as it is known when the policy is asked.
 *
 * <p>A call on a key is decided in two steps (see {@link Policy#decide}): before the key
 * is looked up, with its name and context only ({@code purpose} and {@code keyTenant}
 * null), so that a caller learns nothing about keys whose names it holds no grant
 * for; and after the lookup, with the key's purpose and tenant. A keyed method asked
 * about without a key ({@code key} null) is the admission check: does any grant cover
 * the method at all.
 *
 * @param method           policy name of the method, e.g. {@code Kms.Decrypt}
 * @param key              the key's name, or null
 * @param purpose          the key's purpose (for CreateKey: the requested one), or null when not known yet
 * @param keyTenant        the tenant that owns the key, or null when not known yet
 * @param context          the call's encryption context (empty when it has none), or null when not known
 * @param reencryptRevoked the call needs a REVOKED version (re-encryption grant)
 * @param san              a subject alternative name the call asks a CA to sign ({@code DNS:name},
 *                         {@code IP:address}), or null: asked once per name, after the key is known
 */
public record Request(String method, String key, Purpose purpose, String keyTenant, Map<String, String> context,
                      boolean reencryptRevoked, String san) {

    /** A method that acts on no key, or the admission check of one that does. */
    public static Request method(String method) {
        return new Request(method, null, null, null, null, false, null);
    }

    /** A keyed call before the key is looked up. */
    public static Request name(String method, String key, Map<String, String> context) {
        return new Request(method, key, null, null, context, false, null);
    }

    /** A keyed call once the key is known. */
    public static Request key(String method, String key, Purpose purpose, String keyTenant, Map<String, String> context) {
        return new Request(method, key, purpose, keyTenant, context, false, null);
    }

    public Request needingRevoked() {
        return new Request(method, key, purpose, keyTenant, context, true, san);
    }

    /** The same call asking for the certificate name {@code san} (grant field {@code san}). */
    public Request requestingSan(String san) {
        return new Request(method, key, purpose, keyTenant, context, reencryptRevoked, san);
    }

    /** The admission check of a keyed method: only whether a grant covers it. */
    boolean admission() {
        return key == null && Methods.has(method, Methods.Trait.KEYED);
    }
}
