package dev.enclavekms.enclave.javacard;

import com.licel.jcardsim.smartcardio.CardSimulator;
import com.licel.jcardsim.smartcardio.CardTerminalSimulator;
import dev.enclavekms.applet.KeyVault;
import javacard.framework.AID;

import javax.smartcardio.CardTerminal;

/**
 * A KeyVault applet in jcardsim with a {@code javax.smartcardio} terminal in front of it: the
 * card of tests and dev mode. Not a secure element (docs/javacard.md, "Simulation honesty"):
 * a {@link JavaCardEnclave} on it reports {@link JavaCardEnclave#simulated()}.
 */
public final class SimulatedCard {

    /** jcardsim's RandomData is a fixed SHA1PRNG unless this is "1" when the applet installs. */
    public static final String SECURE_RANDOM_PROPERTY = "com.licel.jcardsim.randomdata.secure";

    private final CardSimulator simulator;
    private final CardTerminal terminal;

    private SimulatedCard(CardSimulator simulator) {
        this.simulator = simulator;
        this.terminal = CardTerminalSimulator.terminal(simulator, "jcardsim KeyVault");
    }

    /** A fresh simulator with the applet installed under {@link JavaCardEnclave#defaultAid()}. */
    public static SimulatedCard create() {
        return installInto(new CardSimulator());
    }

    /** Installs the applet into {@code simulator} (tests pass one whose runtime they can inspect). */
    public static SimulatedCard installInto(CardSimulator simulator) {
        if (!"1".equals(System.getProperty(SECURE_RANDOM_PROPERTY))) {
            System.setProperty(SECURE_RANDOM_PROPERTY, "1");
        }
        simulator.installApplet(new AID(KeyVaultProtocol.DEFAULT_AID, (short) 0, (byte) KeyVaultProtocol.DEFAULT_AID.length),
                KeyVault.class);
        return new SimulatedCard(simulator);
    }

    public CardTerminal terminal() {
        return terminal;
    }

    public CardSimulator simulator() {
        return simulator;
    }
}
