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
    private static final String NOBODY = ProvisionedHost.NOBODY;

    @TempDir
    Path dir;

    @Test
    void configuredDaemonAsNobody_pinFromRootOwnedAclCredential_servesOverTheInheritedSocket() throws Exception {
        HostRoot.requireTool("setfacl");
        ProvisionedHost host = ProvisionedHost.create(dir, "host-1", NOBODY);

        // What systemd makes of LoadCredential=pin:<pin file> for User=nobody.
        Path creds = Files.createDirectory(dir.resolve("credentials"));
        Files.copy(host.pinFile, creds.resolve("pin"));
        Files.setPosixFilePermissions(creds.resolve("pin"), PosixFilePermissions.fromString("r--------"));
        Files.setPosixFilePermissions(creds, PosixFilePermissions.fromString("r-x------"));
        Commands.run("setfacl", "-m", "u:" + NOBODY + ":r", creds.resolve("pin").toString()).requireSuccess();
        Commands.run("setfacl", "-m", "u:" + NOBODY + ":rx", creds.toString()).requireSuccess();
        assertEquals("r--r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(creds.resolve("pin"))));

        List<String> cmd = List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups",
                Commands.repoFile("bin/enclave-kmsd").toString(), "--config", host.config.toString(),
                "--socket-activation");
        try (ActivatedDaemon d = ActivatedDaemon.listening(dir, host.state, host.socket, cmd, Map.of(
                "SOFTHSM2_CONF", host.softhsmConf.toString(), "CREDENTIALS_DIRECTORY", creds.toString()))) {
            long pid = d.startDaemon();
            String ready = (String) d.awaitReady(1, Duration.ofSeconds(120)).get("message");
            assertTrue(ready.contains("token 'host-1'"), ready);
            assertEquals(NOBODY, Commands.run("ps", "-o", "uid=", "-p", Long.toString(pid)).stdout().trim());
            try (KmsClient kms = KmsClient.connect(host.socket)) {
                kms.createKey("weights", "ENCRYPT", null, null, null);
                DataKey dk = kms.generateDataKey("weights", Map.of("model", "m"));
                assertArrayEquals(dk.plaintext(), kms.decrypt(dk.ciphertext(), Map.of("model", "m")).plaintext());
            }
            ActivatedDaemon.signal(pid, "TERM");
            assertEquals(0, d.awaitExit(1, Duration.ofSeconds(60)), d.stderr());
            assertFalse((d.stderr() + d.stdout()).contains(host.userPin));
            assertFalse(d.stderr().contains(" access: "), "the access log is off unless log.access = true:\n"
                    + d.stderr());
            assertEquals("", d.stdout(), "configured mode prints nothing on stdout");
        }
    }
}
