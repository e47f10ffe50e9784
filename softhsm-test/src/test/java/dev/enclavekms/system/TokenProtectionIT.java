package dev.enclavekms.system;

import dev.enclavekms.client.KeyDescription;
import dev.enclavekms.client.KeyVersionInfo;
import dev.enclavekms.client.KmsClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The keys a running daemon created, examined from outside by pkcs11-tool (OpenSC) on
 * the daemon's own token: every one sensitive and never extractable, with only the
 * usages its purpose needs; reading a secret key's value fails.
 */
class TokenProtectionIT {
    @TempDir
    static Path dir;
    static DaemonProcess daemon;
    static final List<KeyDescription> keys = new ArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        daemon = DaemonProcess.start(dir);
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            keys.add(kms.createKey("enc", "ENCRYPT"));
            keys.add(kms.createKey("p256", "SIGN", "EC_P256_SHA256", null, null));
            keys.add(kms.createKey("ed", "SIGN", "ED25519", null, null));
        }
    }

    @AfterAll
    static void stop() throws Exception {
        daemon.close();
    }

    private static Commands.Result pkcs11Tool(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("pkcs11-tool", "--module", daemon.pkcs11Module().toString(),
                "--token-label", daemon.tokenLabel(), "--login", "--pin", "env:EKMS_TEST_PIN"));
        cmd.addAll(List.of(args));
        return Commands.run(cmd, Map.of("SOFTHSM2_CONF", daemon.softhsmConf().toString(),
                "EKMS_TEST_PIN", Files.readString(daemon.pinFile()).trim()), null);
    }

    /** pkcs11-tool -O prints one block per object, starting at an unindented line. */
    private static List<String> objectBlocks(String listing) {
        List<String> blocks = new ArrayList<>();
        StringBuilder cur = null;
        for (String line : listing.split("\n")) {
            if (!line.startsWith(" ") && !line.startsWith("\t") && !line.isBlank()) {
                if (cur != null) blocks.add(cur.toString());
                cur = new StringBuilder();
            }
            if (cur != null) cur.append(line).append('\n');
        }
        if (cur != null) blocks.add(cur.toString());
        return blocks;
    }

    @Test
    void everyDaemonKey_isSensitiveAndNeverExtractable() throws Exception {
        var r = pkcs11Tool("--list-objects");
        assertEquals(0, r.exit(), r.stderr());
        List<String> blocks = objectBlocks(r.stdout());
        for (KeyDescription k : keys) {
            KeyVersionInfo v = k.versions().getFirst();
            List<String> mine = blocks.stream().filter(b -> b.contains(v.objectId())).toList();
            assertFalse(mine.isEmpty(), "pkcs11-tool lists " + k.name() + "'s object " + v.objectId() + ":\n" + r.stdout());
            for (String b : mine) {
                boolean secretOrPrivate = b.startsWith("Secret Key") || b.startsWith("Private Key");
                if (!secretOrPrivate) {
                    continue; // the public half of a pair is public by design
                }
                String access = b.lines().filter(l -> l.trim().startsWith("Access:")).findFirst().orElse("");
                assertTrue(access.contains("sensitive"), k.name() + ": " + b);
                assertTrue(access.contains("never extractable"), k.name() + ": " + b);
                assertFalse(access.matches(".*(?<!never )extractable.*"), k.name() + " is extractable: " + b);
                String usage = b.lines().filter(l -> l.trim().startsWith("Usage:")).findFirst().orElse("");
                if (k.purpose().equals("ENCRYPT")) {
                    assertTrue(usage.contains("encrypt") && usage.contains("decrypt"), usage);
                    assertFalse(usage.contains("wrap") || usage.contains("sign") || usage.contains("derive"), usage);
                } else {
                    assertTrue(usage.contains("sign"), usage);
                    assertFalse(usage.contains("decrypt") || usage.contains("unwrap") || usage.contains("derive"), usage);
                }
            }
        }
    }

    @Test
    void readingTheMasterKeyValue_failsWhileAWeakKeyReads() throws Exception {
        // Positive control: the same command reads a key made without protection.
        pkcs11Tool("--keygen", "--key-type", "AES:32", "--id", "97", "--label", "outside-readable", "--extractable")
                .requireSuccess();
        Path control = dir.resolve("control-value.bin");
        pkcs11Tool("--read-object", "--type", "secrkey", "--id", "97", "--output-file", control.toString()).requireSuccess();
        assertEquals(32, Files.size(control), "the tool can read a key value");

        String id = keys.getFirst().versions().getFirst().objectId();
        Path out = dir.resolve("stolen.bin");
        var r = pkcs11Tool("--read-object", "--type", "secrkey", "--id", id, "--output-file", out.toString());
        assertNotEquals(0, r.exit(), "reading CKA_VALUE of the master key must fail: " + r.stdout());
        assertTrue(r.stderr().contains("CKA_VALUE"), r.stderr());
        assertTrue(!Files.exists(out) || Files.size(out) == 0, "no key bytes written");
    }

    @Test
    void wrappingTheMasterKey_failsWhileAWeakKeyWraps() throws Exception {
        // An operator's wrapping key and, as the positive control, a deliberately extractable key.
        pkcs11Tool("--keygen", "--key-type", "AES:32", "--id", "99", "--label", "outside-wrapper", "--usage-wrap")
                .requireSuccess();
        pkcs11Tool("--keygen", "--key-type", "AES:32", "--id", "98", "--label", "outside-victim", "--extractable")
                .requireSuccess();
        Path control = dir.resolve("control.bin");
        var weak = pkcs11Tool("--wrap", "--mechanism", "AES-KEY-WRAP", "--id", "99", "--application-id", "98",
                "--output-file", control.toString());
        assertEquals(0, weak.exit(), "the control key wraps, so the tool can wrap: " + weak.stderr());
        assertEquals(40, Files.size(control));

        String id = keys.getFirst().versions().getFirst().objectId();
        Path stolen = dir.resolve("wrapped-master.bin");
        var r = pkcs11Tool("--wrap", "--mechanism", "AES-KEY-WRAP", "--id", "99", "--application-id", id,
                "--output-file", stolen.toString());
        assertNotEquals(0, r.exit(), "wrapping the master key must fail");
        assertTrue(r.stderr().contains("CKR_KEY_UNEXTRACTABLE"), r.stderr());
        assertTrue(!Files.exists(stolen) || Files.size(stolen) == 0);
    }

    @Test
    void changingTheMasterKeysAttributes_isRefused() throws Exception {
        String id = keys.getFirst().versions().getFirst().objectId();
        // C_SetAttributeValue on a CKA_MODIFIABLE=false object: CKR_ACTION_PROHIBITED (0x1b).
        var r = pkcs11Tool("--set-id", "42", "--id", id, "--type", "secrkey");
        assertNotEquals(0, r.exit(), r.stdout());
        assertTrue(r.stderr().contains("0x1b") || r.stderr().contains("CKR_ACTION_PROHIBITED"), r.stderr());
    }
}
