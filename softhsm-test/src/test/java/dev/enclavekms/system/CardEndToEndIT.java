package dev.enclavekms.system;

import dev.enclavekms.applet.KeyVault;
import dev.enclavekms.client.InvalidParameterException;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.enclave.javacard.JavaCardEnclave;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The end-to-end suite of {@link EndToEndIT} (Java client, Python client, kmsctl, OpenSSL,
 * a restart in the middle) on the Java Card backend: the daemon runs
 * {@code --dev --card --card-reader NAME} on a KeyVault card in the tests' PC/SC reader
 * (pcscd, vpcd, jcardsim), so every key operation crosses the real PC/SC stack, and the card
 * keeps its keys across the daemon's restart as a real one does. The card holds P-256 only
 * among the signing algorithms; the others must be refused when the key is created.
 */
class CardEndToEndIT extends EndToEndIT {
    private VirtualPcscReader reader;
    private VirtualPcscReader.Card card;

    @Override
    DaemonProcess startDaemon(Path parent) throws Exception {
        reader = VirtualPcscReader.shared();
        card = reader.insert(JavaCardEnclave.defaultAid(), KeyVault.class, new byte[0]);
        return DaemonProcess.start(parent, "--card", "--card-reader", reader.readerName());
    }

    @Override
    Map<String, String> signingKeys() {
        return Map.of("sign-p256", "EC_P256_SHA256");
    }

    @Override
    @AfterAll
    void stop() throws Exception {
        super.stop();
        if (card != null) card.close();
    }

    @Test
    @Order(0)
    void algorithmsTheCardLacks_areRefusedAtCreateKey() throws Exception {
        try (KmsClient kms = client()) {
            for (String alg : List.of("EC_P384_SHA384", "ED25519", "RSA_3072_PSS_SHA256")) {
                InvalidParameterException e = assertThrows(InvalidParameterException.class,
                        () -> kms.createKey("refused-" + alg.toLowerCase(), "SIGN", alg, null, null));
                assertTrue(e.getMessage().contains(alg) && e.getMessage().contains("javacard"), e.getMessage());
            }
            List<String> names = kms.listKeys().stream().map(k -> k.name()).toList();
            assertTrue(names.containsAll(List.of("_audit/hmac", "_audit/signing", "_sessions/wrap")),
                    "the daemon's own keys are on the card: " + names);
            assertFalse(names.stream().anyMatch(n -> n.startsWith("refused-")), names.toString());
        }
    }

    @Test
    @Order(8)
    void pcscdApduLog_showsNeitherDataKeysNorThePin() throws Exception {
        // pcscd runs with --apdu: it logs every APDU on the reader link. The secure channel
        // must leave nothing there that the daemon handed out in clear.
        String apdus = reader.log().replace(" ", "").toLowerCase();
        assertTrue(apdus.contains("apdu:"), "pcscd logged APDUs");
        assertFalse(secretsHandedOut.isEmpty());
        for (byte[] secret : secretsHandedOut) {
            assertFalse(apdus.contains(HexFormat.of().formatHex(secret)), "a data key crossed the reader in clear");
        }
        String pin = Files.readString(daemon.pinFile()).trim();
        assertFalse(apdus.contains(HexFormat.of().formatHex(pin.getBytes(java.nio.charset.StandardCharsets.US_ASCII))),
                "the PIN crossed the reader in clear");
        assertEquals("javacard", dev.enclavekms.json.Json.parseObject(
                Files.readString(daemon.stateDir().resolve("dev.json"))).get("backend"));
    }
}
