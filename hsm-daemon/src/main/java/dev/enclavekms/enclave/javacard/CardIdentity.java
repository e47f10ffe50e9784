package dev.enclavekms.enclave.javacard;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The pinned identity of one KeyVault card: the SHA-256 fingerprint of its static P-256
 * identity public key (the 65-byte uncompressed point), recorded at provisioning. The host
 * refuses a card whose identity key has another fingerprint, and the secure channel's receipt
 * proves the card holds the private half. Not secret.
 */
public record CardIdentity(String fingerprint) {

    /**
     * The identity key a fresh jcardsim 3.0.6.0 simulator generates for the applet: jcardsim's
     * EC key generation is not random, so every simulated KeyVault has this key (measured,
     * see docs/javacard.md). A card with it is a simulator, wherever it is attached.
     */
    static final String JCARDSIM_DEFAULT = "66881a88bf72d783a60b67664590e4aa69bd536046b17d45c1bf31457f90e828";

    public CardIdentity {
        if (!fingerprint.matches("[0-9a-f]{64}")) {
            throw new IllegalArgumentException("a card identity is 64 lowercase hex digits (SHA-256)");
        }
    }

    /** The identity of the card whose identity public key is {@code point} (04 ‖ X ‖ Y). */
    public static CardIdentity ofPoint(byte[] point) {
        try {
            return new CardIdentity(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(point)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from the JDK", e);
        }
    }

    /** True when {@code point} is this identity's key. */
    public boolean matches(byte[] point) {
        return MessageDigest.isEqual(fingerprint.getBytes(java.nio.charset.StandardCharsets.US_ASCII),
                ofPoint(point).fingerprint.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    }

    /** True for the identity every fresh jcardsim simulator gives the applet: a simulated card. */
    public boolean isJcardsimDefault() {
        return fingerprint.equals(JCARDSIM_DEFAULT);
    }
}
