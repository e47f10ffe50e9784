package dev.enclavekms.enclave.javacard;

import dev.enclavekms.applet.AppletProbe;
import org.junit.jupiter.api.Test;

import javax.smartcardio.CommandAPDU;
import java.util.Arrays;

import static dev.enclavekms.enclave.javacard.KeyVaultHarness.bytes;
import static dev.enclavekms.enclave.javacard.KeyVaultHarness.concat;
import static dev.enclavekms.enclave.javacard.KeyVaultHarness.lvs;
import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One test per wipe in the applet: each reads the applet's RAM through {@link AppletProbe}
 * right after the command and checks that the secret it held is gone. (SmartPGP once wiped
 * zero bytes because it cleared a length first; these tests would catch that.)
 */
class KeyVaultWipeTest {

    @Test
    void generate_aesAndHmac_scratchHoldsNoKeyBytes() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] aes = card.generate(1);
        assertAllZero(card.probe.scratch(), "scratch after an AES GENERATE");
        assertTrue(nonZero(card.probe.aesKeys(card.slotOf(aes))), "the key itself was set");
        byte[] hmac = card.generate(6);
        assertAllZero(card.probe.scratch(), "scratch after an HMAC GENERATE");
        assertTrue(nonZero(card.probe.hmacKey(card.slotOf(hmac))));
    }

    @Test
    void generate_p256_normalisedScalarWiped() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        card.generate(2);
        assertAllZero(card.probe.scratch(), "scratch after a P-256 GENERATE (S normalisation)");
    }

    @Test
    void openChannel_ecdhSecretsKdfOutputReceiptKeyAndEphemeralWiped() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness().open();
        assertAllZero(card.probe.scratch(), "Ze, Zs and the KDF output after OPEN CHANNEL");
        assertFalse(card.probe.receiptKeySet(), "K-RECEIPT cleared");
        assertFalse(card.probe.ephemeralPrivateSet(), "the card's ephemeral private key cleared");
        assertTrue(card.probe.sessionKeysSet(), "the session keys stay for the channel");
    }

    @Test
    void everyResponse_outBufferWiped() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        card.ok(INS_RANDOM, 200, 0, new byte[0]);
        assertAllZero(card.probe.out(), "out after a wrapped RANDOM");
        card.plain(INS_GET_IDENTITY, 0, 0, new byte[0]);
        assertAllZero(card.probe.out(), "out after a plain GET IDENTITY");
        byte[] id = card.generate(1);
        byte[] sealed = card.ok(INS_ENCRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(id), new byte[32], bytes(100)));
        card.ok(INS_DECRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(id), new byte[32], sealed));
        assertAllZero(card.probe.out(), "out after a DECRYPT that returned plaintext");
    }

    @Test
    void aeadStream_counterBlockAndKeystreamWipedAtEnd() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(1);
        card.ok(INS_ENCRYPT, STREAM_BEGIN, 0, concat(lvs(id), new byte[32], bytes(40)));
        assertTrue(nonZero(Arrays.copyOfRange(card.probe.state(), AppletProbe.KEYSTREAM, AppletProbe.KEYSTREAM + 16)),
                "mid-stream the keystream is live");
        card.ok(INS_ENCRYPT, STREAM_END, 0, bytes(40));
        assertAllZero(Arrays.copyOfRange(card.probe.state(), AppletProbe.CTR_BLOCK, AppletProbe.KEYSTREAM + 16),
                "counter block and keystream after END");
    }

    @Test
    void aeadStream_abortedByAnotherCommand_wiped() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(1);
        card.ok(INS_ENCRYPT, STREAM_BEGIN, 0, concat(lvs(id), new byte[32], bytes(40)));
        card.ok(INS_STATUS, 0, 0, new byte[0]);
        assertAllZero(Arrays.copyOfRange(card.probe.state(), AppletProbe.CTR_BLOCK, AppletProbe.KEYSTREAM + 16),
                "counter block and keystream after an abort");
        assertEquals(0, card.probe.state()[AppletProbe.STREAM_INS]);
    }

    @Test
    void aeadStream_failedTag_wiped() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(1);
        byte[] sealed = card.ok(INS_ENCRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(id), new byte[32], bytes(40)));
        sealed[20] ^= 1;
        assertEquals(SW_TAG_MISMATCH, card.sw(INS_DECRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(id), new byte[32], sealed)));
        assertAllZero(Arrays.copyOfRange(card.probe.state(), AppletProbe.CTR_BLOCK, AppletProbe.KEYSTREAM + 16),
                "stream state after a failed tag");
    }

    @Test
    void secureMessagingFailure_sessionKeysCleared() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] raw = card.session.wrap(INS_STATUS, 0, 0, new byte[0]).getBytes();
        raw[6] ^= 1;
        assertEquals(SW_SECURE_MESSAGING, card.transmit(new CommandAPDU(raw)).getSW());
        assertFalse(card.probe.sessionKeysSet());
    }

    @Test
    void wrappedCommand_plaintextLeavesTheApduBuffer() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(6);
        card.ok(INS_HMAC, STREAM_BEGIN, 0, lvs(id));
        // A 184-byte message chunk: its 32-byte response overwrites only the buffer's start.
        byte[] message = bytes(184);
        card.ok(INS_HMAC, 0, 0, message);
        byte[] buffer = card.runtime.apduBuffer();
        for (int i = 0; i + 8 <= message.length; i += 8) {
            assertEquals(-1, KeyVaultAppletTest.indexOf(buffer, Arrays.copyOfRange(message, i, i + 8)),
                    "the APDU buffer still holds the command's plaintext at chunk offset " + i);
        }
    }

    private static void assertAllZero(byte[] b, String what) {
        assertFalse(nonZero(b), what + " is not wiped");
    }

    private static boolean nonZero(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return true;
            }
        }
        return false;
    }
}
