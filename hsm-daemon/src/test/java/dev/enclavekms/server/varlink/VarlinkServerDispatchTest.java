package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkClient;
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
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pipelined device calls on the concurrent path: the first half of a call (dispatch and the
 * device call) runs on a device worker, the second (the interceptor's record and the reply)
 * on a call thread, so a worker never waits for the audit log or a client's socket. Replies
 * still leave in order per connection — also when many finish together and leave in one
 * write — a hung pipelined call is still answered after the call timeout, and shutdown still
 * answers the calls in flight before it closes their connection.
 */
@Timeout(60)
class VarlinkServerDispatchTest {
    private static final String T = "dev.enclavekms.test.Device";
    private static final String IDL = """
            interface dev.enclavekms.test.Device
            method Where(id: int) -> (id: int, thread: string)
            method Meet(id: int) -> (id: int, thread: string)
            method Hang(id: int) -> (id: int)
            method Hold(id: int) -> (id: int)
            error InvalidParameter (parameter: string, message: string)
            error InternalError (message: string)
            """;

    @TempDir
    Path dir;
    VarlinkServer server;
    VarlinkClient client;
    volatile CountDownLatch meeting;
    final CountDownLatch release = new CountDownLatch(1);
    final CountDownLatch hold = new CountDownLatch(1);
    final AtomicInteger holding = new AtomicInteger();
    final AtomicInteger hungFinished = new AtomicInteger();
    final List<CallInterceptor.CompletedCall> seen = new CopyOnWriteArrayList<>();
    /** Method, then the thread the interceptor saw it on. */
    final List<String> recordedOn = new CopyOnWriteArrayList<>();
    final List<VarlinkClient> others = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        VarlinkInterface i = VarlinkInterface.builder(T, IDL)
                .method("Where", call -> Map.of("id", call.parameters().integer("id", 0, 100_000),
                        "thread", Thread.currentThread().getName()))
                .method("Meet", call -> {
                    meeting.countDown();
                    assertTrue(meeting.await(20, TimeUnit.SECONDS), "the pipelined calls ran together");
                    return Map.of("id", call.parameters().integer("id", 0, 1000), "thread",
                            Thread.currentThread().getName());
                })
                .method("Hang", call -> {
                    release.await(50, TimeUnit.SECONDS);
                    hungFinished.incrementAndGet();
                    return Map.of("id", call.parameters().integer("id", 0, 1000));
                })
                .method("Hold", call -> {
                    holding.incrementAndGet();
                    hold.await(50, TimeUnit.SECONDS);
                    return Map.of("id", call.parameters().integer("id", 0, 1000));
                })
                .concurrent("Where", "Meet", "Hang", "Hold")
                .errors(T + ".InvalidParameter", T + ".InternalError")
                .strictParameters()
                .offloaded()
                .build();
        CallInterceptor recorder = new CallInterceptor() {
            @Override
            public void admit(Peer peer, String method) {
            }

            @Override
            public void completed(CompletedCall call) {
                seen.add(call);
                recordedOn.add(call.method() + " " + Thread.currentThread().getName());
            }
        };
        server = new VarlinkServer(new VarlinkServer.ServiceInfo("enclave-kms", "test", "0", "https://example.invalid"),
                List.of(i), ServerLimits.DEFAULT.withCallTimeout(Duration.ofSeconds(1)), T, null, recorder);
        server.bind(dir.resolve("s.sock"));
        client = VarlinkClient.connect(dir.resolve("s.sock"));
    }

    @AfterEach
    void stop() throws Exception {
        release.countDown();
        hold.countDown();
        client.close();
        for (VarlinkClient c : others) c.close();
        server.shutdown(Duration.ofSeconds(1));
    }

    private VarlinkClient another() throws IOException {
        VarlinkClient c = VarlinkClient.connect(dir.resolve("s.sock"));
        others.add(c);
        return c;
    }

    @Test
    void pipelinedDeviceCalls_runOnWorkers_recordedAndAnsweredOffThem() throws Exception {
        meeting = new CountDownLatch(3);
        PipelinedCalls.send(client, T, "Meet", "1", "Meet", "2", "Meet", "3");
        for (long id = 1; id <= 3; id++) {
            Map<String, Object> p = (Map<String, Object>) client.receiveRaw().get("parameters");
            assertEquals(id, p.get("id"));
            assertTrue(((String) p.get("thread")).startsWith("varlink-worker-"), "the device part on a worker: " + p);
        }
        // The first call found the daemon idle and ran whole on its worker; the two that
        // arrived while it ran were recorded (and answered) on call threads.
        assertEquals(3, recordedOn.size(), recordedOn.toString());
        long offWorkers = recordedOn.stream().filter(r -> !r.contains("varlink-worker-")).count();
        assertTrue(offWorkers >= 2, "the record of a pipelined call is not written on a worker: " + recordedOn);
    }

    @Test
    void manyPipelinedCalls_onSeveralConnections_answeredInOrder() throws Exception {
        List<VarlinkClient> clients = List.of(client, another(), another(), another());
        int calls = 300;
        for (VarlinkClient c : clients) {
            String[] ids = new String[2 * calls];
            for (int k = 0; k < calls; k++) {
                ids[2 * k] = "Where";
                ids[2 * k + 1] = Integer.toString(k);
            }
            PipelinedCalls.send(c, T, ids);
        }
        for (VarlinkClient c : clients) {
            for (long k = 0; k < calls; k++) {
                Map<String, Object> reply = c.receiveRaw();
                assertEquals(k, ((Map<?, ?>) reply.get("parameters")).get("id"), "in order: " + reply);
            }
        }
        assertEquals(4 * calls, seen.size(), "each call recorded once");
    }

    @Test
    void hungPipelinedCalls_areAnsweredInOrderAfterTheCallTimeout_otherConnectionsServed() throws Exception {
        // The first runs whole on a worker (the daemon was idle), the second on the concurrent path.
        PipelinedCalls.send(client, T, "Hang", "1", "Hang", "2");
        VarlinkClient other = another();
        assertEquals(7L, other.call(T + ".Where", Map.of("id", 7L)).get("id"), "another connection is served meanwhile");
        for (int k = 0; k < 2; k++) {
            Map<String, Object> timedOut = client.receiveRaw();
            assertEquals(T + ".InternalError", timedOut.get("error"), timedOut.toString());
            assertTrue(timedOut.toString().contains("did not finish within 1 s"), timedOut.toString());
        }
        assertEquals(2, seen.stream().filter(c -> c.method().equals(T + ".Hang")).count(), seen.toString());
        assertTrue(seen.stream().filter(c -> c.method().equals(T + ".Hang")).allMatch(c -> c.error() != null));

        release.countDown(); // the device finishes both after their caller was told they failed
        Await.until("the hung calls to finish on their workers", Duration.ofSeconds(10), () -> hungFinished.get() == 2);
        // Their late results are dropped: the next reply on the connection is the next call's own.
        assertEquals(3L, client.call(T + ".Where", Map.of("id", 3L)).get("id"));
        assertEquals(2, seen.stream().filter(c -> c.method().equals(T + ".Hang")).count(),
                "each hung call recorded once, as failed, and never again");
    }

    @Test
    void shutdown_answersThePipelinedCallsInFlight_thenCloses() throws Exception {
        PipelinedCalls.send(client, T, "Hold", "1", "Hold", "2", "Hold", "3");
        Await.until("the three calls to run", Duration.ofSeconds(10), () -> holding.get() == 3);
        Thread stopper = Thread.ofPlatform().start(() -> server.shutdown(Duration.ofSeconds(20)));
        stopper.join(Duration.ofMillis(200)); // long enough for a shutdown that did not wait to end
        assertTrue(stopper.isAlive(), "shutdown waits for the calls in flight");
        hold.countDown();
        for (long id = 1; id <= 3; id++) {
            Map<String, Object> reply = client.receiveRaw();
            assertEquals(id, ((Map<?, ?>) reply.get("parameters")).get("id"), "answered in order: " + reply);
        }
        stopper.join(10_000);
        assertFalse(stopper.isAlive(), "shutdown ends once they are answered");
        assertThrows(IOException.class, client::receiveRaw, "then the connection is closed");
        assertEquals(3, seen.size(), "each recorded: " + seen);
    }

    @Test
    void aClientThatLeavesWithCallsInFlight_isForgottenOnceTheyEnd() throws Exception {
        PipelinedCalls.send(client, T, "Hold", "1", "Hold", "2", "Hang", "3");
        Await.until("the calls to run", Duration.ofSeconds(10), () -> holding.get() == 2);
        client.close();
        hold.countDown(); // their replies find the client gone; the hung one is timed out later
        Await.until("the connection to be forgotten", Duration.ofSeconds(20), () -> server.connectionCount() == 0);
        VarlinkClient next = another();
        assertEquals(4L, next.call(T + ".Where", Map.of("id", 4L)).get("id"), "the daemon serves on");
    }
}
