package dev.enclavekms.policy;

import java.util.Locale;
import java.util.regex.Pattern;

/**
 * One name a caller can be known by in a policy: {@code user:NAME}, {@code group:NAME}
 * (SO_PEERCRED, names as the JDK resolves them; a uid or gid without a name is its
 * number) or {@code token:NAME} (the identity a bearer token was issued for).
 */
public record Principal(Kind kind, String name) {
    /** Names of unix accounts and groups as they may appear in a policy; token identities are stricter. */
    private static final Pattern UNIX_NAME = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._@$-]{0,63}");
    private static final Pattern TOKEN_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._@-]{0,63}");

    public enum Kind {
        USER, GROUP, TOKEN;

        public String prefix() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public Principal {
        if (kind == null || name == null) throw new IllegalArgumentException("kind and name are required");
    }

    public static Principal user(String name) {
        return new Principal(Kind.USER, name);
    }

    public static Principal group(String name) {
        return new Principal(Kind.GROUP, name);
    }

    public static Principal token(String name) {
        return new Principal(Kind.TOKEN, name);
    }

    /**
     * Parses {@code user:NAME}, {@code group:NAME} or {@code token:NAME}.
     *
     * @throws IllegalArgumentException with a message fit for an operator
     */
    public static Principal parse(String s) {
        int colon = s.indexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("'" + s + "' is not an identity: write user:NAME, group:NAME or token:NAME");
        }
        String kind = s.substring(0, colon);
        String name = s.substring(colon + 1);
        Kind k = switch (kind) {
            case "user" -> Kind.USER;
            case "group" -> Kind.GROUP;
            case "token" -> Kind.TOKEN;
            default -> throw new IllegalArgumentException("'" + s + "': unknown identity kind '" + kind
                    + "' (user, group or token)");
        };
        if (k == Kind.TOKEN) {
            checkTokenIdentity(name);
        } else if (!UNIX_NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("'" + s + "': " + kind + " names are 1-64 characters of letters, digits,"
                    + " '.', '_', '@', '$' and '-' (a uid or gid without a name is written as its number)");
        }
        return new Principal(k, name);
    }

    /** Token identity names: 1-64 letters, digits, '.', '_', '@', '-', starting with a letter or digit. */
    public static String checkTokenIdentity(String name) {
        if (name == null || !TOKEN_NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("token identity names are 1-64 characters of letters, digits, '.', '_',"
                    + " '@' and '-', starting with a letter or digit");
        }
        return name;
    }

    @Override
    public String toString() {
        return kind.prefix() + ":" + name;
    }
}
