package dev.enclavekms.enclave;

import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * Identifies one key object in the device: 16 random bytes, the key version's id.
 * On a PKCS#11 token it is CKA_ID. Not secret.
 */
public record ObjectId(byte[] bytes) {
    public static final int LENGTH = 16;
    private static final SecureRandom RANDOM = new SecureRandom();

    public ObjectId {
        if (bytes.length == 0 || bytes.length > 64) {
            throw new IllegalArgumentException("object id must be 1..64 bytes");
        }
        bytes = bytes.clone();
    }

    public static ObjectId random() {
        byte[] b = new byte[LENGTH];
        RANDOM.nextBytes(b);
        return new ObjectId(b);
    }

    public static ObjectId ofHex(String hex) {
        return new ObjectId(HexFormat.of().parseHex(hex));
    }

    @Override
    public byte[] bytes() {
        return bytes.clone();
    }

    public String hex() {
        return HexFormat.of().formatHex(bytes);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ObjectId other && Arrays.equals(bytes, other.bytes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(bytes);
    }

    @Override
    public String toString() {
        return hex();
    }
}
