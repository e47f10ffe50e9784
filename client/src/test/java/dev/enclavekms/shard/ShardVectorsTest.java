package dev.enclavekms.shard;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.json.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.crypto.Cipher;
import javax.crypto.KDF;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.HKDFParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The test vectors of docs/formats.md ("Shard files, format 1"), read from the document
 * itself so that what is published is what is tested: every intermediate value recomputed
 * with plain JCE calls, every file decrypted by the library (stream and random access), and
 * every plaintext encrypted back to the published bytes. The Python client checks the same
 * blocks independently (client-python/tests/test_shard.py).
 */
class ShardVectorsTest {
    static final Path FORMATS = Path.of(System.getProperty("enclavekms.repo", "..")).resolve("docs/formats.md");
    static final HexFormat HEX = HexFormat.of();

    @TempDir
    Path dir;

    /** The blocks of the document whose first line starts with "shard test vector", by that line. */
    static Map<String, Map<String, String>> vectorBlocks() throws Exception {
        String md = Files.readString(FORMATS, StandardCharsets.UTF_8);
        Map<String, Map<String, String>> blocks = new LinkedHashMap<>();
        int at = 0;
        while ((at = md.indexOf("```text\n", at)) >= 0) {
            int end = md.indexOf("\n```", at + 8);
            List<String> lines = md.substring(at + 8, end).lines().toList();
            at = end + 4;
            if (!lines.getFirst().startsWith("shard test vector")) continue;
            Map<String, String> fields = new LinkedHashMap<>();
            String last = null;
            for (String line : lines.subList(1, lines.size())) {
                if (line.startsWith(" ")) {
                    fields.merge(last, line.strip(), String::concat);
                } else {
                    last = line.substring(0, 16).strip();
                    fields.put(last, line.substring(16).strip());
                }
            }
            blocks.put(lines.getFirst(), fields);
        }
        return blocks;
    }

    static byte[] hex(String s) {
        return HEX.parseHex(s.replace(" ", ""));
    }

    @SuppressWarnings("unchecked")
    static Map<String, String> context(String json) throws Exception {
        Map<String, String> m = new TreeMap<>();
        ((Map<String, Object>) (Map<?, ?>) Json.parseObject(json)).forEach((k, v) -> m.put(k, (String) v));
        return m;
    }

    @Test
    void document_hasTheParametersAndThreeVectors() throws Exception {
        Map<String, Map<String, String>> blocks = vectorBlocks();
        assertEquals(4, blocks.size(), blocks.keySet().toString());
        assertTrue(blocks.containsKey("shard test vector parameters"));
    }

    @Test
    void parameters_intermediateValues_areReproducedWithPlainJce() throws Exception {
        Map<String, String> p = vectorBlocks().get("shard test vector parameters");
        byte[] dataKey = hex(p.get("data key"));
        byte[] salt = hex(p.get("salt"));
        byte[] prefix = hex(p.get("nonce prefix"));
        Map<String, String> ctx = context(p.get("context"));
        assertArrayEquals("a 32-byte data key for shard 001".getBytes(StandardCharsets.US_ASCII), dataKey);
        assertArrayEquals(LocalEnvelopes.MASTER_KEY, hex(p.get("master key")));

        // The wrapped key is envelope test vector 1: reproducible from the master key.
        byte[] wrapped = hex(p.get("wrapped key"));
        assertArrayEquals(LocalEnvelopes.wrap("model-weights", 3, hex("cafebabefacedbaddecaf888"), dataKey, ctx), wrapped);

        byte[] parameters = ByteBuffer.allocate(48 + ShardFormat.encodeContext(ctx).length)
                .put(hex("454b530101")).putInt(Integer.parseInt(p.get("segment size"))).put(salt).put(prefix)
                .put(ShardFormat.encodeContext(ctx)).array();
        assertArrayEquals(hex(p.get("parameters")), parameters);
        byte[] digest = MessageDigest.getInstance("SHA-256").digest(parameters);
        assertArrayEquals(hex(p.get("digest")), digest);
        byte[] info = ByteBuffer.allocate(19 + 32).put("enclave-kms shard 1".getBytes(StandardCharsets.US_ASCII))
                .put(digest).array();
        byte[] okm = KDF.getInstance("HKDF-SHA256").deriveData(
                HKDFParameterSpec.ofExtract().addIKM(dataKey).addSalt(salt).thenExpand(info, 64));
        assertArrayEquals(hex(p.get("segment key")), Arrays.copyOf(okm, 32));
        assertArrayEquals(hex(p.get("header key")), Arrays.copyOfRange(okm, 32, 64));
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(Arrays.copyOfRange(okm, 32, 64), "HmacSHA256"));
        assertArrayEquals(hex(p.get("header tag")), mac.doFinal(parameters));

