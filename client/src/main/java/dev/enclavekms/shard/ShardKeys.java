package dev.enclavekms.shard;

import javax.crypto.KDF;
import javax.crypto.Mac;
import javax.crypto.spec.HKDFParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Arrays;

/**
 * The two keys of one shard file, derived from its data key:
 *
 * <pre>
 *   D   = SHA-256(parameters)                       header bytes 0 .. 48+c
 *   OKM = HKDF-SHA256(IKM = data key, salt = salt, info = "enclave-kms shard 1" ‖ D, L = 64)
 *   segment key = OKM[0..32)    AES-256-GCM key of every segment
 *   header key  = OKM[32..64)   HMAC-SHA256 key of the header tag
 * </pre>
 *
 * Binding D into the derivation binds every parameter (segment size, salt, nonce prefix,
 * context) to every segment: change one and every segment fails. The data key itself is
 * not kept: it is wiped by the caller once this object exists.
 *
 * <p>Holds secrets: {@link #close()} wipes them (best effort — JCE key objects keep copies
 * that cannot be wiped, see FIELD-NOTES "Wiping"). No toString.
 */
final class ShardKeys implements AutoCloseable {
    private final byte[] segmentKey;
    private final byte[] headerKey;

    private ShardKeys(byte[] segmentKey, byte[] headerKey) {
        this.segmentKey = segmentKey;
        this.headerKey = headerKey;
    }

    /**
     * @param dataKey    the 32-byte data key (not modified; the caller wipes it)
     * @param parameters the header's parameter bytes (0 .. 48+c), which include the salt
     */
    static ShardKeys derive(byte[] dataKey, byte[] salt, byte[] parameters) {
        if (dataKey.length != ShardFormat.DATA_KEY_BYTES) {
            throw new IllegalArgumentException("a shard data key has " + ShardFormat.DATA_KEY_BYTES + " bytes, not "
                    + dataKey.length);
        }
        byte[] okm = null;
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(parameters);
            byte[] info = new byte[ShardFormat.KDF_LABEL.length + digest.length];
            System.arraycopy(ShardFormat.KDF_LABEL, 0, info, 0, ShardFormat.KDF_LABEL.length);
            System.arraycopy(digest, 0, info, ShardFormat.KDF_LABEL.length, digest.length);
            okm = KDF.getInstance("HKDF-SHA256").deriveData(
                    HKDFParameterSpec.ofExtract().addIKM(dataKey).addSalt(salt).thenExpand(info, 64));
            return new ShardKeys(Arrays.copyOfRange(okm, 0, 32), Arrays.copyOfRange(okm, 32, 64));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HKDF-SHA256 or SHA-256 is missing from this JDK", e);
        } finally {
            if (okm != null) {
                Arrays.fill(okm, (byte) 0);
            }
        }
    }

    /** HMAC-SHA256(header key, parameters). */
    byte[] headerTag(byte[] parameters) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(headerKey, "HmacSHA256"));
            return mac.doFinal(parameters);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is missing from this JDK", e);
        }
    }

    /** True when the header's tag is the tag of its parameters under these keys (constant time). */
    boolean verifies(ShardHeader header) {
        return MessageDigest.isEqual(headerTag(header.parameters()), header.tag());
    }

    /** A fresh JCE key object for one {@link SegmentCipher}. */
    SecretKeySpec segmentKey() {
        return new SecretKeySpec(segmentKey, "AES");
    }

    @Override
    public void close() {
        Arrays.fill(segmentKey, (byte) 0);
        Arrays.fill(headerKey, (byte) 0);
    }

    /** For the wipe test: true when both keys read back as zeros. */
    boolean wiped() {
        for (byte b : segmentKey) if (b != 0) return false;
        for (byte b : headerKey) if (b != 0) return false;
        return true;
    }
}
