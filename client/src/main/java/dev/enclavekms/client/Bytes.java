package dev.enclavekms.client;

import java.security.MessageDigest;
import java.util.Arrays;

/** Equality, hashing and printing of the byte arrays held by result records. */
final class Bytes {
    private Bytes() {
    }

    /** Constant-time for equal lengths, so comparing secrets does not leak where they differ. */
    static boolean equal(byte[] a, byte[] b) {
        return MessageDigest.isEqual(a, b);
    }

    static int hash(byte[] b) {
        return Arrays.hashCode(b);
    }

    /** What a record prints instead of secret bytes: only their length. */
    static String redacted(byte[] b) {
        return "<" + b.length + " bytes, redacted>";
    }

    /** What a record prints for non-secret bytes: their length, not their content. */
    static String length(byte[] b) {
        return "<" + b.length + " bytes>";
    }
}