        byte[] name = "model-weights".getBytes(StandardCharsets.UTF_8);
        byte[] header = ByteBuffer.allocate(parameters.length + 32 + 1 + name.length + 4 + 2 + wrapped.length)
                .put(parameters).put(hex(p.get("header tag"))).put((byte) name.length).put(name).putInt(3)
                .putShort((short) wrapped.length).put(wrapped).array();
        assertArrayEquals(hex(p.get("header")), header);
    }

    @Test
    void everyVector_segmentsAreAesGcmUnderTheDerivedKey_andTheLibraryAgrees() throws Exception {
        Map<String, Map<String, String>> blocks = vectorBlocks();
        Map<String, String> p = blocks.get("shard test vector parameters");
        Map<String, String> ctx = context(p.get("context"));
        byte[] header = hex(p.get("header"));
        int s = Integer.parseInt(p.get("segment size"));
        LocalEnvelopes kms = new LocalEnvelopes("model-weights", 3);
        List<String> failures = new ArrayList<>();
        for (var e : blocks.entrySet()) {
            if (e.getKey().endsWith("parameters")) continue;
            String name = e.getKey();
            Map<String, String> v = e.getValue();
            byte[] plaintext = v.get("plaintext").equals("(empty)") ? new byte[0] : hex(v.get("plaintext"));
            ByteArrayOutputStream file = new ByteArrayOutputStream();
            file.writeBytes(header);
            int n = Math.max(1, (plaintext.length + s - 1) / s);
            for (int i = 0; i < n; i++) {
                boolean last = i == n - 1;
                byte[] nonce = ByteBuffer.allocate(12).put(hex(p.get("nonce prefix"))).putInt(i)
                        .put((byte) (last ? 1 : 0)).array();
                assertArrayEquals(nonce, hex(v.get("nonce " + i)), name + " nonce " + i);
                Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
                gcm.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(hex(p.get("segment key")), "AES"),
                        new GCMParameterSpec(128, nonce));
                byte[] segment = gcm.doFinal(Arrays.copyOfRange(plaintext, i * s, Math.min(plaintext.length, (i + 1) * s)));
                if (!Arrays.equals(segment, hex(v.get("segment " + i)))) failures.add(name + " segment " + i);
                file.writeBytes(segment);
            }
            byte[] bytes = file.toByteArray();
            assertEquals(Integer.parseInt(v.get("file length")), bytes.length, name);
            assertArrayEquals(hex(v.get("file sha-256")), MessageDigest.getInstance("SHA-256").digest(bytes), name);

            // The library decrypts the published file, as a stream and at random...
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ShardDecryptor.decrypt(new ByteArrayInputStream(bytes), out, kms, ctx);
            if (!Arrays.equals(plaintext, out.toByteArray())) failures.add(name + ": stream decryption");
            Path f = dir.resolve(name.replace(' ', '_').replace(':', '_'));
            Files.write(f, bytes);
            try (ShardReader r = ShardReader.open(f, kms, ctx)) {
                ByteBuffer all = ByteBuffer.allocate(plaintext.length);
                r.readFully(0, all);
                if (!Arrays.equals(plaintext, all.array())) failures.add(name + ": random access");
            }
            // ... and encrypts the plaintext to the same bytes given the same salt and prefix.
            DataKey dk = new DataKey("model-weights", 3, hex(p.get("data key")), hex(p.get("wrapped key")));
            try (ShardEncryptor enc = ShardEncryptor.withNonceMaterial(dk, ctx, new ShardEncryptor.Options(s, 2),
                    (salt, prefix) -> {
                        System.arraycopy(hex(p.get("salt")), 0, salt, 0, 32);
                        System.arraycopy(hex(p.get("nonce prefix")), 0, prefix, 0, 7);
                    })) {
                ByteArrayOutputStream again = new ByteArrayOutputStream();
                enc.encrypt(new ByteArrayInputStream(plaintext), again);
                if (!Arrays.equals(bytes, again.toByteArray())) failures.add(name + ": encryption");
            }
        }
        assertEquals(List.of(), failures);
    }
}
