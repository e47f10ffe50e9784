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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Pipelined calls on one connection: calls of concurrent methods run at the same time (at
 * most {@link VarlinkServer#MAX_CALLS_IN_FLIGHT}), replies leave in the order the calls came,
 * and any other call runs alone, after the calls before it and before the calls after it.
 * Every check waits on what the handlers saw, not on timing, except where a handler waits
 * for something that must never happen (a bounded wait that a correct server never ends).
 */
@Timeout(60)
class VarlinkServerConcurrencyTest {
    private static final String T = "dev.enclavekms.test.Pipelined";
    private static final String IDL = """
            interface dev.enclavekms.test.Pipelined
            method Meet(id: int) -> (id: int, met: bool)
            method Wait(id: int) -> (id: int)
            method Overtake(id: int) -> (id: int)
            method Crowd(id: int) -> (id: int)
            method Alone(id: int) -> (id: int, others: int)
            error InvalidParameter (parameter: string, message: string)
            error InternalError (message: string)
            """;

    @TempDir
    Path dir;
    VarlinkServer server;
    VarlinkClient client;
    volatile CountDownLatch meeting;
    final CountDownLatch overtaken = new CountDownLatch(1);
    final AtomicInteger running = new AtomicInteger();
    final AtomicInteger mostAtOnce = new AtomicInteger();
    final CountDownLatch crowdFull = new CountDownLatch(1);

    @BeforeEach
    void start() throws Exception {
        VarlinkInterface i = VarlinkInterface.builder(T, IDL)
                // Each call waits until all of the meeting have arrived: only possible if they run together.
                .method("Meet", call -> {
                    meeting.countDown();
                    boolean met = meeting.await(20, TimeUnit.SECONDS);
                    return Map.of("id", call.parameters().integer("id", 0, 1000), "met", met);
                })
                // Call 1 finishes only after call 2 has finished: its reply must still go first.
                .method("Wait", call -> {
                    overtaken.await(20, TimeUnit.SECONDS);
                    return Map.of("id", call.parameters().integer("id", 0, 1000));
                })
                .method("Overtake", call -> {
                    overtaken.countDown();
                    return Map.of("id", call.parameters().integer("id", 0, 1000));
                })
                .method("Crowd", call -> {
                    int now = running.incrementAndGet();
                    mostAtOnce.accumulateAndGet(now, Math::max);
                    if (now >= VarlinkServer.MAX_CALLS_IN_FLIGHT) crowdFull.countDown();
                    crowdFull.await(2, TimeUnit.SECONDS);
                    Thread.sleep(5);
                    running.decrementAndGet();
                    return Map.of("id", call.parameters().integer("id", 0, 1000));
                })
                // Not concurrent: counts the calls running beside it (a correct server: none).
                .method("Alone", call -> {
                    int others = running.get();
                    Thread.sleep(50);
                    others = Math.max(others, running.get());
                    return Map.of("id", call.parameters().integer("id", 0, 1000), "others", (long) others);
                })
                .concurrent("Meet", "Wait", "Overtake", "Crowd")
                .errors(T + ".InvalidParameter", T + ".InternalError")
                .strictParameters()
                .build();
        server = new VarlinkServer(new VarlinkServer.ServiceInfo("enclave-kms", "test", "0", "https://example.invalid"),
                List.of(i), ServerLimits.DEFAULT, T, null);
        server.bind(dir.resolve("s.sock"));
        client = VarlinkClient.connect(dir.resolve("s.sock"));
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        server.shutdown(Duration.ofSeconds(1));
    }

    private void send(String... methodAndIds) throws Exception {
        PipelinedCalls.send(client, T, methodAndIds);
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> reply() throws Exception {
        return (Map<String, Object>) client.receiveRaw().get("parameters");
    }

    @Test
    void pipelinedConcurrentCalls_runTogether_repliesInOrder() throws Exception {
        meeting = new CountDownLatch(4);
        send("Meet", "1", "Meet", "2", "Meet", "3", "Meet", "4");
        for (long id = 1; id <= 4; id++) {
            assertEquals(Map.of("id", id, "met", true), reply());
        }
    }

    @Test
    void aLaterCallThatFinishesFirst_waitsForTheEarlierReply() throws Exception {
        send("Wait", "1", "Overtake", "2");
        assertEquals(Map.of("id", 1L), reply());
        assertEquals(Map.of("id", 2L), reply());
    }

    @Test
    void callsInFlightPerConnection_bounded() throws Exception {
        String[] calls = new String[2 * 40];
        for (int k = 0; k < 40; k++) {
            calls[2 * k] = "Crowd";
            calls[2 * k + 1] = String.valueOf(k);
        }
        send(calls);
        for (long id = 0; id < 40; id++) {
            assertEquals(Map.of("id", id), reply());
        }
        assertEquals(VarlinkServer.MAX_CALLS_IN_FLIGHT, mostAtOnce.get());
    }

    @Test
    void aCallOfAnotherMethod_runsAloneBetweenTheCallsAroundIt() throws Exception {
        String[] calls = new String[2 * 17];
        for (int k = 0; k < 8; k++) {
            calls[2 * k] = "Crowd";
            calls[2 * k + 1] = String.valueOf(k);
        }
        calls[16] = "Alone";
        calls[17] = "8";
        for (int k = 9; k < 17; k++) {
            calls[2 * k] = "Crowd";
            calls[2 * k + 1] = String.valueOf(k);
        }
        send(calls);
        for (long id = 0; id < 17; id++) {
            Map<String, Object> r = reply();
            assertEquals(id, r.get("id"));
            if (id == 8) assertEquals(0L, r.get("others"), "Alone ran beside other calls of its connection");
        }
    }

    @Test
    void separateConnections_stillServedWhileOneConnectionHasCallsInFlight() throws Exception {
        meeting = new CountDownLatch(2);
        send("Meet", "1");
        try (VarlinkClient other = VarlinkClient.connect(dir.resolve("s.sock"))) {
            assertEquals(Map.of("id", 2L, "met", true), other.call(T + ".Meet", Map.of("id", 2L)));
        }
        assertEquals(Map.of("id", 1L, "met", true), reply());
    }
}
