package dev.enclavekms.system;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.InvalidParameterException;
import dev.enclavekms.client.KmsClient;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's dev command on the simulated card ({@code bin/enclave-kmsd --dev --card}): the
 * daemon creates its own keys on the card, serves, refuses algorithms the card lacks at
 * CreateKey, says it runs on a simulator; and since the simulated card lives in the daemon's
 * memory, a second start on the same state directory is refused with the reason.
 */
class DevCardIT {
    @TempDir
    Path dir;

    @Test
    void devCard_serves_refusesEd25519_andRefusesARestartOnTheLostCard() throws Exception {
        DaemonProcess daemon = DaemonProcess.start(dir, "--card");
        try {
            try (KmsClient kms = KmsClient.connect(daemon.socket())) {
                kms.createKey("weights", "ENCRYPT", null, null, null);
                DataKey dk = kms.generateDataKey("weights", Map.of("model", "m"));
                assertArrayEquals(dk.plaintext(), kms.decrypt(dk.ciphertext(), Map.of("model", "m")).plaintext());
                InvalidParameterException e = assertThrows(InvalidParameterException.class,
                        () -> kms.createKey("ed", "SIGN", "ED25519", null, null));
                assertTrue(e.getMessage().contains("ED25519") && e.getMessage().contains("javacard"), e.getMessage());
                assertEquals("javacard", kms.status().enclave().kind());
                assertTrue(kms.listKeys().stream().map(k -> k.name()).toList()
                        .containsAll(List.of("_audit/hmac", "_audit/signing", "_sessions/wrap")));
            }
            assertTrue(daemon.stdoutOfThisStart().contains("simulated Java Card"), daemon.stdoutOfThisStart());
            assertTrue(daemon.stderrOfThisStart().contains("jcardsim is a simulator"), daemon.stderrOfThisStart());
            IllegalStateException refused = assertThrows(IllegalStateException.class, daemon::restart);
            assertTrue(refused.getMessage().contains("earlier simulated card"), refused.getMessage());
        } finally {
            daemon.close();
        }
    }
}
