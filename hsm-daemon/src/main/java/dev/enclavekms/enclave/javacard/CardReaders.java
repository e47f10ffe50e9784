package dev.enclavekms.enclave.javacard;

import dev.enclavekms.enclave.EnclaveException;

import javax.smartcardio.CardException;
import javax.smartcardio.CardTerminal;
import javax.smartcardio.TerminalFactory;
import java.security.NoSuchAlgorithmException;
import java.util.List;

/**
 * Finds a PC/SC reader by name through the JDK's SunPCSC provider (pcscd on Linux): the one
 * lookup the daemon, dev mode and {@code kmsctl provision --card} share.
 */
public final class CardReaders {

    private CardReaders() {
    }

    /**
     * A fresh PC/SC factory. Not {@code getDefault()}: the default is fixed when the class
     * loads, and if pcscd was not reachable then it stays a factory without readers for
     * the JVM's life.
     */
    private static TerminalFactory pcsc() throws EnclaveException {
        try {
            return TerminalFactory.getInstance("PC/SC", null);
        } catch (NoSuchAlgorithmException e) {
            throw new EnclaveException.Unavailable("PC/SC is not available: is pcscd running, and libpcsclite1"
                    + " installed? (" + e.getMessage() + ")", e);
        }
    }

    /** Names of the readers pcscd reports now; empty when there are none or no pcscd. */
    public static List<String> names() {
        try {
            return pcsc().terminals().list().stream().map(CardTerminal::getName).toList();
        } catch (EnclaveException | CardException | RuntimeException e) {
            return List.of();
        }
    }

    /**
     * The reader called exactly {@code name}, as a {@link StrictPcscTerminal} (a card pulled
     * mid-command fails as a {@link CardException} instead of hanging or half-answering).
     *
     * @throws EnclaveException.Unavailable when there is no PC/SC, pcscd cannot list its
     *                                      readers, or none has this name (the message lists those it has)
     */
    public static CardTerminal find(String name) throws EnclaveException {
        List<CardTerminal> readers;
        try {
            readers = pcsc().terminals().list();
        } catch (CardException e) {
            throw new EnclaveException.Unavailable("cannot list the PC/SC readers: " + e.getMessage()
                    + " (is pcscd running? 'systemctl status pcscd.socket')", e);
        }
        for (CardTerminal t : readers) {
            if (t.getName().equals(name)) {
                return new StrictPcscTerminal(t);
            }
        }
        throw new EnclaveException.Unavailable("no PC/SC reader named '" + name + "'; pcscd lists "
                + readers.stream().map(t -> "'" + t.getName() + "'").toList(), null);
    }
}
