package dev.enclavekms.system;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.format.Envelope;
import dev.enclavekms.json.Json;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code kmsctl rewrap} against a real daemon: a directory of a few thousand envelopes
 * (binary and base64) made under v1, the key rotated, a rewrap killed midway with
 * SIGKILL and run again: every file ends on the primary version and still decrypts to
 * its original plaintext.
 */
class RewrapIT {
    private static final int FILES = 2000;
    private static final Map<String, String> CONTEXT = Map.of("model", "llama-3-8b");

    @TempDir
    static Path dir;
    static DaemonProcess daemon;
    static final Map<Path, String> plaintexts = new HashMap<>();

    @BeforeAll
    static void start() throws Exception {
        daemon = DaemonProcess.start(dir);
        Path shards = Files.createDirectories(dir.resolve("shards/a/b"));
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            kms.createKey("weights", "ENCRYPT");
            for (int i = 0; i < FILES; i++) {
                String secret = "shard key " + i;
                byte[] ct = kms.encrypt("weights", secret.getBytes(StandardCharsets.UTF_8), CONTEXT).ciphertext();
                Path f = (i % 3 == 0 ? shards : shards.getParent()).resolve("key-" + i + (i % 2 == 0 ? ".bin" : ".b64"));
                if (i % 2 == 0) {
                    Files.write(f, ct);
                } else {
                    Files.writeString(f, Base64.getEncoder().encodeToString(ct) + "\n");
                }
                plaintexts.put(f, secret);
            }
            kms.rotateKey("weights");
        }
    }

    @AfterAll
    static void stop() throws Exception {
        daemon.close();
    }

    private static byte[] envelopeOf(Path f) throws Exception {
        byte[] raw = Files.readAllBytes(f);
        return f.toString().endsWith(".b64")
                ? Base64.getDecoder().decode(new String(raw, StandardCharsets.US_ASCII).trim()) : raw;
    }

    private static long filesOnVersion(int version) throws Exception {
        long n = 0;
        for (Path f : plaintexts.keySet()) {
            try {
                if (Envelope.parse(envelopeOf(f)).keyVersion() == version) n++;
            } catch (Exception halfWritten) {
                // a rename is atomic, so this does not happen; counted as not rewrapped if it did
            }
        }
        return n;
    }

    @Test
    void rewrap_interruptedBySigkill_thenResumed_everyFileOnPrimaryAndDecrypts() throws Exception {
        List<String> cmd = List.of(Commands.repoFile("bin/kmsctl").toString(), "--socket", daemon.socket().toString(),
                "--json", "rewrap", "--batch", "10", "--context", "model=llama-3-8b", dir.resolve("shards").toString());
        Process first = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("first-run.log").toFile()).start();
        Await.until("the first rewrap has rewritten some files", Duration.ofSeconds(60),
                () -> filesOnVersion(2) > 0 || !first.isAlive());
        first.destroyForcibly(); // SIGKILL midway
        assertTrue(first.waitFor(10, TimeUnit.SECONDS));
        long done = filesOnVersion(2);
        assertTrue(done > 0 && done < FILES, "killed midway: " + done + " of " + FILES + " rewrapped");

        var second = Commands.run(cmd, Map.of(), null);
        assertEquals(0, second.exit(), second.stdout() + second.stderr());
        Map<String, Object> summary = Json.parseObject(second.stdout().trim());
        assertEquals(FILES, filesOnVersion(2), "every file on the primary version");
        assertEquals((long) (FILES - done), ((Number) summary.get("rewrapped")).longValue(), second.stdout());
        assertEquals(done, ((Number) summary.get("already_current")).longValue(), "the resumed run skips finished files");

        try (Stream<Path> all = Files.walk(dir.resolve("shards"))) {
            List<Path> leftovers = new ArrayList<>(all.filter(p -> p.getFileName().toString().contains("rewrap-tmp")).toList());
            assertEquals(List.of(), leftovers, "no temp files left");
        }
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            for (Map.Entry<Path, String> e : plaintexts.entrySet()) {
                byte[] env = envelopeOf(e.getKey());
                assertEquals(e.getValue(), new String(kms.decrypt(env, CONTEXT).plaintext(), StandardCharsets.UTF_8),
                        e.getKey().toString());
            }
        }
        String b64file = Files.readString(plaintexts.keySet().stream().filter(p -> p.toString().endsWith(".b64"))
                .findFirst().orElseThrow());
        assertTrue(b64file.endsWith("\n") && !b64file.trim().contains("\n"), "base64 files stay base64, one line");
    }
}
