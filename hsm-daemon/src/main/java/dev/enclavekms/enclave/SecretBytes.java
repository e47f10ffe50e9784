package dev.enclavekms.enclave;

import java.security.MessageDigest;
import java.util.Arrays;

/**
 * Holds secret bytes (a plaintext data key, decrypted secret). Final, no {@code toString}
 * that shows the bytes, constant-time {@code equals}; the bytes come out only through
 * {@link #reveal()}, so every access can be found by searching for it. {@link #close()}
 * zeroes the holder's copy (best effort: the JVM may have copied the array during GC).
 */
public final class SecretBytes implements AutoCloseable {
    private final byte[] bytes;
    private volatile boolean destroyed;

    private SecretBytes(byte[] bytes) {
        this.bytes = bytes;
    }

    /** Takes ownership of {@code bytes}: the caller must not keep or change the array. */
    public static SecretBytes adopt(byte[] bytes) {
        return new SecretBytes(bytes);
    }

    /** Copies {@code bytes}; the caller keeps and should wipe its own array. */
    public static SecretBytes copyOf(byte[] bytes) {
        return new SecretBytes(bytes.clone());
    }

    public int length() {
        return bytes.length;
    }

    /** A copy of the secret bytes. Callers wipe it when done. */
    public byte[] reveal() {
        if (destroyed) {
            throw new IllegalStateException("secret already destroyed");
        }
        return bytes.clone();
    }

    @Override
    public void close() {
        destroyed = true;
        Arrays.fill(bytes, (byte) 0);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SecretBytes other && MessageDigest.isEqual(bytes, other.bytes);
    }

    @Override
    public int hashCode() {
        return bytes.length; // never derived from the content
    }

    @Override
    public String toString() {
        return "SecretBytes[" + bytes.length + " bytes]";
    }
}
