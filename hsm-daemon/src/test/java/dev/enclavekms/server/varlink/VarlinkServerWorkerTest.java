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
 * Calls of an offloaded (device) interface: a connection's lone call runs whole on a device
 * worker and is answered from there; pipelined ones still run together; and a call that hangs
 * in the device is answered with an internal error after the call timeout — recorded once as
 * failed — while the connection goes on serving, and nothing of the hung call leaves later.
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

    @Test
    void aLoneCall_runsWholeOnADeviceWorker_andIsAnswered() throws Exception {
        for (long id = 1; id <= 3; id++) {
            Map<String, Object> r = client.call(T + ".Where", Map.of("id", id));
            assertEquals(id, r.get("id"));
            assertTrue(((String) r.get("thread")).startsWith("varlink-worker-"), r.toString());
        }
        assertEquals(3, seen.size(), "each call shown to the interceptor once: " + seen);
        // Recorded (the audit record) and answered by the worker too: no hand-off back to a call thread.
        assertTrue(recordedOn.stream().allMatch(n -> n.startsWith("varlink-worker-")), recordedOn.toString());
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
    void aHungDeviceCall_isAnsweredAfterTheCallTimeout_recordedOnceAsFailed_connectionServesOn() throws Exception {
        send("Hang", "1");
        Map<String, Object> timedOut = client.receiveRaw();
        assertEquals(T + ".InternalError", timedOut.get("error"), timedOut.toString());
        assertTrue(timedOut.toString().contains("did not finish within 1 s"), timedOut.toString());
        assertEquals(1, seen.size(), seen.toString());
        assertEquals(T + ".InternalError", seen.getFirst().error());
        assertEquals(T + ".Hang", seen.getFirst().method());

        assertEquals(2L, client.call(T + ".Where", Map.of("id", 2L)).get("id"), "the connection still serves");
        release.countDown(); // the device finishes the hung call after its caller was told it failed
        Await.until("the hung call to finish on its worker", Duration.ofSeconds(10), () -> hungFinished.get() > 0);
        assertEquals(1, hungFinished.get());
        // Its late result is dropped: the next reply on the connection is the next call's own.
        assertEquals(3L, client.call(T + ".Where", Map.of("id", 3L)).get("id"));
        assertEquals(List.of(T + ".Hang", T + ".Where", T + ".Where"), seen.stream().map(c -> c.method()).toList(),
                "the hung call recorded once, as failed, and never again");
        assertEquals(List.of(T + ".Hang " + T + ".InternalError", T + ".Where ok", T + ".Where ok"), observed,
                "and reported to the observer once");
    }
}
