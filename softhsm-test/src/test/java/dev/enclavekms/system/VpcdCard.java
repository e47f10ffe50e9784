package dev.enclavekms.system;

import com.licel.jcardsim.base.CardManager;
import com.licel.jcardsim.base.Simulator;
import javacard.framework.AID;
import javacard.framework.Applet;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.concurrent.Semaphore;

/**
 * A jcardsim card in a vsmartcard reader: the main class of the card's own JVM, which
 * {@link VirtualPcscReader} starts. It installs one applet, then serves vpcd's protocol
 * (a 2-byte big-endian length, then a one-byte control code or an APDU) on a TCP
 * connection to vpcd, exactly as jcardsim's {@code com.licel.jcardsim.remote.VSmartCard}
 * does, with two differences that the tests need:
 * <ul>
 * <li>Removal and re-insertion. {@code remove} on standard input closes the connection
 *     (vpcd then reports the card absent), {@code insert} connects again; the simulator
 *     and its applets live on, as a real card's persistent memory does, and the next
 *     power-up resets its transient state. VSmartCard can only be killed and started
 *     afresh, which loses every key on the card.</li>
 * <li>Speed. vpcd writes a frame's length and its body in two segments; VSmartCard leaves
 *     the Nagle/delayed-ACK pair to cost ~40 ms per APDU (~50 ms/APDU measured). Asking
 *     the kernel for an immediate ACK before every read takes it to ~1 ms.</li>
 * </ul>
 * It prints {@code inserted} and {@code removed} on standard output when the connection
 * is up or down, so that the fixture waits for facts, not for time.
 *
 * <p>Arguments: {@code PORT AID-HEX APPLET-CLASS INSTALL-DATA-HEX} (install data in
 * GlobalPlatform's format: AID, privileges and application parameters, each with a
 * length byte; may be empty).
 */
public final class VpcdCard {
    private static final int POWER_OFF = 0;
    private static final int POWER_ON = 1;
    private static final int RESET = 2;
    private static final int GET_ATR = 4;

    private static java.io.PrintStream events;
    private final Simulator simulator = new Simulator();
    private final int port;
    private final Semaphore insertions = new Semaphore(0);
    private volatile Socket connection;

    private VpcdCard(int port) {
        this.port = port;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: VpcdCard PORT AID-HEX APPLET-CLASS INSTALL-DATA-HEX");
            System.exit(2);
        }
        // Standard output carries the events only; jcardsim prints its chatter on stdout too.
        events = System.out;
        System.setOut(System.err);
        // jcardsim's RandomData is a fixed SHA1PRNG unless told otherwise (docs/card-operations.md).
        System.setProperty("com.licel.jcardsim.randomdata.secure", "1");
        VpcdCard card = new VpcdCard(Integer.parseInt(args[0]));
        card.install(HexFormat.of().parseHex(args[1]), Class.forName(args[2]).asSubclass(Applet.class),
                HexFormat.of().parseHex(args[3]));
        card.startControl();
        card.serve();
    }

    private void install(byte[] aid, Class<? extends Applet> applet, byte[] installData) {
        simulator.installApplet(new AID(aid, (short) 0, (byte) aid.length), applet, installData, (short) 0,
                (byte) installData.length);
    }

    /** Reads {@code insert} and {@code remove} from standard input; end of input ends the card. */
    private void startControl() {
        Thread control = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII))) {
                for (String line; (line = in.readLine()) != null; ) {
                    switch (line.trim()) {
                        case "insert" -> insertions.release();
                        case "remove" -> {
                            Socket s = connection;
                            if (s != null) s.close();
                        }
                        default -> System.err.println("unknown command: " + line);
                    }
                }
            } catch (IOException e) {
                System.err.println("card-control: " + e); // the fixture reads this process's stderr
            }
            System.exit(0);
        }, "card-control");
        control.setDaemon(true);
        control.start();
    }

    private void serve() throws InterruptedException {
        while (true) {
            insertions.acquire();
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
                s.setTcpNoDelay(true);
                connection = s;
                say("inserted");
                serve(s);
            } catch (IOException e) {
                // The connection closed: removed by the control thread, or vpcd went away.
            } finally {
                connection = null;
            }
            say("removed");
        }
    }

    private void serve(Socket s) throws IOException {
        DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
        OutputStream out = s.getOutputStream();
        while (true) {
            s.setOption(jdk.net.ExtendedSocketOptions.TCP_QUICKACK, true);
            int length = in.readUnsignedShort();
            s.setOption(jdk.net.ExtendedSocketOptions.TCP_QUICKACK, true);
            byte[] frame = in.readNBytes(length);
            if (frame.length != length) {
                throw new IOException("connection closed inside a frame");
            }
            byte[] reply = null;
            if (length == 1) {
                switch (frame[0]) {
                    case POWER_OFF, POWER_ON, RESET -> simulator.reset();
                    case GET_ATR -> reply = simulator.getATR();
                    default -> { }
                }
            } else {
                reply = CardManager.dispatchApdu(simulator, frame);
            }
            if (reply != null) {
                byte[] f = new byte[2 + reply.length];
                f[0] = (byte) (reply.length >> 8);
                f[1] = (byte) reply.length;
                System.arraycopy(reply, 0, f, 2, reply.length);
                out.write(f); // one segment: length and body together
                out.flush();
            }
        }
    }

    private static void say(String what) {
        events.println(what);
        events.flush();
    }
}
