package dev.enclavekms.service;

import java.util.regex.Pattern;

/**
 * Key names: 1 to 128 characters from letters, digits, '.', '_', '-' and '/', starting
 * with a letter or digit. '/' lets operators namespace keys (e.g. {@code tenant-a/weights});
 * names are never reused, because a key is never deleted (only its versions are destroyed).
 */
public final class KeyNames {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/-]{0,127}");

    private KeyNames() {
    }

    public static String check(String parameter, String name) throws KmsError.InvalidParameter {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new KmsError.InvalidParameter(parameter, parameter + ": key names are 1-128 characters of"
                    + " letters, digits, '.', '_', '-' and '/', starting with a letter or digit");
        }
        return name;
    }
}
