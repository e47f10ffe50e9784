package dev.enclavekms.shard;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.DecryptionFailedException;

import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The KMS's envelope format 1 (docs/formats.md) implemented locally with the published
 * master key of the envelope test vector: a real cipher standing in for the daemon, so the
 * shard library can be tested without one (like Tink's fake KMS). It wraps data keys as
 * GenerateDataKey does and unwraps them as Decrypt does, context as AAD included.
 */
final class LocalEnvelopes implements DataKeyUnwrapper {
    /** The master key published in docs/formats.md (test vector 1): 00 01 .. 1f. */
    static final byte[] MASTER_KEY = HexFormat.of().parseHex(
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String keyName;
    private final int keyVersion;
    final AtomicInteger unwraps = new AtomicInteger();
    /** Every array returned by unwrap, to check that the library wiped it. */
    final List<byte[]> handedOut = new ArrayList<>();

    LocalEnvelopes(String keyName, int keyVersion) {
        this.keyName = keyName;
        this.keyVersion = keyVersion;
    }

    /** A fresh random data key wrapped under this key version, bound to {@code context}. */
    DataKey newDataKey(Map<String, String> context) {
        byte[] plaintext = new byte[32];
        byte[] iv = new byte[12];
        RANDOM.nextBytes(plaintext);
        RANDOM.nextBytes(iv);
        return dataKey(plaintext, iv, context);
    }

    DataKey dataKey(byte[] plaintext, byte[] iv, Map<String, String> context) {
        return new DataKey(keyName, keyVersion, plaintext.clone(), wrap(keyName, keyVersion, iv, plaintext, context));
    }

    static byte[] envelopeHeader(String keyName, int keyVersion) {
        byte[] name = keyName.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(10 + name.length).put(new byte[] {0x45, 0x4B, 0x43, 1, (byte) name.length})
                .put(name).putInt(keyVersion).put((byte) 1).array();
    }

    static byte[] wrap(String keyName, int keyVersion, byte[] iv, byte[] plaintext, Map<String, String> context) {
        byte[] header = envelopeHeader(keyName, keyVersion);
        byte[] sealed = gcm(Cipher.ENCRYPT_MODE, iv, plaintext, aad(header, context));
        return ByteBuffer.allocate(header.length + 1 + iv.length + sealed.length).put(header).put((byte) iv.length)
                .put(iv).put(sealed).array();
    }

    @Override
    public byte[] unwrap(byte[] envelope, Map<String, String> context) throws DecryptionFailedException {
        unwraps.incrementAndGet();
        try {
            int n = envelope[4] & 0xff;
            byte[] header = Arrays.copyOfRange(envelope, 0, 10 + n);
            int ivLength = envelope[10 + n];
            byte[] iv = Arrays.copyOfRange(envelope, 11 + n, 11 + n + ivLength);
            byte[] sealed = Arrays.copyOfRange(envelope, 11 + n + ivLength, envelope.length);
            byte[] key = gcm(Cipher.DECRYPT_MODE, iv, sealed, aad(header, context));
            synchronized (handedOut) {
                handedOut.add(key);
            }
            return key;
        } catch (RuntimeException e) {
            throw new DecryptionFailedException("dev.enclavekms.Kms.DecryptionFailed", Map.of("message", "decryption failed"));
        }
    }

    private static byte[] aad(byte[] header, Map<String, String> context) {
        byte[] ctx = ShardFormat.encodeContext(context);
        return ByteBuffer.allocate(header.length + ctx.length).put(header).put(ctx).array();
    }

    private static byte[] gcm(int mode, byte[] iv, byte[] input, byte[] aad) {
        try {
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(mode, new SecretKeySpec(MASTER_KEY, "AES"), new GCMParameterSpec(128, iv));
            c.updateAAD(aad);
            return c.doFinal(input);
        } catch (AEADBadTagException e) {
            throw new IllegalArgumentException("bad tag");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
