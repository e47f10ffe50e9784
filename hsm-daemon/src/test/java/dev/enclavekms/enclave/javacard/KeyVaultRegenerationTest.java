package dev.enclavekms.enclave.javacard;

import org.junit.jupiter.api.Test;

import java.security.MessageDigest;
import java.security.Signature;

import static dev.enclavekms.enclave.javacard.KeyVaultHarness.bytes;
import static dev.enclavekms.enclave.javacard.KeyVaultHarness.concat;
import static dev.enclavekms.enclave.javacard.KeyVaultHarness.lvs;
import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.*;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * jcardsim 3.0.6.0 can leave a stale byte in S when an EC pair is regenerated into the same
 * KeyPair object (FIELD-NOTES: ≈6 bad signatures per 1,000). The applet reuses slot pairs after
 * DELETE and the channel's ephemeral pair on every OPEN CHANNEL, and normalises S after each
 * generation; these loops would catch a regression.
 */
class KeyVaultRegenerationTest {

    private static final int ROUNDS = 400;

    @Test
    void slotReusedForP256_everySignatureVerifies() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        int bad = 0;
        for (int i = 0; i < ROUNDS; i++) {
            byte[] id = KeyVaultHarness.newId();
            byte[] point = card.ok(INS_GENERATE, 2, 0, lvs(id, new byte[0]));
            byte[] message = bytes(20);
            byte[] der = card.ok(INS_SIGN, 0, 0, concat(lvs(id), MessageDigest.getInstance("SHA-256").digest(message)));
            Signature v = Signature.getInstance("SHA256withECDSA");
            v.initVerify(SecureSession.publicKey(point));
            v.update(message);
            if (!v.verify(der)) {
                bad++;
            }
            card.ok(INS_DELETE, 0, 0, lvs(id));
        }
        assertEquals(0, bad, "signatures that did not verify in " + ROUNDS);
    }

    @Test
    void channelReopened_everyReceiptVerifies() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness();
        for (int i = 0; i < ROUNDS; i++) {
            card.open(); // throws ChannelRefused when the card's ECDH went wrong
            card.ok(INS_STATUS, 0, 0, new byte[0]);
        }
    }
}
