package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkClient;
import dev.enclavekms.varlink.VarlinkError;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pipelined device calls with an interceptor that records asynchronously, as the audit log's
 * group commit does ({@link CallInterceptor#completedThen}): one "appender" thread confirms
 * the records in batches, and the server answers each call from that thread without writing
 * to a socket there. Replies leave in order and only after their record is confirmed; a
 * refused record turns the reply into the refusal; and a client that never reads its replies
 * stalls neither the appender nor another connection's calls, nor a device worker.
 */
@Timeout(60)
class VarlinkServerAsyncRecordTest {
    private static final String T = "dev.enclavekms.test.Device";
    private static final String IDL = """
            interface dev.enclavekms.test.Device
            method Where(id: int) -> (id: int)
            method Big(id: int) -> (id: int, padding: string)
            method Huge(id: int) -> (id: int, padding: string)
            error InvalidParameter (parameter: string, message: string)
            error InternalError (message: string)
            error Refused (message: string)
            """;
    private static final String PADDING = "x".repeat(64 * 1024);
    /** More than a Unix socket's send buffer (≈ 208 KiB): its write blocks until the client reads. */
    private static final String HUGE_PADDING = "x".repeat(1024 * 1024);

    @TempDir
    Path dir;
    VarlinkServer server;
    VarlinkClient client;
    final List<VarlinkClient> others = new ArrayList<>();
    /** Records waiting for the appender: the call's id and what to tell the server. */
    final LinkedBlockingQueue<Map.Entry<Long, CallInterceptor.Recorded>> pending = new LinkedBlockingQueue<>();
    /** Ids whose record the appender confirmed (before it told the server). */
    final Set<Long> confirmed = ConcurrentHashMap.newKeySet();
    final List<String> answeredOn = new CopyOnWriteArrayList<>();
    /** Ids of the calls that ran whole (the daemon's lone call) and were recorded synchronously. */
    final Set<Long> recordedInline = ConcurrentHashMap.newKeySet();
    volatile boolean refuse;
    volatile long batches;
    Thread appender;

    @BeforeEach
    void start() throws Exception {
        VarlinkInterface i = VarlinkInterface.builder(T, IDL)
                .method("Where", call -> Map.of("id", call.parameters().integer("id", 0, 100_000)))
                .method("Big", call -> Map.of("id", call.parameters().integer("id", 0, 100_000), "padding", PADDING))
                .method("Huge", call -> Map.of("id", call.parameters().integer("id", 0, 100_000), "padding",
                        HUGE_PADDING))
                .concurrent("Where", "Big", "Huge")
                .errors(T + ".InvalidParameter", T + ".InternalError")
                .strictParameters()
                .offloaded()
                .build();
        CallInterceptor asyncRecorder = new CallInterceptor() {
            @Override
            public void admit(Peer peer, String method) {
            }

            @Override
            public void completed(CompletedCall call) throws VarlinkError {
                throw new AssertionError("a pipelined call must be recorded without waiting");
            }

            @Override
            public void completedThen(CompletedCall call, Recorded then) {
                pending.add(Map.entry((Long) call.parameters().get("id"), then));
            }
        };
        // The lone call runs whole and records synchronously; every call here is pipelined.
        appender = Thread.ofPlatform().name("test-appender").start(() -> {
            List<Map.Entry<Long, CallInterceptor.Recorded>> batch = new ArrayList<>();
            while (!Thread.currentThread().isInterrupted()) {
                try {
                    batch.add(pending.take());
                } catch (InterruptedException e) {
                    return;
                }
                pending.drainTo(batch); // a group commit: everything queued meanwhile
                batches++;
                for (var r : batch) {
                    if (refuse) {
                        r.getValue().answer(new VarlinkError(T + ".Refused", Map.of("message", "no record")));
                    } else {
                        confirmed.add(r.getKey());
                        r.getValue().answer(null);
                    }
                    answeredOn.add(Thread.currentThread().getName());
                }
                batch.clear();
            }
        });
        CallInterceptor lonesToo = new CallInterceptor() {
            @Override
            public void admit(Peer peer, String method) {
            }

            @Override
            public void completed(CompletedCall call) {
                // A call that found the daemon otherwise idle runs whole and is recorded as it is answered.
                recordedInline.add((Long) call.parameters().get("id"));
                confirmed.add((Long) call.parameters().get("id"));
            }

            @Override
            public void completedThen(CompletedCall call, Recorded then) {
                asyncRecorder.completedThen(call, then);
            }
        };
        server = new VarlinkServer(new VarlinkServer.ServiceInfo("enclave-kms", "test", "0", "https://example.invalid"),
                List.of(i), ServerLimits.DEFAULT, T, null, lonesToo);
        server.bind(dir.resolve("s.sock"));
        client = VarlinkClient.connect(dir.resolve("s.sock"));
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        for (VarlinkClient c : others) c.close();
        server.shutdown(Duration.ofSeconds(2));
        appender.interrupt();
        appender.join(5000);
    }

    private VarlinkClient another() throws IOException {
        VarlinkClient c = VarlinkClient.connect(dir.resolve("s.sock"));
        others.add(c);
        return c;
    }

    private static String[] calls(String method, int from, int n) {
        String[] ids = new String[2 * n];
        for (int k = 0; k < n; k++) {
            ids[2 * k] = method;
            ids[2 * k + 1] = Integer.toString(from + k);
        }
        return ids;
    }

    @Test
    void pipelinedCalls_answeredInOrder_eachOnlyOnceItsRecordIsConfirmed_neverWrittenByTheAppender()
            throws Exception {
        int n = 200;
        PipelinedCalls.send(client, T, calls("Where", 0, n));
        for (long k = 0; k < n; k++) {
            Map<String, Object> reply = client.receiveRaw();
            assertEquals(k, ((Map<?, ?>) reply.get("parameters")).get("id"), "in order: " + reply);
            assertTrue(confirmed.contains(k), "reply " + k + " left before its record was confirmed");
        }
        assertEquals(n, answeredOn.size() + recordedInline.size(), "each call recorded once");
        assertTrue(answeredOn.size() >= n / 2, "the pipelined calls were recorded asynchronously: " + answeredOn.size());
        assertTrue(batches < answeredOn.size(), "records shared confirmations: " + batches + " batches");
    }

    @Test
    void refusedRecords_turnEveryPipelinedReplyIntoTheRefusal_inOrder() throws Exception {
        refuse = true;
        int n = 50;
        PipelinedCalls.send(client, T, calls("Where", 1000, n));
        int refused = 0;
        for (int k = 0; k < n; k++) {
            Map<String, Object> reply = client.receiveRaw();
            if (reply.get("error") != null) {
                assertEquals(T + ".Refused", reply.get("error"), reply.toString());
                refused++;
            } else {
                // Only a call that ran whole (a lone call, recorded synchronously) is answered.
                assertTrue(recordedInline.contains(1000L + k), "a reply left although its record was refused: " + reply);
            }
        }
        // How many of the 50 run as the daemon's lone call (recorded inline) depends on how fast
        // the earlier ones finish: a fraction flaked (17 of 50 refused once). What must hold is
        // above; here only that the pipelined path was taken at all.
        assertTrue(refused > 0, refused + " refused");
        refuse = false;
        assertEquals(7L, client.call(T + ".Where", Map.of("id", 7L)).get("id"), "the connection serves on");
    }

    @Test
    void aClientThatNeverReads_stallsNeitherTheAppenderNorAnotherConnection() throws Exception {
        // 64 KiB replies, never read: the socket's buffer fills and the writer of this
        // connection blocks for good (until the idle timeout closes it).
        PipelinedCalls.send(client, T, calls("Big", 0, 200));
        Await.until("the stalled connection's calls to be recorded", Duration.ofSeconds(20),
                () -> confirmed.size() >= 16);
        VarlinkClient other = another();
        long before = batches;
        for (int round = 0; round < 5; round++) {
            int n = 40;
            PipelinedCalls.send(other, T, calls("Where", 10_000 + round * n, n));
            for (long k = 0; k < n; k++) {
                Map<String, Object> reply = other.receiveRaw();
                assertEquals(10_000L + round * n + k, ((Map<?, ?>) reply.get("parameters")).get("id"), reply.toString());
            }
        }
        // The appender confirmed those calls' records (how many of them ran as the daemon's
        // lone call, recorded inline, depends on timing; not all 200), and it is not stuck in
        // a socket write: it is back waiting for the next record.
        assertTrue(batches > before, "the appender confirmed more records");
        Await.until("the appender to wait for the next record", Duration.ofSeconds(10),
                () -> appender.getState() == Thread.State.WAITING);
    }

    @Test
    void loneCallsOfClientsThatNeverRead_holdNoDeviceWorker() throws Exception {
        // Each of these clients sends a call with a 1 MiB reply and a second call behind it in
        // one write, and never reads. The first is then the daemon's only call with another
        // buffered behind it, so it runs whole on a device worker; its reply does not fit in
        // the socket's buffer. Were it written there, the worker would block until the idle
        // timeout (5 minutes), and as many clients as workers would stall every device call.
        int workers = Math.max(4, Runtime.getRuntime().availableProcessors() * 2);
        for (int b = 0; b < workers + 1; b++) {
            long first = 30_000 + 10L * b;
            PipelinedCalls.send(another(), T, "Huge", Long.toString(first), "Where", Long.toString(first + 1));
            Await.until("the stalled client's calls to be recorded", Duration.ofSeconds(20),
                    () -> confirmed.contains(first) && confirmed.contains(first + 1));
        }
        // A client that reads: its pipelined calls need a device worker each.
        VarlinkClient good = another();
        int n = 2 * workers;
        PipelinedCalls.send(good, T, calls("Where", 40_000, n));
        for (long k = 0; k < n; k++) {
            Map<String, Object> reply = good.receiveRaw();
            assertEquals(40_000L + k, ((Map<?, ?>) reply.get("parameters")).get("id"), reply.toString());
        }
    }
}
