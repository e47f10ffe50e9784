package dev.enclavekms.bench;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.KmsClient;

import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The calls the benchmark sends, prepared once on a daemon: three keys ({@code bench-aes}
 * AES-256-GCM, {@code bench-p256}, {@code bench-ed25519}), 64 data-key envelopes to unwrap,
 * and 10,000 more for the batch. Every call carries the context {@code {"bench": "1"}}.
 *
 * <p>The <b>mix</b> models an inference host that loads models: per 20 calls, 14 unwrap a
 * model's data key (every model load and every worker that maps a shard needs the key;
 * this is the hot path), 3 generate a data key (new fine-tuned weights, caches and
 * checkpoints written back encrypted), 2 sign a P-256 digest (attestation statements and
 * short-lived service tokens), 1 encrypts 1 KiB directly (small secrets: API credentials,
 * configuration). That is 70 % / 15 % / 10 % / 5 %, interleaved in a fixed shuffled order.
 */
record Workload(List<Load.Calls> ops, Load.Calls mix, Load.Calls batch) {
    static final String KMS = Bench.KMS;
    static final Map<String, String> CONTEXT = Map.of("bench", "1");
    static final int BATCH = 10_000;
    static final List<String> MIX = List.of("unwrap", "unwrap", "unwrap", "unwrap", "unwrap", "unwrap", "unwrap",
            "unwrap", "unwrap", "unwrap", "unwrap", "unwrap", "unwrap", "unwrap", "generate_data_key",
            "generate_data_key", "generate_data_key", "sign_p256", "sign_p256", "encrypt_1k");

    static Workload prepare(Path socket) throws Exception {
        SecureRandom rnd = new SecureRandom();
        try (KmsClient kms = KmsClient.connect(socket)) {
            kms.createKey("bench-aes", "ENCRYPT", "AES_256_GCM", "bench", null);
            kms.createKey("bench-p256", "SIGN", "EC_P256_SHA256", "bench", null);
            kms.createKey("bench-ed25519", "SIGN", "ED25519", "bench", null);
            List<Map<String, Object>> decrypts = new ArrayList<>();
            for (DataKey k : kms.generateDataKeys("bench-aes", 64, CONTEXT)) {
                decrypts.add(params("ciphertext", b64(k.ciphertext()), "context", CONTEXT));
            }
            List<Map<String, Object>> encrypts = new ArrayList<>();
            List<Map<String, Object>> p256 = new ArrayList<>();
            List<Map<String, Object>> ed = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
                encrypts.add(params("key", "bench-aes", "plaintext", b64(bytes(rnd, 1024)), "context", CONTEXT));
                p256.add(params("key", "bench-p256", "digest", b64(sha256(bytes(rnd, 64)))));
                ed.add(params("key", "bench-ed25519", "message", b64(bytes(rnd, 32))));
            }
            List<Map<String, Object>> gdk = List.of(params("key", "bench-aes", "context", CONTEXT));
            List<Load.Calls> ops = List.of(
                    Load.Calls.of("status", KMS + "Status", List.of(Map.of())),
                    Load.Calls.of("unwrap", KMS + "Decrypt", decrypts),
                    Load.Calls.of("generate_data_key", KMS + "GenerateDataKey", gdk),
                    Load.Calls.of("encrypt_1k", KMS + "Encrypt", encrypts),
                    Load.Calls.of("sign_p256", KMS + "Sign", p256),
                    Load.Calls.of("sign_ed25519", KMS + "Sign", ed));
            Map<String, Load.Calls> byName = new LinkedHashMap<>();
            for (Load.Calls c : ops) byName.put(c.name(), c);
            List<String> order = new ArrayList<>(MIX);
            Collections.shuffle(order, new Random(9));
            byte[][] mix = new byte[order.size() * 4][];
            for (int i = 0; i < mix.length; i++) {
                byte[][] f = byName.get(order.get(i % order.size())).frames();
                mix[i] = f[i % f.length];
            }
            List<String> cts = new ArrayList<>();
            for (DataKey k : kms.generateDataKeys("bench-aes", BATCH, CONTEXT)) cts.add(b64(k.ciphertext()));
            Load.Calls batch = Load.Calls.of("decrypt_batch_10k", KMS + "DecryptBatch",
                    List.of(params("ciphertexts", cts, "context", CONTEXT)));
            return new Workload(ops, new Load.Calls("mix", mix), batch);
        }
    }

    Load.Calls op(String name) {
        if (name.equals("mix")) return mix;
        for (Load.Calls c : ops) if (c.name().equals(name)) return c;
        throw new IllegalArgumentException(name);
    }

    static Map<String, Object> params(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static byte[] bytes(SecureRandom rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    static byte[] sha256(byte[] b) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(b);
    }

    static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }
}
