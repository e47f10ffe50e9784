package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Calls of an offloaded (device) interface: the daemon's lone call runs whole on its
 * connection's reader (on a machine with two or more carrier threads) and is answered from
 * there; a call with another pipelined behind it runs on a device worker; pipelined ones still
 * run together; and a call that hangs in the device is answered with an internal error after
 * the call timeout — recorded once as failed — while other connections go on being served (a
 * second lone call among them goes to a worker), and nothing of the hung call leaves later.
 */
@Timeout(60)
class VarlinkServerWorkerTest {
    private static final String T = "dev.enclavekms.test.Device";
    private static final String IDL = """
            interface dev.enclavekms.test.Device
            method Where(id: int) -> (id: int, thread: string)
            method Meet(id: int) -> (id: int, met: bool)
            method Hang(id: int) -> (id: int)
            error InvalidParameter (parameter: string, message: string)
            error InternalError (message: string)
            """;

    @TempDir
    Path dir;
    VarlinkServer server;
    VarlinkClient client;
    volatile CountDownLatch meeting;
    final CountDownLatch release = new CountDownLatch(1);
    final CountDownLatch hanging = new CountDownLatch(1);
    final AtomicInteger hungFinished = new AtomicInteger();
    final List<CallInterceptor.CompletedCall> seen = new CopyOnWriteArrayList<>();
    final List<String> recordedOn = new CopyOnWriteArrayList<>();
    /** What the call observer (the access log) was told: method and outcome. */
    final List<String> observed = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() throws Exception {
        VarlinkInterface i = VarlinkInterface.builder(T, IDL)
                .method("Where", call -> Map.of("id", call.parameters().integer("id", 0, 1000),
                        "thread", Thread.currentThread().getName()))
                .method("Meet", call -> {
                    meeting.countDown();
                    return Map.of("id", call.parameters().integer("id", 0, 1000),
                            "met", meeting.await(20, TimeUnit.SECONDS));
                })
                // A device call that hangs until the test lets it go.
                .method("Hang", call -> {
                    hanging.countDown();
                    release.await(50, TimeUnit.SECONDS);
                    hungFinished.incrementAndGet();
                    return Map.of("id", call.parameters().integer("id", 0, 1000));
                })
                .concurrent("Where", "Meet", "Hang")
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
                recordedOn.add(Thread.currentThread().getName());
            }
        };
        server = new VarlinkServer(new VarlinkServer.ServiceInfo("enclave-kms", "test", "0", "https://example.invalid"),
                List.of(i), ServerLimits.DEFAULT.withCallTimeout(Duration.ofSeconds(1)), T,
                (peer, method, error, nanos) -> observed.add(method + " " + (error == null ? "ok" : error)), recorder);
        server.bind(dir.resolve("s.sock"));
        client = VarlinkClient.connect(dir.resolve("s.sock"));
    }

    @AfterEach
    void stop() throws Exception {
        release.countDown();
        client.close();
        server.shutdown(Duration.ofSeconds(1));
    }

    private void send(String... methodAndIds) throws Exception {
        PipelinedCalls.send(client, T, methodAndIds);
    }

    /** Where the daemon's lone call runs: its reader (a virtual thread of the connection) or a worker. */
    private static final String LONE_THREAD = VarlinkServer.READER_RUNS_LONE_CALLS ? "varlink-conn-" : "varlink-worker-";

    @Test
    void aLoneCall_runsWholeOnOneThread_itsReader_andIsAnswered() throws Exception {
        for (long id = 1; id <= 3; id++) {
            Map<String, Object> r = client.call(T + ".Where", Map.of("id", id));
            assertEquals(id, r.get("id"));
            assertTrue(((String) r.get("thread")).startsWith(LONE_THREAD), r.toString());
        }
        assertEquals(3, seen.size(), "each call shown to the interceptor once: " + seen);
        // Recorded (the audit record) and answered by the same thread: no hand-off at all.
        assertTrue(recordedOn.stream().allMatch(n -> n.startsWith(LONE_THREAD)), recordedOn.toString());
    }

    @Test
    void aCallWithAnotherPipelinedBehindIt_runsOnAWorker_soTheReaderReadsOn() throws Exception {
        send("Where", "1", "Where", "2", "Where", "3"); // one write: the reader holds the later calls
        for (long id = 1; id <= 3; id++) {
            Map<String, Object> r = client.receiveRaw();
            @SuppressWarnings("unchecked")
            Map<String, Object> p = (Map<String, Object>) r.get("parameters");
            assertEquals(id, p.get("id"), r.toString());
            if (id < 3) {
                assertTrue(((String) p.get("thread")).startsWith("varlink-worker-"), r.toString());
            }
        }
    }

    @Test
    void whileALoneCallHangsOnItsReader_anotherConnectionsLoneCallRunsOnAWorker() throws Exception {
        send("Hang", "1");
        assertTrue(hanging.await(10, TimeUnit.SECONDS), "the hung call reached its handler");
        assertEquals(T + ".InternalError", client.receiveRaw().get("error"), "the hung call times out");
        // Answered, the hung call no longer counts as in flight, so the next call is the daemon's
        // lone call again; but the hung one still holds its reader's carrier, so this one must
        // not take a second: it runs on a worker.
        try (VarlinkClient other = VarlinkClient.connect(dir.resolve("s.sock"))) {
            Map<String, Object> r = other.call(T + ".Where", Map.of("id", 2L));
            assertEquals(2L, r.get("id"));
            assertTrue(((String) r.get("thread")).startsWith("varlink-worker-"), r.toString());
        }
    }

    @Test
    void pipelinedDeviceCalls_stillRunTogether_repliesInOrder() throws Exception {
        meeting = new CountDownLatch(3);
        send("Meet", "1", "Meet", "2", "Meet", "3");
        for (long id = 1; id <= 3; id++) {
            assertEquals(Map.of("id", id, "met", true), client.receiveRaw().get("parameters"));
        }
    }

    @Test
    void aHungDeviceCall_isAnsweredAfterTheCallTimeout_recordedOnceAsFailed_daemonServesOn() throws Exception {
        send("Hang", "1");
        Map<String, Object> timedOut = client.receiveRaw();
        assertEquals(T + ".InternalError", timedOut.get("error"), timedOut.toString());
        assertTrue(timedOut.toString().contains("did not finish within 1 s"), timedOut.toString());
        assertEquals(1, seen.size(), seen.toString());
        assertEquals(T + ".InternalError", seen.getFirst().error());
        assertEquals(T + ".Hang", seen.getFirst().method());

        try (VarlinkClient other = VarlinkClient.connect(dir.resolve("s.sock"))) {
            assertEquals(2L, other.call(T + ".Where", Map.of("id", 2L)).get("id"), "the daemon still serves");
        }
        release.countDown(); // the device finishes the hung call after its caller was told it failed
        Await.until("the hung call to finish on its worker", Duration.ofSeconds(10), () -> hungFinished.get() > 0);
        assertEquals(1, hungFinished.get());
        // Its late result is dropped: the next reply on its connection is the next call's own.
        assertEquals(3L, client.call(T + ".Where", Map.of("id", 3L)).get("id"), "its connection serves on");
        assertEquals(List.of(T + ".Hang", T + ".Where", T + ".Where"), seen.stream().map(c -> c.method()).toList(),
                "the hung call recorded once, as failed, and never again");
        assertEquals(List.of(T + ".Hang " + T + ".InternalError", T + ".Where ok", T + ".Where ok"), observed,
                "and reported to the observer once");
    }
}
