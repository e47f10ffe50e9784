package dev.enclavekms.system;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.DecryptionFailedException;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.Signature;
import dev.enclavekms.json.Json;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One real daemon process on its own SoftHSM token, used from the Java client, the
 * Python client and kmsctl; signatures checked by OpenSSL; a restart in the middle.
 * Every data key the daemon hands out is remembered, and at the end the daemon's whole
 * output is scanned for each of them in hex and base64.
 *
 * <p>The same suite runs on the Java Card backend ({@link CardEndToEndIT}), which
 * overrides how the daemon starts and which signing algorithms the backend holds.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EndToEndIT {
    static final Map<String, String> CONTEXT = Map.of("model", "llama-3-8b", "tier", "hot");
    /** Signing key name and algorithm, for every algorithm SoftHSM holds. */
    static final Map<String, String> ALL_SIGNING_KEYS = orderedMap("sign-p256", "EC_P256_SHA256",
            "sign-p384", "EC_P384_SHA384", "sign-ed25519", "ED25519", "sign-rsa", "RSA_3072_PSS_SHA256");

    Path dir;
    DaemonProcess daemon;
    final List<byte[]> secretsHandedOut = new ArrayList<>();
    final Map<String, byte[]> ciphertextsBeforeRestart = new java.util.LinkedHashMap<>();

    /** The daemon under test: on a fresh SoftHSM token here. */
    DaemonProcess startDaemon(Path parent) throws Exception {
        return DaemonProcess.start(parent);
    }

    /** The signing keys to create (name to algorithm): those the backend can hold. */
    Map<String, String> signingKeys() {
        return ALL_SIGNING_KEYS;
    }

    static Map<String, String> orderedMap(String... kv) {
        Map<String, String> m = new java.util.LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return java.util.Collections.unmodifiableMap(m);
    }

    @BeforeAll
    void start(@TempDir Path tempDir) throws Exception {
        dir = tempDir;
        daemon = startDaemon(dir);
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            kms.createKey("weights", "ENCRYPT", null, "model weights", List.of("model"));
            for (Map.Entry<String, String> k : signingKeys().entrySet()) {
                kms.createKey(k.getKey(), "SIGN", k.getValue(), null, null);
            }
        }
    }

    @AfterAll
    void stop() throws Exception {
        if (daemon != null) daemon.close();
    }

    KmsClient client() throws Exception {
        return KmsClient.connect(daemon.socket());
    }

    @Test
    @Order(1)
    void javaClient_generateThenDecrypt_roundTrips() throws Exception {
        try (KmsClient kms = client()) {
            DataKey dk = kms.generateDataKey("weights", CONTEXT);
            secretsHandedOut.add(dk.plaintext());
            ciphertextsBeforeRestart.put(HexFormat.of().formatHex(dk.plaintext()), dk.ciphertext());
            byte[] secret = "an API token for the model registry".getBytes(StandardCharsets.UTF_8);
            secretsHandedOut.add(secret);
            byte[] sealed = kms.encrypt("weights", secret, CONTEXT).ciphertext();
            ciphertextsBeforeRestart.put(HexFormat.of().formatHex(secret), sealed);
            assertEquals(32, dk.plaintext().length);
            assertArrayEquals(dk.plaintext(), kms.decrypt(dk.ciphertext(), CONTEXT).plaintext());

            List<DataKey> batch = kms.generateDataKeys("weights", 50, CONTEXT);
            List<byte[]> cts = new ArrayList<>();
            for (DataKey k : batch) {
                secretsHandedOut.add(k.plaintext());
                cts.add(k.ciphertext());
            }
            var results = kms.decryptBatch(cts, CONTEXT);
            for (int i = 0; i < batch.size(); i++) {
                assertArrayEquals(batch.get(i).plaintext(),
                        ((dev.enclavekms.client.Plaintext) results.get(i)).plaintext());
            }
        }
    }

    @Test
    @Order(1)
    void decryptBatch_acrossTheDaemonsChunks_keepsOrderAndPerEntryErrors() throws Exception {
        try (KmsClient kms = client()) {
            List<DataKey> batch = kms.generateDataKeys("weights", 600, CONTEXT); // > 2 chunks of 256
            List<byte[]> cts = new ArrayList<>();
            for (DataKey k : batch) {
                secretsHandedOut.add(k.plaintext());
                cts.add(k.ciphertext());
            }
            List<Integer> bad = List.of(0, 255, 256, 300, 599);
            for (int i : bad) {
                byte[] tampered = cts.get(i).clone();
                tampered[tampered.length - 1] ^= 1;
                cts.set(i, tampered);
            }
            var results = kms.decryptBatch(cts, CONTEXT);
            assertEquals(600, results.size());
            for (int i = 0; i < batch.size(); i++) {
                if (bad.contains(i)) {
                    var f = assertInstanceOf(dev.enclavekms.client.DecryptResult.Failure.class, results.get(i), "entry " + i);
                    assertEquals("DecryptionFailed", f.error());
                } else {
                    assertArrayEquals(batch.get(i).plaintext(),
                            ((dev.enclavekms.client.Plaintext) results.get(i)).plaintext(), "entry " + i);
                }
            }
        }
    }

    @Test
    @Order(2)
    void wrongContext_failsToDecrypt() throws Exception {
        try (KmsClient kms = client()) {
            DataKey dk = kms.generateDataKey("weights", CONTEXT);
            secretsHandedOut.add(dk.plaintext());
            assertThrows(DecryptionFailedException.class,
                    () -> kms.decrypt(dk.ciphertext(), Map.of("model", "llama-3-70b", "tier", "hot")));
            assertThrows(DecryptionFailedException.class,
                    () -> kms.decrypt(dk.ciphertext(), Map.of("model", "llama-3-8b")));
            byte[] tampered = dk.ciphertext().clone();
            tampered[tampered.length - 1] ^= 1;
            assertThrows(DecryptionFailedException.class, () -> kms.decrypt(tampered, CONTEXT));
        }
    }

    @Test
    @Order(3)
    void pythonClient_decryptsWhatJavaGenerated_andViceVersa() throws Exception {
        String py = Commands.repoFile("client-python/enclave_kms.py").toString();
        try (KmsClient kms = client()) {
            DataKey dk = kms.generateDataKey("weights", CONTEXT);
            secretsHandedOut.add(dk.plaintext());
            var r = Commands.run(List.of("python3", py, "--socket", daemon.socket().toString(), "decrypt",
                    Base64.getEncoder().encodeToString(dk.ciphertext()), "--context", "model=llama-3-8b",
                    "--context", "tier=hot"), Map.of(), null).requireSuccess();
            Map<String, Object> out = Json.parseObject(r.stdout().trim());
            assertArrayEquals(dk.plaintext(), Base64.getDecoder().decode((String) out.get("plaintext")));

            var g = Commands.run(List.of("python3", py, "--socket", daemon.socket().toString(), "generate-data-key",
                    "weights", "--context", "model=llama-3-8b", "--context", "tier=hot"), Map.of(), null).requireSuccess();
            Map<String, Object> gen = Json.parseObject(g.stdout().trim());
            byte[] plain = Base64.getDecoder().decode((String) gen.get("plaintext"));
            secretsHandedOut.add(plain);
            assertArrayEquals(plain, kms.decrypt(Base64.getDecoder().decode((String) gen.get("ciphertext")), CONTEXT).plaintext());
        }
    }

    @Test
    @Order(4)
    void kmsctl_generatesAndDecrypts() throws Exception {
        String kmsctl = Commands.repoFile("bin/kmsctl").toString();
        String sock = daemon.socket().toString();
        var g = Commands.run(List.of(kmsctl, "--socket", sock, "--json", "datakey", "generate", "weights",
                "--context", "model=llama-3-8b", "--context", "tier=hot"), Map.of(), null).requireSuccess();
        Map<String, Object> gen = Json.parseObject(g.stdout().trim());
        byte[] plain = Base64.getDecoder().decode((String) gen.get("plaintext"));
        secretsHandedOut.add(plain);
        var d = Commands.run(List.of(kmsctl, "--socket", sock, "decrypt", "--base64", "--context", "model=llama-3-8b",
                "--context", "tier=hot", (String) gen.get("ciphertext")), Map.of(), null).requireSuccess();
        assertArrayEquals(plain, Base64.getDecoder().decode(d.stdout().trim()));

        var bad = Commands.run(List.of(kmsctl, "--socket", sock, "decrypt", "--context", "model=other",
                "--context", "tier=hot", (String) gen.get("ciphertext")), Map.of(), null);
        assertEquals(4, bad.exit(), bad.stderr());
        assertTrue(bad.stderr().contains("DecryptionFailed"), bad.stderr());
    }

    @Test
    @Order(5)
    void signatures_verifyWithOpenssl() throws Exception {
        byte[] message = "checkpoint manifest: sha256 of every shard".getBytes(StandardCharsets.UTF_8);
        Path msg = dir.resolve("manifest.txt");
        Files.write(msg, message);
        try (KmsClient kms = client()) {
            for (String key : signingKeys().keySet()) {
                Signature s = kms.sign(key, message);
                Path pem = dir.resolve(key + ".pem");
                Files.writeString(pem, kms.getPublicKey(key).pem());
                Path sig = dir.resolve(key + ".sig");
                Files.write(sig, s.signature());
                List<String> cmd = switch (key) {
                    case "sign-p256" -> List.of("openssl", "dgst", "-sha256", "-verify", pem.toString(), "-signature",
                            sig.toString(), msg.toString());
                    case "sign-p384" -> List.of("openssl", "dgst", "-sha384", "-verify", pem.toString(), "-signature",
                            sig.toString(), msg.toString());
                    case "sign-rsa" -> List.of("openssl", "dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                            "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256", "-verify", pem.toString(),
                            "-signature", sig.toString(), msg.toString());
                    default -> List.of("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem.toString(), "-rawin",
                            "-in", msg.toString(), "-sigfile", sig.toString());
                };
                var r = Commands.run(cmd, Map.of(), null);
                assertEquals(0, r.exit(), key + ": " + r.stdout() + r.stderr());
                assertTrue(r.stdout().contains("Verified"), key + ": " + r.stdout());
                assertTrue(kms.verify(key, s.version(), s.signature(), message), key);
                assertFalse(kms.verify(key, s.version(), s.signature(), "other".getBytes(StandardCharsets.UTF_8)), key);
            }
            // A caller-computed digest gives a signature OpenSSL verifies against the message.
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(message);
            for (String key : List.of("sign-p256", "sign-rsa").stream().filter(signingKeys()::containsKey).toList()) {
                Signature s = kms.signDigest(key, digest);
                Path sig = dir.resolve(key + "-digest.sig");
                Files.write(sig, s.signature());
                List<String> cmd = new ArrayList<>(List.of("openssl", "dgst", "-sha256"));
                if (key.equals("sign-rsa")) {
                    cmd.addAll(List.of("-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"));
                }
                cmd.addAll(List.of("-verify", dir.resolve(key + ".pem").toString(), "-signature", sig.toString(), msg.toString()));
                var r = Commands.run(cmd, Map.of(), null);
                assertEquals(0, r.exit(), key + ": " + r.stdout() + r.stderr());
                assertTrue(kms.verifyDigest(key, s.version(), s.signature(), digest), key);
            }
        }
    }

    @Test
    @Order(6)
    void restart_oldCiphertextsStillDecrypt() throws Exception {
        daemon.restart();
        try (KmsClient kms = client()) {
            // The keys of this test; the daemon's own audit keys (_audit/...) are not among them.
            assertEquals(1 + signingKeys().size(), kms.listKeys().stream().filter(k -> !k.name().startsWith("_")).count());
            for (Map.Entry<String, byte[]> e : ciphertextsBeforeRestart.entrySet()) {
                assertEquals(e.getKey(), HexFormat.of().formatHex(kms.decrypt(e.getValue(), CONTEXT).plaintext()));
            }
            assertTrue(kms.status().orphans().isEmpty());
            assertTrue(kms.status().missing().isEmpty());
        }
    }

    @Test
    @Order(7)
    void daemonOutput_containsNoDataKey() throws Exception {
        String out = daemon.output();
        assertFalse(secretsHandedOut.isEmpty());
        assertTrue(out.contains("created key weights"), "the daemon logs, so the scan has something to scan");
        for (byte[] secret : secretsHandedOut) {
            for (String form : List.of(HexFormat.of().formatHex(secret), HexFormat.of().withUpperCase().formatHex(secret),
                    Base64.getEncoder().encodeToString(secret), Base64.getUrlEncoder().withoutPadding().encodeToString(secret))) {
                assertFalse(out.contains(form), "daemon output contains a data key");
            }
        }
        String pin = Files.readString(daemon.pinFile()).trim();
        assertFalse(out.contains(pin), "daemon output contains the PIN");
    }
}
