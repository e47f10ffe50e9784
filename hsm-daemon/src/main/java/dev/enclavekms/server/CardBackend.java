package dev.enclavekms.server;

import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.javacard.CardIdentity;
import dev.enclavekms.enclave.javacard.CardReaders;
import dev.enclavekms.enclave.javacard.JavaCardEnclave;
import dev.enclavekms.enclave.pkcs11.Pkcs11Pins;

import javax.smartcardio.CardTerminal;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Opens the Java Card backend the configuration names (docs/card-operations.md): finds the
 * PC/SC reader, opens {@link JavaCardEnclave} with the PIN file and the pinned card
 * identity, and refuses a simulated card outside dev mode.
 */
public final class CardBackend {
    private static final System.Logger LOG = System.getLogger(CardBackend.class.getName());

    /**
     * Why a simulated card is for development only; the daemon says it when it refuses one.
     * The facts are jcardsim 3.0.6.0's (docs/javacard.md, "Simulation honesty").
     */
    public static final String SIMULATION_WARNING = "jcardsim is a simulator, not a secure element: its EC key"
            + " generation is deterministic (every simulated card has the same identity key), its ECDSA nonces"
            + " repeat (two signatures reveal a P-256 private key), and its RandomData is a fixed SHA1PRNG unless"
            + " com.licel.jcardsim.randomdata.secure=1; its keys are never secrets";

    private CardBackend() {
    }

    /**
     * Opens the card.
     *
     * @param simulator the in-process simulated card's terminal when {@code card} names
     *                  {@link DaemonConfig.Card#SIMULATOR} (dev mode), else null
     * @param dev       whether the daemon runs in explicit development mode ({@code --dev})
     * @throws IOException with the reason when the card is simulated and {@code dev} is false,
     *                     or when the reader or PIN file is wrong
     */
    public static JavaCardEnclave open(DaemonConfig.Card card, Path pinFile, CardTerminal simulator, boolean dev)
            throws IOException, EnclaveException {
        CardIdentity trusted = new CardIdentity(card.identity());
        if (trusted.isJcardsimDefault() && !dev) {
            throw new IOException("refusing the card identity " + card.identity() + " outside development mode (--dev):"
                    + " it is the identity every jcardsim simulator has, not a secure element's. " + SIMULATION_WARNING);
        }
        CardTerminal terminal = card.simulator() ? simulator : CardReaders.find(card.reader());
        if (terminal == null) {
            throw new IOException("the simulated card exists only in dev mode (enclave-kmsd --dev --card)");
        }
        if (JavaCardEnclave.isSimulatorTerminal(terminal) && !dev) {
            throw new IOException("refusing the simulated card outside development mode (--dev): "
                    + SIMULATION_WARNING);
        }
        char[] pin = Pkcs11Pins.read(pinFile);
        JavaCardEnclave enclave;
        try {
            enclave = JavaCardEnclave.open(terminal, card.aid(), pin, trusted);
        } finally {
            Arrays.fill(pin, '\0');
        }
        if (enclave.simulated()) {
            if (!dev) {
                enclave.close();
                throw new IOException("refusing the card in '" + card.reader() + "': it is a jcardsim simulator"
                        + " (it has the identity key every simulated card has), allowed only in development mode"
                        + " (--dev): " + SIMULATION_WARNING);
            }
            LOG.log(System.Logger.Level.WARNING, "dev mode on a simulated card (" + card.reader() + "): "
                    + SIMULATION_WARNING);
        }
        return enclave;
    }
}
