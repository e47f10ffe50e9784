package dev.enclavekms.system;

import dev.enclavekms.json.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code kmsctl provision} on a fresh SoftHSM token directory, checked by pkcs11-tool. */
class ProvisionIT {
    @TempDir
    Path dir;

    private Path pinFile(String name, String pin) throws Exception {
        Path f = dir.resolve(name);
        Files.createFile(f, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(f, pin + "\n");
        return f;
    }

    @Test
    void provision_initialisesOnce_thenOnlyChecks() throws Exception {
        Path tokens = Files.createDirectories(dir.resolve("tokens"));
        Path conf = dir.resolve("softhsm2.conf");
        Files.writeString(conf, "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n");
        Map<String, String> env = Map.of("SOFTHSM2_CONF", conf.toString());
        Path so = pinFile("so-pin", "so-secret-2207");
        Path user = pinFile("user-pin", "user-secret-9918");
        List<String> cmd = List.of(Commands.repoFile("bin/kmsctl").toString(), "--json", "provision",
                "--token-label", "inference-host-1", "--so-pin-file", so.toString(), "--pin-file", user.toString());

        var first = Commands.run(cmd, env, null).requireSuccess();
        Map<String, Object> r1 = Json.parseObject(first.stdout().trim());
        assertEquals(true, r1.get("created"), first.stdout());
        var second = Commands.run(cmd, env, null).requireSuccess();
        Map<String, Object> r2 = Json.parseObject(second.stdout().trim());
        assertEquals(false, r2.get("created"), second.stdout());
        assertEquals(r1.get("token_serial"), r2.get("token_serial"));

        var slots = Commands.run(List.of("pkcs11-tool", "--module", "/usr/lib/softhsm/libsofthsm2.so", "--list-token-slots"),
                env, null).requireSuccess();
        assertTrue(slots.stdout().contains("inference-host-1"), slots.stdout());
        assertTrue(slots.stdout().contains("PIN initialized"), slots.stdout());

        // The user PIN really is the one from the file: pkcs11-tool logs in with it.
        var login = Commands.run(List.of("pkcs11-tool", "--module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label",
                "inference-host-1", "--login", "--pin", "env:P", "--list-objects"),
                Map.of("SOFTHSM2_CONF", conf.toString(), "P", "user-secret-9918"), null);
        assertEquals(0, login.exit(), login.stderr());

        // A wrong user PIN is reported, and no PIN appears in the output.
        Path wrong = pinFile("wrong-pin", "not-the-pin-4411");
        var bad = Commands.run(List.of(Commands.repoFile("bin/kmsctl").toString(), "provision", "--token-label",
                "inference-host-1", "--so-pin-file", so.toString(), "--pin-file", wrong.toString()), env, null);
        assertEquals(1, bad.exit(), bad.stdout() + bad.stderr());
        assertTrue(bad.stderr().contains("PIN"), bad.stderr());
        for (String pin : List.of("so-secret-2207", "user-secret-9918", "not-the-pin-4411")) {
            assertFalse((first.stdout() + first.stderr() + second.stdout() + bad.stderr()).contains(pin));
        }
    }
}
