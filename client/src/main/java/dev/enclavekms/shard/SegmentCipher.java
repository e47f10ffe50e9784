package dev.enclavekms.shard;

import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.security.GeneralSecurityException;
import java.util.Arrays;

/**
 * AES-256-GCM over one segment at a time. Segment {@code i} of {@code N} uses the nonce
 * {@code prefix(7) ‖ u32be(i) ‖ (i == N-1 ? 01 : 00)} and no associated data (the header is
 * bound through the segment key, see {@link ShardKeys}). A ciphertext segment is the
 * ciphertext followed by the 16-byte tag.
 *
 * <p>Not thread-safe (it holds a {@link Cipher}): one per thread.
 */
final class SegmentCipher {
    private static final int TAG_BITS = ShardFormat.TAG_BYTES * 8;

    private final Cipher cipher;
    private final SecretKeySpec key;
    private final byte[] nonce = new byte[ShardFormat.NONCE_BYTES];

    SegmentCipher(ShardKeys keys, byte[] noncePrefix) {
        try {
            this.cipher = Cipher.getInstance("AES/GCM/NoPadding");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES/GCM/NoPadding is missing from this JDK", e);
        }
        this.key = keys.segmentKey();
        System.arraycopy(noncePrefix, 0, nonce, 0, ShardFormat.NONCE_PREFIX_BYTES);
    }

    private GCMParameterSpec nonce(long index, boolean last) {
        if (index < 0 || index >= ShardFormat.MAX_SEGMENTS) {
            throw new IllegalArgumentException("segment index " + index + " is outside 0..2^32-1");
        }
        int p = ShardFormat.NONCE_PREFIX_BYTES;
        nonce[p] = (byte) (index >>> 24);
        nonce[p + 1] = (byte) (index >>> 16);
        nonce[p + 2] = (byte) (index >>> 8);
        nonce[p + 3] = (byte) index;
        nonce[p + 4] = (byte) (last ? 1 : 0);
        return new GCMParameterSpec(TAG_BITS, nonce);
    }

    /** Encrypts {@code len} plaintext bytes into {@code out}; returns {@code len + 16}. */
    int seal(long index, boolean last, byte[] in, int inOff, int len, byte[] out, int outOff) {
        try {
            cipher.init(Cipher.ENCRYPT_MODE, key, nonce(index, last));
            return cipher.doFinal(in, inOff, len, out, outOff);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM encryption failed", e);
        }
    }

    /**
     * Decrypts a ciphertext segment of {@code len} bytes (at least the tag) into
     * {@code out}; returns the plaintext length. On failure {@code out}'s range is zeroed
     * before the exception is thrown, and the failure is diagnosed: a segment that
     * authenticates with the other last-segment flag means the file was cut (it was not the
     * last) or extended (it was the last).
     *
     * @throws ShardException SEGMENT_AUTHENTICATION_FAILED, TRUNCATED or TRAILING_DATA
     */
    int open(long index, boolean last, byte[] in, int inOff, int len, byte[] out, int outOff) throws ShardException {
        if (len < ShardFormat.TAG_BYTES) {
            throw new ShardException(ShardException.Reason.TRUNCATED, index,
                    "the shard is truncated: it ends inside segment " + index);
        }
        if (tryOpen(index, last, in, inOff, len, out, outOff)) {
            return len - ShardFormat.TAG_BYTES;
        }
        boolean otherFlag = tryOpen(index, !last, in, inOff, len, out, outOff);
        Arrays.fill(out, outOff, outOff + len - ShardFormat.TAG_BYTES, (byte) 0);
        if (otherFlag && last) {
            throw new ShardException(ShardException.Reason.TRUNCATED, index,
                    "the shard is truncated: segment " + index + " is not its final segment");
        }
        if (otherFlag) {
            throw new ShardException(ShardException.Reason.TRAILING_DATA, index,
                    "data follows the final segment (segment " + index + "): the shard was extended");
        }
        if (last) {
            throw new ShardException(ShardException.Reason.SEGMENT_AUTHENTICATION_FAILED, index,
                    "segment " + index + ", the final one, fails authentication: the shard was modified, or cut "
                            + "inside this segment; its plaintext is withheld");
        }
        throw failed(index);
    }

    /** True when the segment authenticates as segment {@code index} with flag {@code last}. */
    boolean authenticates(long index, boolean last, byte[] in, int inOff, int len, byte[] scratch) {
        boolean ok = len >= ShardFormat.TAG_BYTES && tryOpen(index, last, in, inOff, len, scratch, 0);
        Arrays.fill(scratch, 0, Math.max(0, len - ShardFormat.TAG_BYTES), (byte) 0);
        return ok;
    }

    private boolean tryOpen(long index, boolean last, byte[] in, int inOff, int len, byte[] out, int outOff) {
        try {
            cipher.init(Cipher.DECRYPT_MODE, key, nonce(index, last));
            cipher.doFinal(in, inOff, len, out, outOff);
            return true;
        } catch (AEADBadTagException e) {
            // JCE's GCM checks the tag before it releases plaintext; the range is wiped anyway
            Arrays.fill(out, outOff, outOff + len - ShardFormat.TAG_BYTES, (byte) 0);
            return false;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM decryption failed", e);
        }
    }

    static ShardException failed(long index) {
        return new ShardException(ShardException.Reason.SEGMENT_AUTHENTICATION_FAILED, index,
                "segment " + index + " fails authentication: the shard was modified, or the segment was moved or "
                        + "taken from another file; its plaintext is withheld");
    }
}
