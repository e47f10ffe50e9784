package dev.enclavekms.system;

import dev.enclavekms.json.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * systemd/enclave-kms-provision against a fresh SoftHSM token, run as root for the
 * service user nobody, with the shipped keys.json.example: the first run initialises the
 * token, installs the credential, writes the configuration and creates the keys; the
 * second run changes nothing and reports the same; a file that contradicts an existing
 * key is refused without changes.
 */
class ProvisioningScriptIT {
    @TempDir
    Path dir;

    @Test
    @SuppressWarnings("unchecked")
    void provisionTwice_sameReport_secondRunChangesNothing() throws Exception {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        Path tokens = Files.createDirectories(dir.resolve("tokens"));
        Commands.run("chown", ProvisionedHost.NOBODY, tokens.toString()).requireSuccess();
        Path conf = Files.writeString(dir.resolve("softhsm2.conf"),
                Files.readString(Commands.repoFile("pkcs11-config/softhsm2.conf.template"))
                        .replace("@TOKEN_DIR@", tokens.toString()));
        Files.setPosixFilePermissions(conf, PosixFilePermissions.fromString("rw-r--r--"));
        Path so = secret("so-pin", "so-pin-6120");
        Path pin = secret("pin", "user-pin-3391");
        Path keys = Files.copy(Commands.repoFile("systemd/keys.json.example"), dir.resolve("keys.json"));
        List<String> cmd = List.of(Commands.repoFile("systemd/enclave-kms-provision").toString(),
                "--keys", keys.toString(), "--token-label", "host-a", "--so-pin-file", so.toString(),
                "--pin-file", pin.toString(), "--config", dir.resolve("etc/enclave-kms.conf").toString(),
                "--credential", dir.resolve("etc/pin").toString(), "--state-dir", dir.resolve("state").toString(),
                "--socket", dir.resolve("run/kms.sock").toString(), "--user", "nobody",
                "--kmsctl", Commands.repoFile("bin/kmsctl").toString(),
                "--enclave-kmsd", Commands.repoFile("bin/enclave-kmsd").toString());
        Map<String, String> env = Map.of("SOFTHSM2_CONF", conf.toString());

        Commands.Result first = Commands.run(cmd, env, null);
        assertEquals(0, first.exit(), first.stderr());
        Map<String, Object> r1 = new HashMap<>(Json.parseObject(first.stdout()));
        List<Object> changes1 = (List<Object>) r1.remove("changes");
        assertTrue(changes1.containsAll(List.of("token 'host-a' initialised",
                "credential " + dir.resolve("etc/pin") + " installed",
                "configuration " + dir.resolve("etc/enclave-kms.conf") + " written",
                "state directory " + dir.resolve("state") + " created",
                "key model-weights created", "key optimizer-state created", "key checkpoint-signing created",
                "key release-signing created")), changes1.toString());

        Commands.Result second = Commands.run(cmd, env, null);
        assertEquals(0, second.exit(), second.stderr());
        Map<String, Object> r2 = new HashMap<>(Json.parseObject(second.stdout()));
        assertEquals(List.of(), r2.remove("changes"));
        assertTrue(second.stderr().contains("nothing changed"), second.stderr());
        assertEquals(r1, r2, "the second run reports the same host");

        // What the report says, as read back from the daemon and the token.
        Map<String, Object> token = (Map<String, Object>) r1.get("token");
        assertEquals("host-a", token.get("label"));
        assertNotNull(token.get("serial"));
        assertEquals(List.of(), r1.get("orphans"));
        assertEquals(List.of(), r1.get("missing"));
        List<Map<String, Object>> reported = (List<Map<String, Object>>) r1.get("keys");
        assertEquals(List.of("model-weights", "optimizer-state", "checkpoint-signing", "release-signing"),
                reported.stream().map(k -> k.get("name")).toList());
        Map<String, Object> weights = reported.get(0);
        assertEquals(90L * 86400, ((Number) weights.get("rotation_period_seconds")).longValue());
        assertEquals(List.of("model"), weights.get("required_context"));
        assertEquals("ED25519", reported.get(3).get("algorithm"));
        for (Map<String, Object> k : reported) {
            for (Map<String, Object> v : (List<Map<String, Object>>) k.get("versions")) {
                if ("SIGN".equals(k.get("purpose"))) {
                    assertTrue(((String) v.get("public_key_pem")).startsWith("-----BEGIN PUBLIC KEY-----"), k.toString());
                }
                List<Map<String, Object>> objects = (List<Map<String, Object>>) v.get("token_objects");
                assertFalse(objects.isEmpty(), "no token object for " + k.get("name"));
                for (Map<String, Object> o : objects) {
                    if (!"Public Key Object".equals(o.get("class"))) {
                        assertTrue(((List<Object>) o.get("access")).containsAll(List.of("sensitive",
                                "always sensitive", "never extractable")), o.toString());
                    }
                }
            }
        }

        // The files it wrote, and the token owned by the service user (SoftHSM files are 0600).
        assertEquals("user-pin-3391\n", Files.readString(dir.resolve("etc/pin")));
        assertEquals("r--------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("etc/pin"))));
        String config = Files.readString(dir.resolve("etc/enclave-kms.conf"));
        assertTrue(config.contains("\npkcs11.token-label = host-a\n") && config.contains("\npkcs11.pin-credential = pin\n")
                && config.contains("\nsocket = " + dir.resolve("run/kms.sock") + "\n"), config);
        try (Stream<Path> files = Files.walk(tokens)) {
            for (Path p : files.toList()) {
                assertEquals(Integer.parseInt(ProvisionedHost.NOBODY), (int) Files.getAttribute(p, "unix:uid"), p.toString());
            }
        }
        assertEquals(Integer.parseInt(ProvisionedHost.NOBODY),
                (int) Files.getAttribute(dir.resolve("state/registry.db"), "unix:uid"));
        assertFalse((first.stdout() + first.stderr() + second.stdout() + second.stderr()).contains("user-pin-3391"));

        // A file that contradicts an existing key is refused, and nothing changes.
        Files.writeString(keys, Files.readString(keys).replace("\"algorithm\": \"ED25519\"", "\"algorithm\": \"EC_P384_SHA384\""));
        Commands.Result conflict = Commands.run(cmd, env, null);
        assertEquals(1, conflict.exit(), conflict.stdout() + conflict.stderr());
        assertTrue(conflict.stderr().contains("key release-signing exists with algorithm ED25519"), conflict.stderr());
        List<String> again = new ArrayList<>(cmd);
        again.set(again.indexOf(keys.toString()), Commands.repoFile("systemd/keys.json.example").toString());
        Map<String, Object> r3 = new HashMap<>(Json.parseObject(Commands.run(again, env, null).requireSuccess().stdout()));
        assertEquals(List.of(), r3.remove("changes"));
        assertEquals(r1, r3);
    }

    private Path secret(String name, String value) throws Exception {
        Path p = dir.resolve(name);
        Files.createFile(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        return Files.writeString(p, value + "\n");
    }
}
