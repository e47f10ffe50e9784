package dev.enclavekms.system;

import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.audit.AuditPadding;
import dev.enclavekms.audit.CanonicalJson;
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
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SIGTERM while many clients call as fast as they can: every call either completes with
 * a whole reply or fails cleanly — the connection closes before any byte of its reply —
 * and the process exits with status 0. Then {@code bin/kmsctl audit verify}, with the
 * public key exported from the daemon before the load, finds the audit log intact and
 * ending with the signed {@code stop} checkpoint (so no record is torn, lost off its end,
 * or altered); each client's connection has exactly one {@code ok} Encrypt record per reply
 * it received and none for the call that failed; every completed call also has one whole
 * access-log line; and every ciphertext handed out decrypts after a restart, whose log
 * again verifies intact.
 *
 * <p>Each client sends its own context value, so that its records can be told apart: the
 * log shows the value only as an HMAC, which {@code Admin.AuditHmac} computes.
 */
class SigtermUnderLoadIT {
    private static final int CLIENTS = 16;
    private static final String ENCRYPT = "dev.enclavekms.Kms.Encrypt";
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
    void sigtermDuringConcurrentCalls_everyCallCompletesOrFailsCleanly_exitIsZero_auditIntactNoRecordLost()
            throws Exception {
        // --access-log: the access log is opt-in, and this test counts its lines.
        try (ActivatedDaemon d = ActivatedDaemon.listening(dir, "--access-log");
             ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            long pid = d.startDaemon();
            d.awaitReady(1, Duration.ofSeconds(120));
            Path auditDir = d.stateDir().resolve("audit");
            Path pem = dir.resolve("audit-public.pem");
            // Exported while the daemon runs, kept outside its state directory, as docs/audit.md says.
            kmsctl(d, "audit", "public-key", "--out", pem.toString()).requireSuccess();
            Map<String, Integer> clientByHmac = new HashMap<>();
            try (KmsClient kms = KmsClient.connect(d.socket())) {
                kms.createKey("load", "ENCRYPT", null, null, null);
                for (int i = 0; i < CLIENTS; i++) {
                    clientByHmac.put(kms.auditHmac(contextValue(i)), i);
                }
            }
            assertEquals(CLIENTS, clientByHmac.size(), "distinct context values, distinct HMACs");

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
            List<Tally> tallies = new ArrayList<>();
            for (Future<Tally> f : futures) {
                Tally t = f.get(30, TimeUnit.SECONDS);
                assertEquals(List.of(), t.problems);
                assertEquals(1, t.closedBeforeReply, "each client ends with exactly one call the daemon never ran");
                completed += t.completed;
                tallies.add(t);
            }

            // The audit log: intact, every checkpoint signature verified, and its end accounted
            // for by the stop checkpoint (exit 0, not 5) — nothing torn, nothing lost off the end.
            assertAuditIntactAndStopped(d, auditDir, pem, 1);
            List<Map<String, Object>> records = records(auditDir);
            assertEquals("start", records.getFirst().get("type"));
            assertEquals(null, records.getFirst().get("unclean_stop"), "a fresh log");
            Map<String, Object> last = records.getLast();
            assertEquals("checkpoint", last.get("type"));
            assertEquals("stop", last.get("reason"), "the last record of a SIGTERM'd daemon");

            // Every reply a client received has exactly one ok record on that client's connection;
            // the call that failed cleanly has none (nor any other record: the daemon never ran it).
            Map<Long, TreeSet<Integer>> clientsByConn = new TreeMap<>();
            Map<Integer, TreeSet<Long>> connsByClient = new TreeMap<>();
            Map<Integer, Integer> okByClient = new TreeMap<>();
            List<String> notOk = new ArrayList<>();
            for (Map<String, Object> r : records) {
                if (!"call".equals(r.get("type")) || !ENCRYPT.equals(r.get("method"))) continue;
                Integer client = r.get("context") instanceof Map<?, ?> ctx ? clientByHmac.get(ctx.get("client")) : null;
                assertNotNull(client, "an Encrypt record of no client: " + r);
                long conn = ((Number) r.get("conn")).longValue();
                clientsByConn.computeIfAbsent(conn, k -> new TreeSet<>()).add(client);
                connsByClient.computeIfAbsent(client, k -> new TreeSet<>()).add(conn);
                assertEquals("load", r.get("key"));
                assertEquals(null, r.get("stream"));
                if ("ok".equals(r.get("outcome"))) {
                    okByClient.merge(client, 1, Integer::sum);
                } else {
                    notOk.add("client " + client + ": " + r);
                }
            }
            assertEquals(List.of(), notOk, "records of calls whose clients got no error reply");
            for (Map.Entry<Long, TreeSet<Integer>> e : clientsByConn.entrySet()) {
                assertEquals(1, e.getValue().size(), "connection " + e.getKey() + " carries the records of " + e.getValue());
            }
            long auditedOk = 0;
            for (int i = 0; i < CLIENTS; i++) {
                Tally t = tallies.get(i);
                assertEquals(1, connsByClient.getOrDefault(i, new TreeSet<>()).size(),
                        "client " + i + " used one connection: " + connsByClient.get(i));
                assertEquals(t.completed, okByClient.getOrDefault(i, 0),
                        "client " + i + ": replies received vs. ok records on its connection");
                auditedOk += okByClient.getOrDefault(i, 0);
            }
            assertEquals(completed, auditedOk);

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
            int decrypted = 0;
            try (KmsClient kms = KmsClient.connect(d.socket())) {
                for (int i = 0; i < CLIENTS; i++) {
                    Tally t = tallies.get(i);
                    for (int n = 0; n < t.ciphertexts.size(); n++) {
                        assertArrayEquals(t.plaintexts.get(n),
                                kms.decrypt(t.ciphertexts.get(n), Map.of("client", contextValue(i))).plaintext());
                        decrypted++;
                    }
                }
            }
            ActivatedDaemon.signal(pid2, "TERM");
            assertEquals(0, d.awaitExit(2, Duration.ofSeconds(60)));

            // The second run continued the same chain, found the first run's stop, and stopped cleanly too.
            assertAuditIntactAndStopped(d, auditDir, pem, 2);
            List<Map<String, Object>> after = records(auditDir);
            assertEquals(records, after.subList(0, records.size()), "the first run's records, unchanged");
            Map<String, Object> secondStart = after.get(records.size());
            assertEquals("start", secondStart.get("type"));
            assertEquals(null, secondStart.get("unclean_stop"), "the first run ended with its stop checkpoint");
            assertEquals(decrypted, after.stream().filter(r -> "dev.enclavekms.Kms.Decrypt".equals(r.get("method"))
                    && "ok".equals(r.get("outcome"))).count());
            assertEquals("stop", after.getLast().get("reason"));
        }
    }

