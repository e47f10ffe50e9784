package dev.enclavekms.cli;

import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.javacard.CardIdentity;
import dev.enclavekms.enclave.javacard.CardReaders;
import dev.enclavekms.enclave.javacard.JavaCardEnclave;
import dev.enclavekms.enclave.pkcs11.Pkcs11Pins;

import javax.smartcardio.Card;
import javax.smartcardio.CardChannel;
import javax.smartcardio.CardException;
import javax.smartcardio.CardTerminal;
import javax.smartcardio.CommandAPDU;
import javax.smartcardio.ResponseAPDU;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code kmsctl provision --card} (docs/card-operations.md): makes the KeyVault card in a
 * PC/SC reader ready for the daemon. Reads the card's identity key (made on the card when the
 * applet was installed) and records its fingerprint — trust on first use, at the one moment
 * an operator has the card in hand — then sets the PIN and admin PIN through the secure
 * channel to that identity. Idempotent: a personalised card is only checked (its identity
 * against the recorded one, the PIN by opening it). The daemon creates its own keys on the
 * card at its first start, as on a token.
 */
final class CardProvisioning {
    private final Output out;
    private final String reader;
    private final String aidHex;
    private final Path pinFile;
    private final Path adminPinFile;
    private final Path identityFile;

    CardProvisioning(Output out, String reader, String aidHex, Path pinFile, Path adminPinFile, Path identityFile) {
        this.out = out;
        this.reader = reader;
        this.aidHex = aidHex;
        this.pinFile = pinFile;
        this.adminPinFile = adminPinFile;
        this.identityFile = identityFile;
    }

    int run() {
        if (reader == null) {
            throw CliFailure.local("--card needs --reader NAME (the PC/SC reader; 'opensc-tool -l' lists them)");
        }
        byte[] aid = aid();
        Map<String, Object> r = new LinkedHashMap<>();
        try {
            CardTerminal terminal = CardReaders.find(reader);
            CardIdentity identity = JavaCardEnclave.readIdentity(terminal, aid);
            CardIdentity recorded = recordedIdentity();
            if (recorded != null && !recorded.equals(identity)) {
                throw CliFailure.local("the card in '" + reader + "' has identity " + identity.fingerprint()
                        + ", not the one recorded in " + identityFile + " (" + recorded.fingerprint()
                        + "): another card, or a replaced applet");
            }
            boolean created = false;
            if (!personalised(terminal, aid)) {
                if (adminPinFile == null) {
                    throw CliFailure.local("the card is blank: --admin-pin-file is required to personalise it");
                }
                char[] pin = Pkcs11Pins.read(pinFile);
                char[] admin = Pkcs11Pins.read(adminPinFile);
                try {
                    JavaCardEnclave.personalise(terminal, aid, identity, pin, admin);
                } finally {
                    Arrays.fill(pin, '\0');
                    Arrays.fill(admin, '\0');
                }
                created = true;
            }
            boolean simulated;
            char[] pin = Pkcs11Pins.read(pinFile);
            try (JavaCardEnclave enclave = JavaCardEnclave.open(terminal, aid, pin, identity)) {
                simulated = enclave.simulated();
            } finally {
                Arrays.fill(pin, '\0');
            }
            if (identityFile != null && recorded == null) {
                Files.writeString(identityFile, identity.fingerprint() + "\n", StandardCharsets.US_ASCII);
            }
            r.put("card_reader", reader);
            r.put("card_aid", HexFormat.of().withUpperCase().formatHex(aid));
            r.put("card_identity", identity.fingerprint());
            r.put("created", created);
            r.put("simulated", simulated);
            if (simulated) {
                System.err.println("kmsctl: warning: this card is jcardsim, a simulator: the daemon uses it only with"
                        + " --dev (its EC keys and ECDSA nonces are deterministic; its keys are never secrets)");
            }
        } catch (EnclaveException | IOException | CardException e) {
            throw CliFailure.local("card provisioning failed: " + e.getMessage());
        }
        if (out.json()) {
            out.json(r);
        } else {
            out.fields(new Output.Fields().add("card", "'" + reader + "', applet " + r.get("card_aid"))
                    .add("identity", (String) r.get("card_identity"))
                    .add("result", Boolean.TRUE.equals(r.get("created")) ? "personalised; PIN checked"
                            : "already personalised; PIN checked")
                    .add("configuration", "card.reader = " + reader + " / card.identity = " + r.get("card_identity")));
        }
        return Kmsctl.EXIT_OK;
    }

    private byte[] aid() {
        if (aidHex == null) {
            return JavaCardEnclave.defaultAid();
        }
        try {
            byte[] a = HexFormat.of().parseHex(aidHex.replace(" ", "").replace(":", ""));
            if (a.length >= 5 && a.length <= 16) {
                return a;
            }
        } catch (IllegalArgumentException e) {
            // falls through to the refusal
        }
        throw CliFailure.local("--aid must be 5 to 16 bytes in hex, e.g. F0454E434B4D5301");
    }

    private CardIdentity recordedIdentity() throws IOException {
        if (identityFile == null || !Files.exists(identityFile)) {
            return null;
        }
        try {
            return new CardIdentity(Files.readString(identityFile, StandardCharsets.US_ASCII).trim());
        } catch (IllegalArgumentException e) {
            throw new IOException(identityFile + " does not hold a card identity (64 hex digits)");
        }
    }

    /**
     * Whether the applet has its PINs: SELECT, then the plain STATUS command, whose byte 8 bit 0
     * says so (docs/javacard.md, "Commands"). Neither needs the secure channel or a PIN.
     */
    private static boolean personalised(CardTerminal terminal, byte[] aid) throws CardException {
        Card c = terminal.connect("*");
        try {
            CardChannel ch = c.getBasicChannel();
            if (ch.transmit(new CommandAPDU(0x00, 0xA4, 0x04, 0x00, aid)).getSW() != 0x9000) {
                throw new CardException("no KeyVault applet " + HexFormat.of().withUpperCase().formatHex(aid)
                        + " on the card");
            }
            ResponseAPDU status = ch.transmit(new CommandAPDU(0x80, 0x30, 0x00, 0x00, 256));
            if (status.getSW() != 0x9000 || status.getData().length < 9) {
                throw new CardException("the applet's STATUS answer is malformed (SW "
                        + Integer.toHexString(status.getSW()) + ")");
            }
            return (status.getData()[8] & 0x01) != 0;
        } finally {
            c.disconnect(true);
        }
    }
}
