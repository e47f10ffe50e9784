package dev.enclavekms.bench.shard;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.shard.DataKeyUnwrapper;
import dev.enclavekms.shard.ShardFormat;

import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Map;

/**
 * Data keys wrapped in the KMS's envelope format 1 (docs/formats.md) under a random
 * master key held in this process, and the matching unwrapper. The shard benchmark
 * measures the body of a file (gigabytes of AES-GCM), not the one KMS call per file that
 * gets its data key (bench/run measures that: {@code unwrap}, {@code generate_data_key}),
 * so it needs no daemon; the envelope is a real AES-GCM envelope all the same.
 */
final class LocalDataKeys implements DataKeyUnwrapper {
    private static final String KEY_NAME = "bench-shards";
    private final SecureRandom random = new SecureRandom();
    private final byte[] masterKey = new byte[32];

    LocalDataKeys() {
        random.nextBytes(masterKey);
    }

    DataKey generate(Map<String, String> context) {
        byte[] plaintext = new byte[ShardFormat.DATA_KEY_BYTES];
        byte[] iv = new byte[12];
        random.nextBytes(plaintext);
        random.nextBytes(iv);
        byte[] header = header();
        byte[] sealed = gcm(Cipher.ENCRYPT_MODE, iv, plaintext, aad(header, context));
        byte[] envelope = ByteBuffer.allocate(header.length + 1 + iv.length + sealed.length)
                .put(header).put((byte) iv.length).put(iv).put(sealed).array();
        return new DataKey(KEY_NAME, 1, plaintext, envelope);
    }

    @Override
    public byte[] unwrap(byte[] envelope, Map<String, String> context) {
        int n = envelope[4] & 0xff;
        byte[] header = Arrays.copyOfRange(envelope, 0, 10 + n);
        int ivLength = envelope[10 + n];
        byte[] iv = Arrays.copyOfRange(envelope, 11 + n, 11 + n + ivLength);
        byte[] sealed = Arrays.copyOfRange(envelope, 11 + n + ivLength, envelope.length);
        return gcm(Cipher.DECRYPT_MODE, iv, sealed, aad(header, context));
    }

    /** magic "EKC", version 1, name length, name, u32 key version, scheme 1. */
    private static byte[] header() {
        byte[] name = KEY_NAME.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(10 + name.length).put(new byte[] {0x45, 0x4B, 0x43, 1, (byte) name.length})
                .put(name).putInt(1).put((byte) 1).array();
    }

    private static byte[] aad(byte[] header, Map<String, String> context) {
        byte[] ctx = ShardFormat.encodeContext(context);
        return ByteBuffer.allocate(header.length + ctx.length).put(header).put(ctx).array();
    }

    private byte[] gcm(int mode, byte[] iv, byte[] input, byte[] aad) {
        try {
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(mode, new SecretKeySpec(masterKey, "AES"), new GCMParameterSpec(128, iv));
            c.updateAAD(aad);
            return c.doFinal(input);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("local envelope: " + e, e);
        }
    }
}
