package dev.enclavekms.system;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.KmsClient;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The production shape without systemd as PID 1: a provisioned token, {@code --config}
 * with {@code pkcs11.pin-credential}, the daemon running as an unprivileged user (nobody)
 * on a socket it inherits, and its PIN in a credentials directory laid out exactly as
 * systemd lays it out on a file system with ACLs: root-owned, mode 0400, plus an ACL
 * entry that lets the service's user read it ({@code stat} then shows mode 0440).
 */
class ConfiguredDaemonIT {
    private static final String USER_PIN = "user-pin-5530";
    private static final String NOBODY = "65534";

    @TempDir
    Path dir;

    @Test
    void configuredDaemonAsNobody_pinFromRootOwnedAclCredential_servesOverTheInheritedSocket() throws Exception {
        HostRoot.requireTool("setfacl");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        Path tokens = Files.createDirectories(dir.resolve("tokens"));
        Path softhsmConf = Files.writeString(dir.resolve("softhsm2.conf"),
                "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n");
        Path so = secret(dir.resolve("so-pin"), "so-pin-1187");
        Path pin = secret(dir.resolve("user-pin"), USER_PIN);
        Map<String, String> softhsm = Map.of("SOFTHSM2_CONF", softhsmConf.toString());
        Commands.run(List.of(Commands.repoFile("bin/kmsctl").toString(), "provision", "--token-label", "host-1",
                "--so-pin-file", so.toString(), "--pin-file", pin.toString()), softhsm, null).requireSuccess();
        Commands.run("chown", "-R", NOBODY, tokens.toString()).requireSuccess();
        Files.setPosixFilePermissions(softhsmConf, PosixFilePermissions.fromString("rw-r--r--"));

        // What systemd makes of LoadCredential=pin:<user-pin> for User=nobody.
        Path creds = Files.createDirectory(dir.resolve("credentials"));
        Files.copy(pin, creds.resolve("pin"));
        Files.setPosixFilePermissions(creds.resolve("pin"), PosixFilePermissions.fromString("r--------"));
        Files.setPosixFilePermissions(creds, PosixFilePermissions.fromString("r-x------"));
        Commands.run("setfacl", "-m", "u:" + NOBODY + ":r", creds.resolve("pin").toString()).requireSuccess();
        Commands.run("setfacl", "-m", "u:" + NOBODY + ":rx", creds.toString()).requireSuccess();
        assertEquals("r--r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(creds.resolve("pin"))));

        Path state = Files.createDirectory(dir.resolve("state"));
        Commands.run("chown", NOBODY, state.toString()).requireSuccess();
        Path socket = dir.resolve("run/kms.sock");
        Path conf = Files.writeString(dir.resolve("enclave-kms.conf"), String.join("\n",
                "pkcs11.module = /usr/lib/softhsm/libsofthsm2.so",
                "pkcs11.token-label = host-1",
                "pkcs11.pin-credential = pin",
                "registry = " + state.resolve("registry.db"),
                "socket = " + socket, ""));
        Files.setPosixFilePermissions(conf, PosixFilePermissions.fromString("rw-r--r--"));

        List<String> cmd = List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups",
                Commands.repoFile("bin/enclave-kmsd").toString(), "--config", conf.toString(), "--socket-activation");
        try (ActivatedDaemon d = ActivatedDaemon.listening(dir, state, socket, cmd, Map.of(
                "SOFTHSM2_CONF", softhsmConf.toString(), "CREDENTIALS_DIRECTORY", creds.toString()))) {
            Files.setPosixFilePermissions(socket.getParent(), PosixFilePermissions.fromString("rwxr-xr-x"));
            long pid = d.startDaemon();
            String ready = (String) d.awaitReady(1, Duration.ofSeconds(120)).get("message");
            assertTrue(ready.contains("token 'host-1'"), ready);
            assertEquals(NOBODY, Commands.run("ps", "-o", "uid=", "-p", Long.toString(pid)).stdout().trim());
            try (KmsClient kms = KmsClient.connect(socket)) {
                kms.createKey("weights", "ENCRYPT", null, null, null);
                DataKey dk = kms.generateDataKey("weights", Map.of("model", "m"));
                assertArrayEquals(dk.plaintext(), kms.decrypt(dk.ciphertext(), Map.of("model", "m")).plaintext());
            }
            ActivatedDaemon.signal(pid, "TERM");
            assertEquals(0, d.awaitExit(1, Duration.ofSeconds(60)), d.stderr());
            assertFalse((d.stderr() + d.stdout()).contains(USER_PIN));
            assertEquals("", d.stdout(), "configured mode prints nothing on stdout");
        }
    }

    private static Path secret(Path p, String value) throws Exception {
        Files.createFile(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(p, value + "\n");
        return p;
    }
}
