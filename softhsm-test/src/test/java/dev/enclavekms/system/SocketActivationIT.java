package dev.enclavekms.system;

import dev.enclavekms.json.Json;
import dev.enclavekms.varlink.FrameReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Socket activation as systemd does it ({@code enclave-kms.socket} + {@code Type=notify}
 * service with {@code StandardInput=socket}), with a launcher standing in for systemd.
 */
class SocketActivationIT {
    private static final Duration START = Duration.ofSeconds(120);
    private static final byte[] GET_INFO = FrameReader.encode("{\"method\":\"org.varlink.service.GetInfo\"}");

    @TempDir
    Path dir;

    @Test
    void clientsQueuedBeforeStartAndAcrossRestarts_areServed_withReadinessReloadAndCleanStops() throws Exception {
        try (ActivatedDaemon d = ActivatedDaemon.listening(dir);
             ExecutorService readers = Executors.newVirtualThreadPerTaskExecutor()) {
            // Before any daemon process exists: clients connect (the backlog takes them) and send.
            List<Future<Map<String, Object>>> early = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                early.add(readers.submit(callOn(d.socket())));
            }

            long pid = d.startDaemon();
            String ready = (String) d.awaitReady(1, START).get("message");
            assertTrue(ready.contains("STATUS=serving "), ready);
            assertTrue(ready.contains("MAINPID=" + pid), ready);
            for (Future<Map<String, Object>> f : early) {
                assertEquals("enclave-kmsd", parameters(f.get(60, TimeUnit.SECONDS)).get("product"));
            }

            // SIGHUP: reload (there is no policy yet), reported as RELOADING=1 then READY=1; still serving.
            ActivatedDaemon.signal(pid, "HUP");
            d.awaitReady(2, Duration.ofSeconds(30));
            List<String> notes = d.notifications();
            assertTrue(notes.stream().anyMatch(m -> m.lines().anyMatch("RELOADING=1"::equals)), notes.toString());
            assertTrue(d.stderr().contains("policy reloaded from"), d.stderr());
            assertEquals("enclave-kmsd", parameters(readers.submit(callOn(d.socket())).get(30, TimeUnit.SECONDS))
                    .get("product"));

            // SIGTERM: STOPPING=1, exit status 0, and the socket (systemd's, not the daemon's) is left in place.
            ActivatedDaemon.signal(pid, "TERM");
            assertEquals(0, d.awaitExit(1, Duration.ofSeconds(60)), d.stderr());
            assertTrue(d.notifications().stream().anyMatch(m -> m.lines().anyMatch("STOPPING=1"::equals)));
            assertTrue(Files.exists(d.socket()), "the daemon unlinked a socket it did not create");
            assertTrue(d.stderr().contains("SIGTERM: stopping, draining calls in flight"), d.stderr());
            assertTrue(d.stderr().contains("stopped"), "log lines after the listener stopped were lost:\n"
                    + d.stderr());

            // While no daemon runs, clients queue again; the next process serves them.
            List<Future<Map<String, Object>>> queued = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                queued.add(readers.submit(callOn(d.socket())));
            }
            long pid2 = d.startDaemon();
            d.awaitReady(3, START);
            for (Future<Map<String, Object>> f : queued) {
                assertEquals("enclave-kmsd", parameters(f.get(60, TimeUnit.SECONDS)).get("product"));
            }
            ActivatedDaemon.signal(pid2, "TERM");
            assertEquals(0, d.awaitExit(2, Duration.ofSeconds(60)), d.stderr());

            // Standard output carries the dev welcome text and nothing else (logs go to stderr).
            for (String line : d.stdout().lines().toList()) {
                assertTrue(line.isEmpty() || line.startsWith("enclave-kms is serving on ") || line.startsWith("  ")
                        || line.startsWith("Try, in another terminal:") || line.startsWith("Or: export "),
                        "unexpected line on stdout: " + line);
            }
        }
    }

    @Test
    void socketActivation_withoutAListeningSocket_failsToStartWithAClearMessage() throws Exception {
        Commands.Result r = Commands.run(List.of(DaemonProcess.REPO.resolve("bin/enclave-kmsd").toString(), "--dev",
                "--state-dir", dir.resolve("state").toString(), "--socket-activation"), Map.of(), new byte[0]);
        assertEquals(1, r.exit(), r.stderr());
        assertTrue(r.stderr().contains("standard input is not a listening Unix socket"), r.stderr());
    }

    /** Connects, sends GetInfo, returns the reply (however long the daemon takes to appear). */
    private static java.util.concurrent.Callable<Map<String, Object>> callOn(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        ch.connect(UnixDomainSocketAddress.of(socket));
        ch.write(ByteBuffer.wrap(GET_INFO));
        return () -> {
            try (ch) {
                FrameReader.Frame f = new FrameReader(Channels.newInputStream(ch), 1 << 20).next();
                if (!(f instanceof FrameReader.Frame.Text t)) {
                    throw new AssertionError("no reply: " + f);
                }
                return Json.parseObject(t.json());
            }
        };
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> parameters(Map<String, Object> reply) {
        return (Map<String, Object>) reply.get("parameters");
    }
}
