package dev.enclavekms.policy;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * Bearer tokens: {@code ekms_<id>_<secret>}, where the id (16 hex digits) names the
 * token in lists, logs and audit records, and the secret is 256 random bits
 * (43 characters of unpadded base64url). The prefix lets secret scanners find leaked
 * tokens.
 *
 * <p>Only SHA-256 of the whole token string is stored. No slow password hash is needed:
 * those exist to make guessing low-entropy passwords expensive, and nobody can guess
 * 256 random bits, so a stolen hash is as useless as a slow one would be, while
 * checking a token stays one fast hash per connection. Hashes are compared with
 * {@link MessageDigest#isEqual}, in time independent of where they differ.
 */
public final class BearerToken {
    public static final String PREFIX = "ekms_";
    private static final Pattern FORMAT = Pattern.compile("ekms_([0-9a-f]{16})_([A-Za-z0-9_-]{43})");
    private static final SecureRandom RANDOM = new SecureRandom();

    private BearerToken() {
    }

    /**
     * A freshly minted token. {@code secret} is the only copy of the token's text the
     * daemon ever holds; it goes into one reply and nowhere else.
     */
    public record Minted(String id, String secret, String hash) {
        @Override
        public String toString() {
            return "token " + id; // never the secret
        }
    }

    public static Minted mint() {
        byte[] id = new byte[8];
        byte[] secret = new byte[32];
        RANDOM.nextBytes(id);
        RANDOM.nextBytes(secret);
        String idHex = HexFormat.of().formatHex(id);
        String text = PREFIX + idHex + "_" + Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
        java.util.Arrays.fill(secret, (byte) 0);
        return new Minted(idHex, text, hash(text));
    }

    /** The id of a presented token, or null when it does not have the token format. */
    public static String idOf(String presented) {
        if (presented == null) return null;
        var m = FORMAT.matcher(presented);
        return m.matches() ? m.group(1) : null;
    }

    /** SHA-256 of the token text, hex. */
    public static String hash(String token) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(token.getBytes(StandardCharsets.US_ASCII)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Whether {@code presented} is the token whose hash is {@code storedHash}; constant time in the hash. */
    public static boolean matches(String storedHash, String presented) {
        byte[] want = HexFormat.of().parseHex(storedHash);
        byte[] got = HexFormat.of().parseHex(hash(presented));
        return MessageDigest.isEqual(want, got);
    }
}
