package dev.enclavekms.system;

import javax.smartcardio.CardException;
import javax.smartcardio.CardTerminal;
import javax.smartcardio.TerminalFactory;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A real PC/SC stack with a simulated card in it: a private pcscd with the vsmartcard
 * driver (vpcd) as its only reader, and a {@link VpcdCard} JVM that connects to vpcd as
 * the card. Code under test reaches the card the way it reaches a USB reader in production:
 * javax.smartcardio, the SunPCSC provider, libpcsclite, pcscd's socket.
 *
 * <p>The pcscd is the test run's own, so tests never fight with a system pcscd or another
 * checkout's: its socket is the path in {@code $PCSCLITE_CSOCK_NAME} (libpcsclite reads that
 * variable, so failsafe sets it for the test JVM and every process it starts), handed to
 * pcscd through systemd's socket-activation protocol (pcscd 1.9 has no option for its
 * socket path); its reader configuration is a directory of its own with a free TCP port for
 * vpcd; and as root it runs in a mount namespace with a private /run/pcscd, where it still
 * writes its pid file. One pcscd serves the whole test JVM and is stopped when it exits:
 * the JDK's PC/SC provider establishes its context once per JVM and would not survive a
 * second pcscd.
 *
 * <p>Cards are per test: {@link #insert} starts a card JVM with an applet installed,
 * {@link Card#remove()} and {@link Card#reinsert()} pull and push it (its memory survives),
 * {@link Card#close()} ends it.
 */
public final class VirtualPcscReader {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    private static VirtualPcscReader shared;

    /**
     * Binds the socket, hands it to pcscd as fd 3 with LISTEN_FDS/LISTEN_PID (exec keeps the
     * pid), so that pcscd serves it at once instead of its compiled-in /run/pcscd/pcscd.comm.
     */
    private static final String SOCKET_ACTIVATION = """
            import os, socket, sys
            path = sys.argv[1]
            if os.path.exists(path):
                os.unlink(path)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            os.chmod(path, 0o600)
            s.listen(64)
            if s.fileno() != 3:
                os.dup2(s.fileno(), 3)
            os.set_inheritable(3, True)
            os.environ["LISTEN_FDS"] = "1"
            os.environ["LISTEN_PID"] = str(os.getpid())
            os.execvp(sys.argv[2], sys.argv[2:])
            """;

    private final Path dir;
    private final Path socket;
    private final int port;
    private final Process pcscd;
    private final String readerName;

    private VirtualPcscReader(Path dir, Path socket, int port, Process pcscd) {
        this.dir = dir;
        this.socket = socket;
        this.port = port;
        this.pcscd = pcscd;
        // vpcd names its first slot "<FRIENDLYNAME> 00 00" (and offers a second on port + 1).
        this.readerName = "enclave-kms virtual reader 00 00";
    }

    /** The test JVM's reader, started on first use. */
    public static synchronized VirtualPcscReader shared() throws Exception {
        if (shared == null) {
            shared = start();
            VirtualPcscReader r = shared;
            Runtime.getRuntime().addShutdownHook(new Thread(r::stop, "pcscd-stop"));
        }
        return shared;
    }

    private static VirtualPcscReader start() throws Exception {
        String socketName = System.getenv("PCSCLITE_CSOCK_NAME");
        if (socketName == null || socketName.isBlank()) {
            throw new IllegalStateException("PCSCLITE_CSOCK_NAME is not set: the test JVM must be started with it"
                    + " (softhsm-test/pom.xml sets it for failsafe) so that libpcsclite talks to the tests' pcscd");
        }
        Path socket = Path.of(socketName).toAbsolutePath();
        if (socket.toString().getBytes(StandardCharsets.UTF_8).length > 100) {
            throw new IllegalStateException("PCSCLITE_CSOCK_NAME=" + socket + " is too long for a Unix socket"
                    + " (sun_path holds 108 bytes): build from a shorter checkout path");
        }
        Path dir = socket.getParent();
        Files.createDirectories(dir.resolve("readers"));
        int port = freePortPair();
        Files.writeString(dir.resolve("readers/vpcd"), """
                FRIENDLYNAME "enclave-kms virtual reader"
                DEVICENAME   /dev/null:%d
                LIBPATH      %s
                CHANNELID    %d
                """.formatted(port, vpcdDriver(), port));
        Files.deleteIfExists(socket); // a previous run's: it must not look like this pcscd's
        Path launcher = dir.resolve("pcscd-activate.py");
        Files.writeString(launcher, SOCKET_ACTIVATION);
        List<String> pcscdCommand = List.of("python3", launcher.toString(), socket.toString(), "pcscd", "--foreground",
                "--apdu", "--info", "--config", dir.resolve("readers").toString());
        List<String> cmd = new ArrayList<>();
        if ("root".equals(System.getProperty("user.name"))) {
            // Its own /run/pcscd: pcscd writes (and at exit removes) pcscd.pid there.
            cmd.addAll(List.of("unshare", "--mount", "--propagation", "private", "sh", "-c",
                    "mkdir -p /run/pcscd && mount -t tmpfs -o mode=0755 tmpfs /run/pcscd && exec \"$@\"", "sh"));
        }
        cmd.addAll(pcscdCommand);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("pcscd.log").toFile())).start();
        VirtualPcscReader r = new VirtualPcscReader(dir, socket, port, p);
        try {
            r.awaitReader();
        } catch (Exception e) {
            r.stop();
            throw e;
        }
        return r;
    }

    private static String vpcdDriver() {
        for (String p : List.of("/usr/lib/pcsc/drivers/serial/libifdvpcd.so", "/usr/lib64/pcsc/drivers/serial/libifdvpcd.so")) {
            if (Files.exists(Path.of(p))) return p;
        }
        throw new IllegalStateException("vpcd is not installed (apt-get install vsmartcard-vpcd; bin/lib.sh installs it)");
    }

    /** A port that is free, with the next one free too (vpcd listens on both). */
    private static int freePortPair() throws IOException {
        for (int i = 0; i < 20; i++) {
            try (ServerSocket a = new ServerSocket(0)) {
                int port = a.getLocalPort();
                if (port >= 65535) continue;
                try (ServerSocket b = new ServerSocket(port + 1)) {
                    return port;
                } catch (IOException taken) {
                    // try another
                }
            }
        }
        throw new IOException("no two adjacent free TCP ports");
    }

    /**
     * Waits until pcscd lists our reader through the same PC/SC API the code under test uses.
     * Nothing may touch {@link TerminalFactory} before pcscd's socket exists: the class decides
     * its {@linkplain TerminalFactory#getDefault() default} once, when it loads, and when PC/SC
     * cannot be initialised then, it keeps a factory without terminals for the JVM's life. The
     * launcher binds the socket before pcscd starts, so a client that finds it waits for pcscd.
     */
    private void awaitReader() throws Exception {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        Exception last = null;
        while (System.nanoTime() - deadline < 0) {
            if (!pcscd.isAlive()) {
                throw new IllegalStateException("pcscd exited with " + pcscd.exitValue() + ": " + log());
            }
            if (Files.exists(socket)) {
                try {
                    if (terminal() != null) return;
                } catch (CardException e) {
                    last = e; // the reader not yet added
                }
            }
            pcscd.waitFor(50, TimeUnit.MILLISECONDS);
        }
        throw new IllegalStateException("pcscd did not offer '" + readerName + "' within " + START_TIMEOUT + " ("
                + last + "): " + log());
    }

    /** The reader as javax.smartcardio sees it, or null while pcscd does not list it. */
    public CardTerminal terminal() throws CardException {
        for (CardTerminal t : TerminalFactory.getDefault().terminals().list()) {
            if (t.getName().equals(readerName)) return t;
        }
        return null;
    }

    public String readerName() {
        return readerName;
    }

    /** pcscd's socket ($PCSCLITE_CSOCK_NAME). */
    public Path socket() {
        return socket;
    }

    /** How often pcscd has logged {@code event} (its --info log: insertions, removals). */
    private int events(String event) {
        String log = log();
        int n = 0;
        for (int i = log.indexOf(event); i >= 0; i = log.indexOf(event, i + 1)) {
            n++;
        }
        return n;
    }

    /** What pcscd logged (with --apdu: every APDU, so tests can scan it for secrets). */
    public String log() {
        try {
            return Files.readString(dir.resolve("pcscd.log"), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no pcscd log: " + e.getMessage() + ")";
        }
    }

    /**
     * Starts a card JVM with {@code applet} installed under {@code aid}, puts it into the
     * reader and waits until pcscd sees it.
     *
     * @param installData GlobalPlatform install data (see {@link VpcdCard})
     */
    public Card insert(byte[] aid, Class<?> applet, byte[] installData) throws Exception {
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), VpcdCard.class.getName(),
                Integer.toString(port), HexFormat.of().formatHex(aid), applet.getName(),
                HexFormat.of().formatHex(installData));
        Path log = dir.resolve("card-" + System.nanoTime() + ".log");
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        Card card = new Card(p, log);
        try {
            card.reinsert();
        } catch (Exception e) {
            card.close();
            throw e;
        }
        return card;
    }

    /** A simulated card in this reader; closing it ends its JVM (and everything on it). */
    public final class Card implements AutoCloseable {
        private final Process process;
        private final Path log;
        private final Writer control;
        private final BlockingQueue<String> events = new LinkedBlockingQueue<>();
        private boolean inReader;

        private Card(Process process, Path log) {
            this.process = process;
            this.log = log;
            this.control = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.US_ASCII);
            Thread reader = new Thread(() -> {
                try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
                        StandardCharsets.US_ASCII))) {
                    for (String line; (line = in.readLine()) != null; ) {
                        events.add(line.trim());
                    }
                } catch (IOException e) {
                    // the card JVM ended
                }
                events.add("exited");
            }, "card-events");
            reader.setDaemon(true);
            reader.start();
        }

        /** Pulls the card out; returns once pcscd has noticed (its event thread logged it). */
        public void remove() throws Exception {
            int before = events("Card Removed From " + readerName);
            command("remove", "removed");
            awaitEvent("Card Removed From " + readerName, before);
            inReader = false;
        }

        /** Puts the card (back) in; returns once pcscd has noticed and reports it present. */
        public void reinsert() throws Exception {
            int before = events("Card inserted into " + readerName);
            command("insert", "inserted");
            awaitEvent("Card inserted into " + readerName, before);
            inReader = true;
            if (!terminal().isCardPresent()) {
                throw new IllegalStateException("pcscd logged the insertion but reports no card in " + readerName);
            }
        }

        /**
         * Waits for pcscd's event thread, which polls vpcd every 400 ms, to log {@code event}
         * once more than {@code before}. Waiting for the client API to report the reader empty
         * is not enough: a failed reset marks it empty at once, and a card pushed back before
         * the next poll is never seen as removed, so pcscd's state never comes back to present
         * (measured: half of the runs hung).
         */
        private void awaitEvent(String event, int before) throws Exception {
            long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
            while (events(event) <= before) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("pcscd did not log '" + event + "' within " + START_TIMEOUT);
                }
                Thread.sleep(20);
            }
        }

        private void command(String command, String expected) throws Exception {
            control.write(command + "\n");
            control.flush();
            String e = events.poll(START_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            if (!expected.equals(e)) {
                throw new IllegalStateException("card answered " + e + " to " + command + ", expected " + expected
                        + ": " + Files.readString(log));
            }
        }

        @Override
        public void close() throws Exception {
            int before = events("Card Removed From " + readerName);
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
            if (inReader) {
                awaitEvent("Card Removed From " + readerName, before); // the next card must not race it
            }
        }
    }

    private void stop() {
        pcscd.destroy(); // SIGTERM: pcscd removes its files and exits
        try {
            if (!pcscd.waitFor(10, TimeUnit.SECONDS)) {
                pcscd.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
