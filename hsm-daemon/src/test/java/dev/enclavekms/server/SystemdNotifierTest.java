package dev.enclavekms.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The notifier against a real AF_UNIX datagram receiver (python3: the JDK cannot bind
 * one), for both forms of NOTIFY_SOCKET systemd uses: a path and an abstract name.
 */
class SystemdNotifierTest {
    /** Binds the address, prints "bound", then prints each datagram received (escaped) and exits after one. */
    private static final String RECEIVER = """
            import socket, sys
            a = sys.argv[1]
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind("\\0" + a[1:] if a.startswith("@") else a)
            print("bound", flush=True)
            print(repr(s.recv(4096).decode()), flush=True)
            """;

    @TempDir
    Path dir;

    private static String receiveOne(String address, SystemdNotifier notifier, String message) throws Exception {
        Process p = new ProcessBuilder("python3", "-c", RECEIVER, address).redirectErrorStream(true).start();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            assertEquals("bound", r.readLine());
            assertTrue(notifier.send(message));
            String got = r.readLine();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            return got;
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void pathAddress_receivesTheDatagramVerbatim() throws Exception {
        String address = dir.resolve("notify").toString();
        assertEquals("'READY=1\\nSTATUS=serving'", receiveOne(address, SystemdNotifier.forSocket(address),
                "READY=1\nSTATUS=serving"));
    }

    @Test
    void abstractAddress_receivesTheDatagram() throws Exception {
        String address = "@enclave-kms-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        assertEquals("'STOPPING=1'", receiveOne(address, SystemdNotifier.forSocket(address), "STOPPING=1"));
    }

    @Test
    void noListener_sendReportsFailureWithoutThrowing() {
        assertFalse(SystemdNotifier.forSocket(dir.resolve("nobody-here").toString()).send("READY=1"));
        assertFalse(SystemdNotifier.forSocket("relative/path").send("READY=1"));
        assertFalse(SystemdNotifier.forSocket("/" + "x".repeat(200)).send("READY=1"));
    }

    @Test
    void unsetOrBlank_isDisabled() {
        assertFalse(SystemdNotifier.forSocket(null).enabled());
        assertFalse(SystemdNotifier.forSocket(" ").enabled());
        assertFalse(SystemdNotifier.NONE.send("READY=1"));
    }
}
