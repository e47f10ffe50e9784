package dev.enclavekms.system;

import dev.enclavekms.client.KmsClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Signed manifests through the real processes: a daemon started by the documented launcher
 * on its own SoftHSM token and {@code bin/kmsctl manifest ...} as a process. OpenSSL checks
 * the detached signature of every SIGN algorithm with the commands docs/manifest.md gives,
 * and GNU sha256sum checks the manifest's lines. Then the life of a signing key: rotation
 * (the old ENABLED version still verifies), disabling, scheduled destruction and destruction
 * (it no longer does).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ManifestIT {
    static final Map<String, String> ALGORITHMS = Map.of(
            "sign-p256", "EC_P256_SHA256",
            "sign-p384", "EC_P384_SHA384",
            "sign-ed25519", "ED25519",
            "sign-rsa", "RSA_3072_PSS_SHA256");

    @TempDir
    static Path dir;
    static Path clock;
    static DaemonProcess daemon;
    static Path tree;

    @BeforeAll
    static void start() throws Exception {
        clock = dir.resolve("clock-offset");
        Files.writeString(clock, "0");
        daemon = DaemonProcess.start(dir, "--test-clock-file", clock.toString());
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            for (var e : ALGORITHMS.entrySet()) {
                kms.createKey(e.getKey(), "SIGN", e.getValue(), null, null);
            }
            kms.createKey("release", "SIGN");
        }
        tree = Files.createDirectories(dir.resolve("tree"));
        Random random = new Random(11);
        for (String name : List.of("README", "config/model.json", "config/tokenizer.json", "weights/small.bin")) {
            byte[] b = new byte[name.endsWith(".bin") ? 100_000 : 300];
            random.nextBytes(b);
            Files.createDirectories(tree.resolve(name).getParent());
            Files.write(tree.resolve(name), b);
        }
        // One large file, sparse (64 MiB, data at both ends): cheap to make, read in full by the hash.
        try (RandomAccessFile f = new RandomAccessFile(tree.resolve("weights/large.bin").toFile(), "rw")) {
            f.setLength(64L << 20);
            f.write("start".getBytes(StandardCharsets.US_ASCII));
            f.seek((64L << 20) - 3);
            f.write("end".getBytes(StandardCharsets.US_ASCII));
        }
    }

    @AfterAll
    static void stop() throws Exception {
        daemon.close();
    }

    static Commands.Result kmsctl(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Commands.repoFile("bin/kmsctl").toString(), "--socket",
                daemon.socket().toString()));
        cmd.addAll(List.of(args));
        return Commands.run(cmd, Map.of(), null);
    }

    /** The OpenSSL command docs/manifest.md gives for the algorithm. */
    static Commands.Result openssl(String algorithm, Path pem, Path signature, Path manifest) throws Exception {
        List<String> cmd = switch (algorithm) {
            case "EC_P256_SHA256" -> List.of("openssl", "dgst", "-sha256", "-verify", pem.toString(), "-signature",
                    signature.toString(), manifest.toString());
            case "EC_P384_SHA384" -> List.of("openssl", "dgst", "-sha384", "-verify", pem.toString(), "-signature",
                    signature.toString(), manifest.toString());
            case "RSA_3072_PSS_SHA256" -> List.of("openssl", "dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                    "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256", "-verify", pem.toString(),
                    "-signature", signature.toString(), manifest.toString());
            case "ED25519" -> List.of("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem.toString(), "-rawin",
                    "-in", manifest.toString(), "-sigfile", signature.toString());
            default -> throw new IllegalArgumentException(algorithm);
        };
        return Commands.run(cmd, Map.of(), null);
    }

    @Test
    @Order(1)
    void everyAlgorithm_signs_andOpenSslVerifiesTheDetachedSignature() throws Exception {
        for (var e : ALGORITHMS.entrySet()) {
            String key = e.getKey();
            Path manifest = dir.resolve(key + ".manifest");
            Path signature = dir.resolve(key + ".manifest.sig");
            Commands.Result s = kmsctl("manifest", "sign", "--key", key, "--manifest", manifest.toString(),
                    tree.toString()).requireSuccess();
            assertTrue(s.stdout().contains("5 files, 64.1 MiB"), s.stdout());
            assertTrue(s.stdout().contains(key + " version 1 (" + e.getValue() + ")"), s.stdout());
            assertTrue(Files.readString(manifest).contains("# algorithm: " + e.getValue() + "\n"));

            Path pem = dir.resolve(key + ".pem");
            kmsctl("pubkey", key, "--out", pem.toString()).requireSuccess();
            Commands.Result ok = openssl(e.getValue(), pem, signature, manifest);
            assertEquals(0, ok.exit(), key + ": " + ok.stdout() + ok.stderr());
            assertTrue(ok.stdout().contains("Verified OK") || ok.stdout().contains("Signature Verified Successfully"),
                    ok.stdout());

            Path edited = dir.resolve(key + ".edited");
            Files.writeString(edited, Files.readString(manifest).replace("  README\n", "  README.md\n"));
            Commands.Result bad = openssl(e.getValue(), pem, signature, edited);
            assertNotEquals(0, bad.exit(), key + ": OpenSSL must reject an edited manifest");

            Path keys = dir.resolve(key + ".json");
            Files.writeString(keys, kmsctl("pubkeys", key, "--json").requireSuccess().stdout());
            kmsctl("manifest", "verify", "--public-keys", keys.toString(), "--manifest", manifest.toString(),
                    tree.toString()).requireSuccess();
        }
        // sha256sum reads the manifest as it is (the header lines are comments to it).
        Commands.Result sums = Commands.run(List.of("sh", "-c", "cd \"$1\" && sha256sum --strict -c \"$2\"", "sh",
                tree.toString(), dir.resolve("sign-p256.manifest").toString()), Map.of(), null);
        assertEquals(0, sums.exit(), sums.stdout() + sums.stderr());
        assertTrue(sums.stdout().contains("weights/large.bin: OK"), sums.stdout());
    }

    @Test
    @Order(2)
    void defaultLocation_andTampering_giveTheDocumentedExitCodes() throws Exception {
        kmsctl("manifest", "sign", "--key", "release", tree.toString()).requireSuccess();
        assertTrue(Files.exists(tree.resolve(".enclave-manifest.sig")));
        kmsctl("manifest", "verify", "--key", "release", tree.toString()).requireSuccess();

        try (RandomAccessFile f = new RandomAccessFile(tree.resolve("weights/large.bin").toFile(), "rw")) {
            f.seek(32L << 20);
            f.write(1); // one byte in the middle of the hole
        }
        Commands.Result changed = kmsctl("manifest", "verify", "--key", "release", tree.toString());
        assertEquals(7, changed.exit(), changed.stdout() + changed.stderr());
        assertTrue(changed.stdout().startsWith("modified  weights/large.bin\n"), changed.stdout());
        try (RandomAccessFile f = new RandomAccessFile(tree.resolve("weights/large.bin").toFile(), "rw")) {
            f.seek(32L << 20);
            f.write(0);
        }
        kmsctl("manifest", "verify", "--key", "release", tree.toString()).requireSuccess();

        Path sig = tree.resolve(".enclave-manifest.sig");
        byte[] original = Files.readAllBytes(sig);
        byte[] flipped = original.clone();
        flipped[10] ^= 0x40;
        Files.write(sig, flipped);
        Commands.Result rejected = kmsctl("manifest", "verify", "--key", "release", tree.toString());
        assertEquals(6, rejected.exit(), rejected.stdout() + rejected.stderr());
        assertTrue(rejected.stderr().contains("kmsctl: manifest rejected: "), rejected.stderr());
        Files.write(sig, original);
    }

    @Test
    @Order(3)
    void rotation_theOldVersionVerifiesWhileEnabled_andNotOnceDisabledOrDestroyed() throws Exception {
        Path manifest = dir.resolve("sign-p256.manifest");
        Path keysBefore = dir.resolve("sign-p256.json");
        kmsctl("key", "rotate", "sign-p256").requireSuccess();
        Path keysAfter = dir.resolve("sign-p256-rotated.json");
        Files.writeString(keysAfter, kmsctl("pubkeys", "sign-p256", "--json").requireSuccess().stdout());
        for (String[] trust : List.of(new String[] {"--key", "sign-p256"},
                new String[] {"--public-keys", keysAfter.toString()})) {
            kmsctl("manifest", "verify", trust[0], trust[1], "--manifest", manifest.toString(), tree.toString())
                    .requireSuccess();
        }
        Path second = dir.resolve("second.manifest");
        Commands.Result s2 = kmsctl("manifest", "sign", "--key", "sign-p256", "--manifest", second.toString(),
                tree.toString()).requireSuccess();
        assertTrue(s2.stdout().contains("sign-p256 version 2"), s2.stdout());

        kmsctl("key", "disable", "sign-p256", "1").requireSuccess();
        Commands.Result disabled = verify(manifest, "--key", "sign-p256");
        assertEquals(6, disabled.exit(), disabled.stdout() + disabled.stderr());
        assertTrue(disabled.stderr().contains("version 1 of sign-p256 is not published (published: 2 ENABLED)"),
                disabled.stderr());
        verify(second, "--key", "sign-p256").requireSuccess();

        kmsctl("key", "schedule-destruction", "sign-p256", "1", "--wait-days", "7", "--yes").requireSuccess();
        assertEquals(6, verify(manifest, "--key", "sign-p256").exit());
        Path next = dir.resolve("clock-offset.next");
        Files.writeString(next, Long.toString(Duration.ofDays(8).toSeconds()));
        Files.move(next, clock, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        daemon.restart(); // the sweep before serving destroys version 1
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            assertEquals("DESTROYED", kms.describeKey("sign-p256").versions().getFirst().state());
        }
        Commands.Result destroyed = verify(manifest, "--key", "sign-p256");
        assertEquals(6, destroyed.exit());
        assertTrue(destroyed.stderr().contains("version 1 of sign-p256 is not published"), destroyed.stderr());
        Commands.Result pub = kmsctl("pubkey", "sign-p256", "--version", "1");
        assertEquals(4, pub.exit());
        assertTrue(pub.stderr().contains("KeyVersionDestroyed"), pub.stderr());
        verify(second, "--key", "sign-p256").requireSuccess();

        // A keys file saved while version 1 was published still holds its key: the signature is
        // mathematically valid for ever. Refreshing the file is what withdraws the trust.
        verify(manifest, "--public-keys", keysBefore.toString()).requireSuccess();
        Path refreshed = dir.resolve("sign-p256-refreshed.json");
        Files.writeString(refreshed, kmsctl("pubkeys", "sign-p256", "--json").requireSuccess().stdout());
        assertEquals(6, verify(manifest, "--public-keys", refreshed.toString()).exit());
    }

    static Commands.Result verify(Path manifest, String... trust) throws Exception {
        List<String> args = new ArrayList<>(List.of("manifest", "verify"));
        args.addAll(List.of(trust));
        args.addAll(List.of("--manifest", manifest.toString(), tree.toString()));
        return kmsctl(args.toArray(String[]::new));
    }
}
