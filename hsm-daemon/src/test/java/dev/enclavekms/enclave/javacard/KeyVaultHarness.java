package dev.enclavekms.enclave.javacard;

import com.licel.jcardsim.base.SimulatorRuntime;
import com.licel.jcardsim.smartcardio.CardSimulator;
import dev.enclavekms.applet.AppletProbe;
import javacard.framework.AID;
import javacard.framework.Applet;

import javax.smartcardio.CommandAPDU;
import javax.smartcardio.ResponseAPDU;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;

import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.*;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * One KeyVault applet in jcardsim, driven APDU by APDU for the applet's unit tests, with the
 * host's real {@link SecureSession}. Records every response (raw and unwrapped) for the
 * no-key-bytes scan, and exposes the applet instance through {@link AppletProbe}.
 */
final class KeyVaultHarness {

    static final String PIN = "246810";
    static final String ADMIN_PIN = "admin-13579";
    private static final SecureRandom RANDOM = new SecureRandom();

    /** jcardsim's runtime with the applet instance and the APDU buffer made reachable. */
    static final class ExposedRuntime extends SimulatorRuntime {
        Applet applet(AID aid) {
            return getApplet(aid);
        }

        byte[] apduBuffer() {
            return shortAPDU.getBuffer();
        }
    }

    final ExposedRuntime runtime = new ExposedRuntime();
    final CardSimulator simulator = new CardSimulator(runtime);
    final AID aid = new AID(DEFAULT_AID, (short) 0, (byte) DEFAULT_AID.length);
    final AppletProbe probe;
    final List<byte[]> responses = new ArrayList<>();
    SecureSession session;
    byte[] identity;

    KeyVaultHarness() {
        SimulatedCard.installInto(simulator);
        simulator.selectApplet(aid);
        probe = new AppletProbe(runtime.applet(aid));
    }

    ResponseAPDU transmit(CommandAPDU command) {
        ResponseAPDU r = simulator.transmitCommand(command);
        responses.add(r.getBytes());
        return r;
    }

    ResponseAPDU plain(int ins, int p1, int p2, byte[] data) {
        return transmit(data.length == 0 ? new CommandAPDU(CLA_PLAIN, ins, p1, p2, 256)
                : new CommandAPDU(CLA_PLAIN, ins, p1, p2, data, 256));
    }

    /** GET IDENTITY, then OPEN CHANNEL to that identity. */
    KeyVaultHarness open() throws Exception {
        identity = plain(INS_GET_IDENTITY, 0, 0, new byte[0]).getData();
        SecureSession.Opening opening = SecureSession.begin();
        session = SecureSession.finish(opening, transmit(opening.command()), identity);
        return this;
    }

    /** A wrapped command and its unwrapped reply. */
    SecureSession.Reply send(int ins, int p1, int p2, byte[] data) throws Exception {
        SecureSession.Reply r = session.unwrap(transmit(session.wrap(ins, p1, p2, data)));
        responses.add(r.data());
        return r;
    }

    int sw(int ins, int p1, int p2, byte[] data) throws Exception {
        return send(ins, p1, p2, data).sw();
    }

    byte[] ok(int ins, int p1, int p2, byte[] data) throws Exception {
        SecureSession.Reply r = send(ins, p1, p2, data);
        assertEquals(SW_OK, r.sw(), () -> "INS " + Integer.toHexString(ins) + " answered " + KeyVaultProtocol.sw(r.sw()));
        return r.data();
    }

    KeyVaultHarness personalise() throws Exception {
        ok(INS_PERSONALISE, 0, 0, lvs(PIN.getBytes(StandardCharsets.UTF_8), ADMIN_PIN.getBytes(StandardCharsets.UTF_8)));
        return this;
    }

    KeyVaultHarness verify() throws Exception {
        ok(INS_VERIFY, 0, P2_PIN, PIN.getBytes(StandardCharsets.UTF_8));
        return this;
    }

    /** Channel open, personalised, PIN verified. */
    static KeyVaultHarness ready() throws Exception {
        return new KeyVaultHarness().open().personalise().verify();
    }

    static byte[] newId() {
        byte[] id = new byte[16];
        RANDOM.nextBytes(id);
        return id;
    }

    /** GENERATE a key of {@code algorithm} with a fresh id; returns the id. */
    byte[] generate(int algorithm) throws Exception {
        byte[] id = newId();
        ok(INS_GENERATE, algorithm, 0, lvs(id, "test".getBytes(StandardCharsets.UTF_8)));
        return id;
    }

    /** The slot that holds {@code id}, found through LIST. */
    int slotOf(byte[] id) throws Exception {
        byte[] list = ok(INS_LIST, 0, 0, new byte[0]);
        int at = 1;
        while (at < list.length) {
            int slot = list[at];
            int idLength = list[at + 2];
            byte[] got = java.util.Arrays.copyOfRange(list, at + 3, at + 3 + idLength);
            if (java.util.Arrays.equals(got, id)) {
                return slot;
            }
            at += 3 + idLength + 1 + (list[at + 3 + idLength] & 0xFF);
        }
        throw new AssertionError("id not listed");
    }

    /** Length-prefixed concatenation. */
    static byte[] lvs(byte[]... values) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (byte[] v : values) {
            out.write(v.length);
            out.writeBytes(v);
        }
        return out.toByteArray();
    }

    static byte[] concat(byte[]... parts) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    static byte[] bytes(int n) {
        byte[] b = new byte[n];
        RANDOM.nextBytes(b);
        return b;
    }
}
