package dev.enclavekms.enclave.javacard;

import dev.enclavekms.enclave.EnclaveException;

import javax.smartcardio.CardException;
import javax.smartcardio.CardTerminal;
import javax.smartcardio.TerminalFactory;
import java.util.List;

/** Finds a PC/SC reader by name through the JDK's SunPCSC provider (pcscd on Linux). */
public final class CardReaders {

    private CardReaders() {
    }

    /**
     * A fresh PC/SC factory. Not {@code getDefault()}: the default is fixed when the class
     * loads, and if pcscd was not reachable then it stays a factory without readers for
     * the JVM's life.
     */
    private static TerminalFactory pcsc() {
        try {
            return TerminalFactory.getInstance("PC/SC", null);
        } catch (java.security.NoSuchAlgorithmException e) {
            return TerminalFactory.getDefault(); // no SunPCSC (no libpcsclite): the JDK's empty factory
        }
    }

    /** Names of the readers pcscd reports now; empty when there are none or no pcscd. */
    public static List<String> names() {
        try {
            return pcsc().terminals().list().stream().map(CardTerminal::getName).toList();
        } catch (CardException | RuntimeException e) {
            return List.of();
        }
    }

    /**
     * The reader called exactly {@code name}.
     *
     * @throws EnclaveException.Unavailable when pcscd does not know it (the message lists the readers it knows)
     */
    public static CardTerminal find(String name) throws EnclaveException {
        CardTerminal t;
        try {
            t = pcsc().terminals().getTerminal(name);
        } catch (RuntimeException e) {
            t = null;
        }
        if (t == null) {
            throw new EnclaveException.Unavailable("no smart-card reader named '" + name + "'; readers: " + names(), null);
        }
        return t;
    }
}
