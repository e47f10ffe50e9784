package dev.enclavekms.service;

import java.util.regex.Pattern;

/**
 * Key names: 1 to 128 characters from letters, digits, '.', '_', '-' and '/', starting
 * with a letter or digit. '/' lets operators namespace keys (e.g. {@code tenant-a/weights});
 * names are never reused, because a key is never deleted (only its versions are destroyed).
 *
 * <p>Names starting with {@value #RESERVED_PREFIX} belong to the daemon's own keys (the
 * audit log's {@code _audit/hmac} and {@code _audit/signing}): {@link #check} refuses them,
 * so no caller can create one, and the services refuse to use or change them on a caller's
 * behalf. Only {@link KeyAdmin#ensureInternalKey} creates them.
 */
public final class KeyNames {
    /** The first character of every reserved (internal) key name. */
    public static final String RESERVED_PREFIX = "_";
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/-]{0,127}");
    private static final Pattern INTERNAL = Pattern.compile("_[a-z]+/[a-z0-9-]{1,64}");

    private KeyNames() {
    }

    public static String check(String parameter, String name) throws KmsError.InvalidParameter {
        if (reserved(name)) {
            throw new KmsError.InvalidParameter(parameter, parameter + ": names starting with '" + RESERVED_PREFIX
                    + "' are reserved for the daemon's own keys");
        }
        if (name == null || !NAME.matcher(name).matches()) {
            throw new KmsError.InvalidParameter(parameter, parameter + ": key names are 1-128 characters of"
                    + " letters, digits, '.', '_', '-' and '/', starting with a letter or digit");
        }
        return name;
    }

    /** True for a name of the daemon's own keys, which callers can neither create nor use. */
    public static boolean reserved(String name) {
        return name != null && name.startsWith(RESERVED_PREFIX);
    }

    /** True when {@code name} is a well-formed internal key name such as {@code _audit/hmac}. */
    static boolean isInternal(String name) {
        return name != null && INTERNAL.matcher(name).matches();
    }
}
