package dev.enclavekms.system;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.json.Json;
import dev.enclavekms.varlink.FrameReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SIGTERM while many clients call as fast as they can: every call either completes with
 * a whole reply or fails cleanly — the connection closes before any byte of its reply —
 * the process exits with status 0, every completed call has exactly one whole log line
 * (the stand-in for its audit record until the audit log exists), and every ciphertext
 * handed out decrypts after a restart.
 */
class SigtermUnderLoadIT {
    private static final int CLIENTS = 16;
    private static final Pattern LOG_LINE = Pattern.compile(
            "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z (ERROR|WARN |INFO |DEBUG) [A-Za-z0-9]+: .*");

    @TempDir
    Path dir;

    /** How one client's calls went. */
    static final class Tally {
        int completed;
        int closedBeforeReply;
        final List<String> problems = new ArrayList<>();
        final List<byte[]> ciphertexts = new ArrayList<>();
        final List<byte[]> plaintexts = new ArrayList<>();
    }

    @Test
    void sigtermDuringConcurrentCalls_everyCallCompletesOrFailsCleanly_exitIsZero_noLogLineLost() throws Exception {
        try (ActivatedDaemon d = ActivatedDaemon.listening(dir);
             ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            long pid = d.startDaemon();
            d.awaitReady(1, Duration.ofSeconds(120));
            try (KmsClient kms = KmsClient.connect(d.socket())) {
                kms.createKey("load", "ENCRYPT", null, null, null);
            }

            AtomicInteger totalCompleted = new AtomicInteger();
            List<Future<Tally>> futures = new ArrayList<>();
            for (int i = 0; i < CLIENTS; i++) {
                int client = i;
                futures.add(clients.submit(() -> encryptUntilClosed(d.socket(), client, totalCompleted)));
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (totalCompleted.get() < CLIENTS * 20) {
                assertTrue(System.nanoTime() < deadline, "the load never got going");
                java.util.concurrent.locks.LockSupport.parkNanos(Duration.ofMillis(10).toNanos());
                for (Future<Tally> f : futures) {
                    if (f.isDone()) f.get(); // surface a client that failed early
                }
            }

            ActivatedDaemon.signal(pid, "TERM");
            assertEquals(0, d.awaitExit(1, Duration.ofSeconds(60)), d.stderr());

            int completed = 0;
            List<byte[]> ciphertexts = new ArrayList<>();
            List<byte[]> plaintexts = new ArrayList<>();
            for (Future<Tally> f : futures) {
                Tally t = f.get(30, TimeUnit.SECONDS);
                assertEquals(List.of(), t.problems);
                assertEquals(1, t.closedBeforeReply, "each client ends with exactly one call the daemon never ran");
                completed += t.completed;
                ciphertexts.addAll(t.ciphertexts);
                plaintexts.addAll(t.plaintexts);
            }

            // One whole log line per completed Encrypt; nothing torn, nothing foreign on stderr.
            String stderr = d.stderr();
            long logged = 0;
            for (String line : stderr.lines().toList()) {
                if (line.startsWith("enclave-kms: ")) continue; // the launcher script's own messages
                assertTrue(LOG_LINE.matcher(line).matches(), "not a whole log line: " + line);
                if (line.contains(" access: dev.enclavekms.Kms.Encrypt by ") && line.contains(" -> ok in ")) logged++;
            }
            assertEquals(completed, logged, "completed calls vs. access-log lines");

            // Everything handed out stays decryptable: the next process (same socket) decrypts it all.
            long pid2 = d.startDaemon();
            d.awaitReady(2, Duration.ofSeconds(120));
            try (KmsClient kms = KmsClient.connect(d.socket())) {
                for (int i = 0; i < ciphertexts.size(); i++) {
                    assertArrayEquals(plaintexts.get(i), kms.decrypt(ciphertexts.get(i), Map.of()).plaintext());
                }
            }
            ActivatedDaemon.signal(pid2, "TERM");
            assertEquals(0, d.awaitExit(2, Duration.ofSeconds(60)));
        }
    }

    /** Calls Encrypt on one connection, one call at a time, until the daemon closes it. */
    private static Tally encryptUntilClosed(Path socket, int client, AtomicInteger totalCompleted) throws IOException {
        Tally t = new Tally();
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            InputStream in = new java.io.BufferedInputStream(Channels.newInputStream(ch));
            for (int n = 0; ; n++) {
                byte[] plaintext = ("client " + client + " call " + n).getBytes();
                byte[] call = FrameReader.encode(Json.write(Map.of("method", "dev.enclavekms.Kms.Encrypt",
                        "parameters", Map.of("key", "load", "plaintext", Base64.getEncoder().encodeToString(plaintext)))));
                try {
                    ch.write(ByteBuffer.wrap(call));
                } catch (IOException closed) {
                    t.closedBeforeReply++;
                    return t;
                }
                ByteArrayReply reply = readReply(in);
                switch (reply) {
                    case ByteArrayReply.Closed c -> {
                        t.closedBeforeReply++;
                        return t;
                    }
                    case ByteArrayReply.Torn torn -> {
                        t.problems.add("torn reply after " + torn.bytes() + " bytes");
                        return t;
                    }
                    case ByteArrayReply.Whole w -> {
                        Map<String, Object> m = Json.parseObject(w.json());
                        if (m.get("parameters") instanceof Map<?, ?> p && p.get("ciphertext") instanceof String ct) {
                            t.completed++;
                            t.ciphertexts.add(Base64.getDecoder().decode(ct));
                            t.plaintexts.add(plaintext);
                            totalCompleted.incrementAndGet();
                        } else {
                            t.problems.add("unexpected reply: " + w.json());
                            return t;
                        }
                    }
                }
            }
        } catch (dev.enclavekms.json.JsonException e) {
            t.problems.add("malformed reply: " + e.getMessage());
            return t;
        }
    }

    sealed interface ByteArrayReply {
        record Whole(String json) implements ByteArrayReply { }
        record Closed() implements ByteArrayReply { }
        record Torn(int bytes) implements ByteArrayReply { }
    }

    /** Reads up to the NUL that ends a reply, telling "closed before any byte" from "closed mid-reply". */
    private static ByteArrayReply readReply(InputStream in) {
        java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
        try {
            for (int b; (b = in.read()) != -1; ) {
                if (b == 0) {
                    return new ByteArrayReply.Whole(buf.toString(java.nio.charset.StandardCharsets.UTF_8));
                }
                buf.write(b);
            }
        } catch (IOException reset) {
            // connection reset: same as end of stream below
        }
        return buf.size() == 0 ? new ByteArrayReply.Closed() : new ByteArrayReply.Torn(buf.size());
    }
}
