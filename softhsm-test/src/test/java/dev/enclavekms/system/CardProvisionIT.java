package dev.enclavekms.system;

import dev.enclavekms.applet.KeyVault;
import dev.enclavekms.enclave.javacard.JavaCardEnclave;
import dev.enclavekms.json.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code kmsctl provision --card} on a blank KeyVault card in the tests' PC/SC reader, then a
 * production daemon ({@code --config}) pointed at it: the card is jcardsim, so the daemon must
 * refuse it and say why, while {@code --dev} accepts the same card (CardEndToEndIT).
 */
class CardProvisionIT {
    @TempDir
    Path dir;

    private Path secretFile(String name, String value) throws Exception {
        Path f = dir.resolve(name);
        Files.createFile(f, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(f, value + "\n");
        return f;
    }

    @Test
    void provisionCard_personalisesOnce_andAProductionDaemonRefusesTheSimulatedCard() throws Exception {
        VirtualPcscReader reader = VirtualPcscReader.shared();
        try (VirtualPcscReader.Card card = reader.insert(JavaCardEnclave.defaultAid(), KeyVault.class, new byte[0])) {
            Path pin = secretFile("card-pin", "pin-5512");
            Path admin = secretFile("card-admin-pin", "admin-7781-3342");
            Path identityFile = dir.resolve("card-identity");
            List<String> cmd = List.of(Commands.repoFile("bin/kmsctl").toString(), "--json", "provision", "--card",
                    "--reader", reader.readerName(), "--pin-file", pin.toString(), "--admin-pin-file", admin.toString(),
                    "--identity-file", identityFile.toString());

            var first = Commands.run(cmd, Map.of(), null).requireSuccess();
            Map<String, Object> r1 = Json.parseObject(first.stdout().trim());
            assertEquals(true, r1.get("created"), first.stdout());
            assertEquals(true, r1.get("simulated"), first.stdout());
            assertTrue(first.stderr().contains("simulator"), first.stderr());
            String identity = (String) r1.get("card_identity");
            assertEquals(identity, Files.readString(identityFile).trim());

            var second = Commands.run(cmd, Map.of(), null).requireSuccess();
            Map<String, Object> r2 = Json.parseObject(second.stdout().trim());
            assertEquals(false, r2.get("created"), second.stdout());
            assertEquals(identity, r2.get("card_identity"));

            Path wrong = secretFile("wrong-pin", "pin-0000");
            var bad = Commands.run(List.of(Commands.repoFile("bin/kmsctl").toString(), "provision", "--card", "--reader",
                    reader.readerName(), "--pin-file", wrong.toString()), Map.of(), null);
            assertEquals(1, bad.exit(), bad.stdout() + bad.stderr());
            assertTrue(bad.stderr().contains("PIN"), bad.stderr());
            for (String secret : List.of("pin-5512", "admin-7781-3342", "pin-0000")) {
                assertFalse((first.stdout() + first.stderr() + second.stdout() + second.stderr() + bad.stdout()
                        + bad.stderr()).contains(secret), "a PIN in kmsctl's output");
            }

            // The configuration kmsctl's output asks for; the daemon must refuse this card.
            Path config = dir.resolve("enclave-kms.conf");
            Files.writeString(config, String.join("\n",
                    "card.reader = " + reader.readerName(),
                    "card.identity = " + identity,
                    "card.pin-file = " + pin,
                    "registry = " + dir.resolve("state/registry.db"),
                    "socket = " + dir.resolve("state/kms.sock"), ""));
            Files.createDirectories(dir.resolve("state"));
            Process daemon = new ProcessBuilder(Commands.repoFile("bin/enclave-kmsd").toString(), "--config",
                    config.toString()).directory(DaemonProcess.REPO.toFile()).redirectErrorStream(true)
                    .redirectOutput(dir.resolve("daemon.log").toFile()).start();
            try {
                assertTrue(daemon.waitFor(120, TimeUnit.SECONDS), "the daemon should refuse and exit");
                String log = Files.readString(dir.resolve("daemon.log"));
                assertEquals(1, daemon.exitValue(), log);
                assertTrue(log.contains("refusing") && log.contains("development mode (--dev)")
                        && log.contains("jcardsim") && log.contains("deterministic"), log);
                assertFalse(Files.exists(dir.resolve("state/kms.sock")), "a refused daemon never serves");
            } finally {
                daemon.destroyForcibly().waitFor();
            }
        }
    }
}