    private static String contextValue(int client) {
        return "client-" + client;
    }

    private static Commands.Result kmsctl(ActivatedDaemon d, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Commands.repoFile("bin/kmsctl").toString(), "--socket",
                d.socket().toString()));
        cmd.addAll(List.of(args));
        return Commands.run(cmd, Map.of(), null);
    }

    /**
     * {@code kmsctl audit verify --public-key PEM DIR}: exit 0 and INTACT — every line a whole
     * canonical record, the chain unbroken, every signature verified and the log ending with a
     * stop checkpoint — and, from the JSON report, {@code stopped} and {@code runs} stop
     * checkpoints signed.
     */
    private static void assertAuditIntactAndStopped(ActivatedDaemon d, Path auditDir, Path pem, int runs)
            throws Exception {
        Commands.Result text = kmsctl(d, "audit", "verify", "--public-key", pem.toString(), auditDir.toString());
        assertEquals(0, text.exit(), "audit verify: " + text.stdout() + text.stderr());
        assertTrue(text.stdout().startsWith("result:") && text.stdout().lines().findFirst().orElseThrow().endsWith("INTACT"),
                text.stdout());
        Commands.Result json = kmsctl(d, "--json", "audit", "verify", "--public-key", pem.toString(), auditDir.toString());
        assertEquals(0, json.exit(), json.stdout() + json.stderr());
        Map<String, Object> report = Json.parseObject(json.stdout());
        assertEquals("INTACT", report.get("status"), json.stdout());
        assertEquals(true, report.get("stopped"), json.stdout());
        assertEquals(0L, ((Number) report.get("uncovered_records")).longValue(), json.stdout());
        long checkpoints = ((Number) report.get("checkpoints")).longValue();
        assertTrue(checkpoints >= runs, json.stdout());
        assertEquals(checkpoints, ((Number) report.get("signatures_verified")).longValue(), json.stdout());
        try (var files = Files.list(auditDir)) {
            List<String> torn = files.map(p -> p.getFileName().toString()).filter(n -> n.contains(".torn-")).toList();
            assertEquals(List.of(), torn, "no torn line was cut off at a start");
        }
        assertEquals(runs, records(auditDir).stream().filter(r -> "stop".equals(r.get("reason"))).count());
    }

    private static List<Map<String, Object>> records(Path auditDir) throws Exception {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Path f : AuditLog.logFiles(auditDir)) {
            for (String line : AuditPadding.lines(f)) { // a running daemon's file ends in zero padding
                out.add(CanonicalJson.parseCanonical(line));
            }
        }
        return out;
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
                        "parameters", Map.of("key", "load", "plaintext", Base64.getEncoder().encodeToString(plaintext),
                                "context", Map.of("client", contextValue(client))))));
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
