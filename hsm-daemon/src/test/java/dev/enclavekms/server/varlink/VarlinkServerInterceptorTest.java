package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkClient;
import dev.enclavekms.varlink.VarlinkError;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The audit seam of {@link VarlinkServer}: what {@link CallInterceptor} is shown, when
 * (before anything is written to the caller), and that its refusals replace the reply.
 */
@Timeout(30)
class VarlinkServerInterceptorTest {
    private static final String T = "dev.enclavekms.test.Audited";
    private static final String IDL = """
            interface dev.enclavekms.test.Audited
            method Echo(text: string) -> (text: string)
            method Login(id: string) -> ()
            method Count(n: int) -> (i: int)
            method CountThenFail(n: int) -> (i: int)
            error InvalidParameter (parameter: string, message: string)
            error InternalError (message: string)
            error Refused (message: string)
            """;

    @TempDir
    Path dir;
    VarlinkServer server;
    VarlinkClient client;
    final List<CallInterceptor.CompletedCall> shown = new CopyOnWriteArrayList<>();
    final AtomicInteger handled = new AtomicInteger();
    volatile VarlinkError refuseAdmission;
    volatile VarlinkError refuseCompletion;
    volatile CountDownLatch entered;
    volatile CountDownLatch release;

    @BeforeEach
    void start() throws Exception {
        VarlinkInterface audited = VarlinkInterface.builder(T, IDL)
                .method("Echo", call -> {
                    handled.incrementAndGet();
                    return Map.of("text", call.parameters().string("text", 100));
                })
                .method("Login", call -> {
                    call.session().put("audit.token_id", call.parameters().string("id", 100));
                    return Map.of();
                })
                .method("Count", call -> {
                    long n = call.parameters().integer("n", 1, 10);
                    for (long i = 1; i < n; i++) call.replyMore(Map.of("i", i));
                    return Map.of("i", n);
                })
                .method("CountThenFail", call -> {
                    call.replyMore(Map.of("i", 1L));
                    throw new VarlinkError(T + ".Refused", Map.of("message", "stream broke"));
                })
                .errors(T + ".InvalidParameter", T + ".InternalError")
                .strictParameters()
                .build();
        CallInterceptor interceptor = new CallInterceptor() {
            @Override
            public void admit(Peer peer, String method) throws VarlinkError {
                if (refuseAdmission != null) throw refuseAdmission;
            }

            @Override
            public void completed(CompletedCall call) throws VarlinkError {
                shown.add(call);
                if (entered != null) {
                    entered.countDown();
                    try {
                        release.await(10, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                if (refuseCompletion != null) throw refuseCompletion;
            }
        };
        server = new VarlinkServer(new VarlinkServer.ServiceInfo("enclave-kms", "test", "0", "https://example.invalid"),
                List.of(audited), ServerLimits.DEFAULT, T, null, interceptor);
        server.bind(dir.resolve("s.sock"));
        client = VarlinkClient.connect(dir.resolve("s.sock"));
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        server.shutdown(Duration.ofSeconds(1));
    }

    @Test
    void success_shownWithParametersAndReply_beforeTheReplyIsWritten() throws Exception {
        entered = new CountDownLatch(1);
        release = new CountDownLatch(1);
        CompletableFuture<Map<String, Object>> reply = CompletableFuture.supplyAsync(() -> {
            try {
                return client.call(T + ".Echo", Map.of("text", "hi"));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });

        assertTrue(entered.await(10, TimeUnit.SECONDS));
        // The interceptor holds the call: its reply has not been written.
        assertFalse(reply.isDone(), "the reply left before the interceptor finished");
        release.countDown();

        assertEquals(Map.of("text", "hi"), reply.get(10, TimeUnit.SECONDS));
        CallInterceptor.CompletedCall c = shown.getFirst();
        assertEquals(T + ".Echo", c.method());
        assertEquals(Map.of("text", "hi"), c.parameters());
        assertEquals(Map.of("text", "hi"), c.reply());
        assertNull(c.error());
        assertFalse(c.streaming());
    }

    @Test
    void refusedAtCompletion_callerGetsTheRefusalInsteadOfTheReply() throws Exception {
        refuseCompletion = new VarlinkError(T + ".Refused", Map.of("message", "audit log down"));

        VarlinkError e = assertThrows(VarlinkError.class, () -> client.call(T + ".Echo", Map.of("text", "secret reply")));

        assertEquals(T + ".Refused", e.error());
        assertEquals(1, handled.get(), "the handler ran");
        assertEquals(1, shown.size(), "shown once, not again for its own refusal");
    }

    @Test
    void refusedAtAdmission_handlerNeverRunsAndNothingIsShown() throws Exception {
        refuseAdmission = new VarlinkError(T + ".Refused", Map.of("message", "audit log down"));

        VarlinkError e = assertThrows(VarlinkError.class, () -> client.call(T + ".Echo", Map.of("text", "x")));

        assertEquals(T + ".Refused", e.error());
        assertEquals(0, handled.get());
        assertEquals(List.of(), shown);
    }

    @Test
    void failedCalls_shownWithTheErrorName() throws Exception {
        assertThrows(VarlinkError.class, () -> client.call(T + ".Echo", Map.of("text", "x", "extra", 1L)));
        assertThrows(VarlinkError.class, () -> client.call(T + ".Nope", Map.of()));
        assertThrows(VarlinkError.class, () -> client.call("com.example.Other.Method", Map.of()));

        assertEquals(List.of(T + ".InvalidParameter", "org.varlink.service.MethodNotFound",
                "org.varlink.service.InterfaceNotFound"), shown.stream().map(CallInterceptor.CompletedCall::error).toList());
        assertEquals(List.of(T + ".Echo", T + ".Nope", "com.example.Other.Method"),
                shown.stream().map(CallInterceptor.CompletedCall::method).toList());
        assertTrue(shown.stream().allMatch(c -> c.reply() == null));
    }

    @Test
    void serviceInterface_notShownAndServedEvenWhenEverythingElseIsRefused() throws Exception {
        refuseAdmission = new VarlinkError(T + ".Refused", Map.of("message", "audit log down"));

        Map<String, Object> info = client.call("org.varlink.service.GetInfo", Map.of());

        assertEquals("test", info.get("product"));
        assertEquals(List.of(), shown);
    }

    @Test
    void sessionAttributeSetByTheHandler_visibleToTheInterceptorOfThatCall() throws Exception {
        client.call(T + ".Login", Map.of("id", "tok-1"));
        client.call(T + ".Echo", Map.of("text", "x"));

        assertEquals("tok-1", shown.get(0).session().get("audit.token_id"));
        assertEquals("tok-1", shown.get(1).session().get("audit.token_id"));
    }

    @Test
    void streamedCall_shownBeforeItsFirstReply_andRefusalStopsTheStream() throws Exception {
        List<Object> received = new ArrayList<>();
        client.callMore(T + ".Count", Map.of("n", 3L), r -> received.add(r.get("i")));
        assertEquals(List.of(1L, 2L, 3L), received);
        assertEquals(1, shown.size(), "one record for the whole stream");
        assertTrue(shown.getFirst().streaming());
        assertEquals(Map.of("i", 1L), shown.getFirst().reply());

        refuseCompletion = new VarlinkError(T + ".Refused", Map.of("message", "audit log down"));
        List<Object> none = new ArrayList<>();
        VarlinkError e = assertThrows(VarlinkError.class,
                () -> client.callMore(T + ".Count", Map.of("n", 3L), r -> none.add(r.get("i"))));
        assertEquals(T + ".Refused", e.error());
        assertEquals(List.of(), none, "no part of the stream left");
    }

    @Test
    void streamedCallFailingAfterItStarted_shownAgainWithTheError() throws Exception {
        List<Object> received = new ArrayList<>();
        VarlinkError e = assertThrows(VarlinkError.class,
                () -> client.callMore(T + ".CountThenFail", Map.of("n", 3L), r -> received.add(r.get("i"))));

        assertEquals(T + ".Refused", e.error());
        assertEquals(List.of(1L), received);
        assertEquals(2, shown.size());
        assertTrue(shown.get(0).streaming());
        assertEquals(T + ".Refused", shown.get(1).error());
    }
}
