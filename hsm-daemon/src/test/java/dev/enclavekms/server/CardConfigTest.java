package dev.enclavekms.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@code card.*} settings of the daemon's configuration file (docs/card-operations.md). */
class CardConfigTest {
    private static final String IDENTITY = "ab".repeat(32);

    @TempDir
    Path dir;

    private Path config(String text) throws IOException {
        return Files.writeString(dir.resolve("enclave-kms.conf"), text);
    }

    @Test
    void cardSettings_selectTheCardBackend_withTheDefaultAid() throws IOException {
        DaemonConfig c = DaemonConfig.load(config("""
                card.reader = Yubico YubiKey CCID 00 00
                card.identity = %s
                card.pin-file = /etc/enclave-kms/card-pin
                """.formatted(IDENTITY.toUpperCase())), null);
        assertEquals("Yubico YubiKey CCID 00 00", c.card().reader());
        assertEquals(IDENTITY, c.card().identity());
        assertArrayEquals(HexFormat.of().parseHex("F0454E434B4D5301"), c.card().aid());
        assertEquals(Path.of("/etc/enclave-kms/card-pin"), c.pinFile());
        assertNull(c.pkcs11Module());
        assertNull(c.tokenLabel());
    }

    @Test
    void cardAid_andPinCredential_areRead() throws IOException {
        DaemonConfig c = DaemonConfig.load(config("""
                card.reader = r
                card.aid = A0:00:00:00:01:02
                card.identity = %s
                card.pin-credential = card-pin
                """.formatted(IDENTITY)), "/run/credentials/enclave-kms.service");
        assertArrayEquals(HexFormat.of().parseHex("A00000000102"), c.card().aid());
        assertEquals(Path.of("/run/credentials/enclave-kms.service/card-pin"), c.pinFile());
    }

    @Test
    void cardAndPkcs11Settings_together_areRefused() throws IOException {
        IOException e = assertThrows(IOException.class, () -> DaemonConfig.load(config("""
                pkcs11.module = /usr/lib/softhsm/libsofthsm2.so
                card.reader = r
                card.identity = %s
                card.pin-file = /p
                """.formatted(IDENTITY)), null));
        assertTrue(e.getMessage().contains("exclude each other"), e.getMessage());
    }

    @Test
    void simulatorReader_badIdentity_badAid_missingIdentity_areRefused() throws IOException {
        for (String bad : new String[] {
                "card.reader = jcardsim\ncard.identity = " + IDENTITY + "\ncard.pin-file = /p\n",
                "card.reader = r\ncard.identity = 1234\ncard.pin-file = /p\n",
                "card.reader = r\ncard.aid = F0\ncard.identity = " + IDENTITY + "\ncard.pin-file = /p\n",
                "card.reader = r\ncard.aid = xyz\ncard.identity = " + IDENTITY + "\ncard.pin-file = /p\n",
                "card.reader = r\ncard.pin-file = /p\n",
                "card.reader = r\ncard.identity = " + IDENTITY + "\n"}) {
            assertThrows(IOException.class, () -> DaemonConfig.load(config(bad), null), bad);
        }
    }
}
