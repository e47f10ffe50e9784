package dev.enclavekms.enclave.javacard;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveContractTest;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.KeyAlgorithm;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Enclave contract, unchanged, against the KeyVault applet in jcardsim through
 * {@code javax.smartcardio}: one simulated card per class, personalised on first open.
 */
class JavaCardEnclaveTest extends EnclaveContractTest {

    static final char[] PIN = "123456".toCharArray();
    static final char[] ADMIN_PIN = "admin-12345678".toCharArray();

    private SimulatedCard card;
    private CardIdentity identity;

    @Override
    protected Enclave openEnclave() throws EnclaveException {
        if (card == null) {
            card = SimulatedCard.create();
            identity = JavaCardEnclave.readIdentity(card.terminal(), JavaCardEnclave.defaultAid());
            JavaCardEnclave.personalise(card.terminal(), JavaCardEnclave.defaultAid(), identity, PIN, ADMIN_PIN);
        }
        return JavaCardEnclave.open(card.terminal(), JavaCardEnclave.defaultAid(), PIN, identity);
    }

    /** What the applet implements; P-384, Ed25519 and RSA are refused as Unsupported by the contract. */
    @Override
    protected Set<KeyAlgorithm> supportedAlgorithms() {
        return Set.of(KeyAlgorithm.AES_256_GCM, KeyAlgorithm.HMAC_SHA256, KeyAlgorithm.EC_P256_SHA256);
    }

    @Test
    void supportedAlgorithms_cardFeatureBits_matchTheDeclaredSet() {
        assertEquals(supportedAlgorithms(), ((JavaCardEnclave) enclave).supportedAlgorithms());
    }

    @Test
    void simulated_jcardsimTerminal_isReported() {
        assertTrue(((JavaCardEnclave) enclave).simulated());
    }
}
