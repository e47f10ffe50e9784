package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkClient;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Which JDK poller the readers of a real server wait in. The JDK reads its setting once per
 * JVM, at the first socket wait of a virtual thread, and the tests of this module share one
 * JVM, so each case runs a server in a fresh JVM ({@link Serve}) and looks at its threads:
 * a platform "Read-Poller" thread for mode 1, a "MasterPoller" thread for the JDK's
 * default (virtual-thread pollers).
 */
class VarlinkServerPollerTest {
    @TempDir
    Path dir;

    @Test
    void readersWaitInAPlatformPollerThread() throws Exception {
        String threads = serveInFreshJvm(List.of());
        assertTrue(threads.contains("Read-Poller"), "a platform read poller: " + threads);
        assertFalse(threads.contains("MasterPoller"), "no virtual-thread pollers behind a master: " + threads);
    }

    @Test
    void anExplicitPollerModeWins() throws Exception {
        String threads = serveInFreshJvm(List.of("-D" + VarlinkServer.POLLER_MODE + "=2"));
        assertTrue(threads.contains("MasterPoller"), "the operator's choice is kept: " + threads);
    }

    private String serveInFreshJvm(List<String> jvmOptions) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Serve.class.getName(),
                dir.resolve("poller.sock").toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the server JVM finishes");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        return out.lines().filter(l -> l.startsWith("threads: ")).findFirst().orElseThrow(() -> new AssertionError(out));
    }

    /** Serves two calls, apart, on a real socket, then prints the names of the JVM's platform threads. */
    static final class Serve {
        public static void main(String[] args) throws Exception {
            Path socket = Path.of(args[0]);
            VarlinkServer server = new VarlinkServer(new VarlinkServer.ServiceInfo("enclave-kms", "poller test", "0.1",
                    "https://example.invalid"), List.of(), new ServerLimits(64 * 1024, 16, Duration.ofSeconds(30), 32), VarlinkServer.SERVICE_INTERFACE, null);
            server.bind(socket);
            try (VarlinkClient client = VarlinkClient.connect(socket)) {
                for (int i = 0; i < 2; i++) {
                    Map<String, Object> info = client.call(VarlinkServer.SERVICE_INTERFACE + ".GetInfo", Map.of());
                    if (!"poller test".equals(info.get("product"))) throw new IllegalStateException("unexpected reply " + info);
                    Thread.sleep(200); // the reader now waits in the poller for the next call
                }
                TreeSet<String> names = new TreeSet<>();
                for (Thread t : Thread.getAllStackTraces().keySet()) names.add(t.getName());
                System.out.println("threads: " + names);
            } finally {
                server.shutdown(Duration.ofSeconds(1));
            }
        }
    }
}
