package dev.enclavekms.server.varlink;

import dev.enclavekms.json.Json;
import dev.enclavekms.varlink.FrameReader;
import dev.enclavekms.varlink.VarlinkClient;
import dev.enclavekms.varlink.VarlinkError;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real {@link VarlinkServer} on a real socket, fed bad input. Every bad message must
 * get its typed error with a message a person can act on, must cost only itself (the
 * same connection serves the next call), and must never disturb a second client, which
 * is checked after every test.
 */
class VarlinkServerBadInputTest {
    private static final String TINY = "dev.enclavekms.test.Tiny";
    private static final String IDL = """
            # A tiny interface for testing the server library.
            interface dev.enclavekms.test.Tiny

            method Echo(text: string) -> (text: string)
            # data is base64; replies with its decoded length (at most 16 bytes)
            method Length(data: string) -> (bytes: int)
            method Add(a: int, b: int) -> (sum: int)
            # streams n replies; call with "more"
            method Count(n: int) -> (i: int)
            method Record(value: string) -> ()
            method Big(bytes: int) -> (text: string)
            method Fail() -> ()
            method Unwritable() -> ()

            error InvalidParameter (parameter: string, message: string)
            error InternalError (message: string)
            error InvalidRequest (message: string)
            error RequestTooLarge (limit: int, message: string)
            error TooManyConnections (limit: int, message: string)
            """;
    private static final ServerLimits LIMITS = new ServerLimits(64 * 1024, 16, Duration.ofSeconds(30), 32);
    private static final String SECRET = "0xDEADBEEF-not-for-callers";

    @TempDir
    Path dir;
    private Path socket;
    private VarlinkServer server;
    private final BlockingQueue<String> recorded = new LinkedBlockingQueue<>();
    /** A second client, connected before each test and asked again after it. */
    private VarlinkClient bystander;
    private boolean bystanderMayIdleOut;
    private final List<VarlinkClient> clients = new ArrayList<>();

    @BeforeEach
    void start() throws IOException, VarlinkError {
        start(LIMITS);
    }

    private void start(ServerLimits limits) throws IOException, VarlinkError {
        if (server != null) {
            server.shutdown(Duration.ofSeconds(1));
        }
        VarlinkInterface tiny = VarlinkInterface.builder(TINY, IDL)
                .method("Echo", call -> Map.of("text", call.parameters().string("text", 1 << 20)))
                .method("Length", call -> Map.of("bytes", (long) call.parameters().bytes("data", 16).length))
                .method("Add", call -> Map.of("sum", call.parameters().integer("a", -1000, 1000)
                        + call.parameters().integer("b", -1000, 1000)))
                .method("Count", call -> {
                    long n = call.parameters().integer("n", 1, 100);
                    for (long i = 1; i < n; i++) {
                        call.replyMore(Map.of("i", i));
                    }
                    return Map.of("i", n);
                })
                .method("Record", call -> {
                    recorded.add(call.parameters().string("value", 100));
                    return Map.of();
                })
                .method("Big", call -> Map.of("text", "x".repeat((int) call.parameters().integer("bytes", 0, 1 << 20))))
                .method("Fail", call -> {
                    throw new IllegalStateException("handler bug while holding " + SECRET);
                })
                .method("Unwritable", call -> Map.of("value", new Object()))
                .errors(TINY + ".InvalidParameter", TINY + ".InternalError")
                .build();
        server = new VarlinkServer(new VarlinkServer.ServiceInfo("enclave-kms", "bad input test", "0.1", "https://example.invalid"),
                List.of(tiny), limits, TINY, null);
        socket = dir.resolve("tiny.sock");
        server.bind(socket);
        bystander = connect();
        assertEquals(Map.of("text", "hello"), bystander.call(TINY + ".Echo", Map.of("text", "hello")));
    }

    @AfterEach
    void bystanderStillServed_thenStop() throws IOException, VarlinkError {
        try {
            if (!bystanderMayIdleOut) {
                assertEquals(Map.of("text", "still here"), bystander.call(TINY + ".Echo", Map.of("text", "still here")),
                        "the second client is served throughout");
            }
            try (VarlinkClient fresh = VarlinkClient.connect(socket)) {
                assertEquals(Map.of("text", "new"), fresh.call(TINY + ".Echo", Map.of("text", "new")));
            }
        } finally {
            for (VarlinkClient c : clients) c.close();
            server.shutdown(Duration.ofSeconds(1));
        }
    }

    // ---------------------------------------------------------------- helpers

    private VarlinkClient connect() throws IOException {
        VarlinkClient c = VarlinkClient.connect(socket);
        clients.add(c);
        return c;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Sends {@code bytes} followed by NUL and returns the one reply. */
    private static Map<String, Object> exchange(VarlinkClient c, byte[] bytes) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(bytes);
        out.write(0);
        c.sendRaw(out.toByteArray());
        return c.receiveRaw();
    }

    private static Map<String, Object> exchange(VarlinkClient c, String json) throws IOException {
        return exchange(c, utf8(json));
    }

    /** Asserts the reply is error {@code name} whose message contains every fragment; returns its parameters. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> assertError(Map<String, Object> reply, String name, String... fragments) {
        assertEquals(name, reply.get("error"), () -> "reply: " + reply);
        Map<String, Object> p = (Map<String, Object>) reply.get("parameters");
        String message = (String) p.get("message");
        assertTrue(message != null && !message.isBlank(), () -> "no message in " + reply);
        for (String f : fragments) {
            assertTrue(message.contains(f), () -> "message \"" + message + "\" should say \"" + f + "\"");
        }
        assertFalse(message.contains("Exception") || message.contains("\tat "), () -> "internals in " + message);
        return p;
    }

    private static void assertError(VarlinkError e, String name, String... fragments) {
        Map<String, Object> reply = new LinkedHashMap<>();
        reply.put("error", e.error());
        reply.put("parameters", e.parameters());
        assertError(reply, name, fragments);
    }

    /** The same connection still serves a valid call. */
    private static void assertServes(VarlinkClient c) throws IOException, VarlinkError {
        assertEquals(Map.of("text", "next"), c.call(TINY + ".Echo", Map.of("text", "next")));
    }

    // ---------------------------------------------------------------- malformed messages

    @Test
    void malformedJson_invalidRequest_connectionStillServes() throws Exception {
        VarlinkClient c = connect();
        for (String bad : List.of("{\"method\":", "{method: \"x.Y\"}", "{\"method\":\"a.B\",}", "{\"method\":\"a.B\"} trailing",
                "{\"method\":\"a.B\",\"method\":\"a.B\"}")) {
            assertError(exchange(c, bad), TINY + ".InvalidRequest", "malformed JSON", "offset");
            assertServes(c);
        }
    }

    @Test
    void emptyMessage_invalidRequest() throws Exception {
        VarlinkClient c = connect();
        assertError(exchange(c, ""), TINY + ".InvalidRequest", "malformed JSON", "end of input");
        assertServes(c);
    }

    @Test
    void arrayOrNumberOrStringInsteadOfObject_invalidRequest() throws Exception {
        VarlinkClient c = connect();
        for (String bad : List.of("[{\"method\":\"dev.enclavekms.test.Tiny.Echo\"}]", "42", "\"method\"", "null", "true")) {
            assertError(exchange(c, bad), TINY + ".InvalidRequest", "must be a JSON object");
        }
        assertServes(c);
    }

    @Test
    void noMethod_invalidRequest() throws Exception {
        VarlinkClient c = connect();
        assertError(exchange(c, "{\"parameters\":{\"text\":\"x\"}}"), TINY + ".InvalidRequest", "no \"method\"");
        assertError(exchange(c, "{\"method\":null}"), TINY + ".InvalidRequest", "no \"method\"");
        assertServes(c);
    }

    @Test
    void methodNotAString_invalidRequest() throws Exception {
        VarlinkClient c = connect();
        for (String bad : List.of("{\"method\":42}", "{\"method\":[\"a.B\"]}", "{\"method\":{}}", "{\"method\":true}")) {
            assertError(exchange(c, bad), TINY + ".InvalidRequest", "\"method\" must be a string");
        }
        assertServes(c);
    }

    @Test
    void overlongMethodName_invalidRequestWithoutEchoingIt() throws Exception {
        VarlinkClient c = connect();
        Map<String, Object> p = assertError(exchange(c, "{\"method\":\"a." + "B".repeat(10_000) + "\"}"),
                TINY + ".InvalidRequest", "longer than 255");
        assertTrue(Json.write(p).length() < 200);
        assertServes(c);
    }

    @Test
    void flagsNotBooleans_invalidRequest() throws Exception {
        VarlinkClient c = connect();
        for (String flag : List.of("more", "oneway", "upgrade")) {
            assertError(exchange(c, "{\"method\":\"" + TINY + ".Echo\",\"parameters\":{\"text\":\"x\"},\"" + flag + "\":\"yes\"}"),
                    TINY + ".InvalidRequest", "\"" + flag + "\" must be true or false");
        }
        assertServes(c);
    }

    @Test
    void upgrade_invalidParameter() throws Exception {
        VarlinkClient c = connect();
        Map<String, Object> p = assertError(exchange(c, "{\"method\":\"" + TINY + ".Echo\",\"upgrade\":true}"),
                "org.varlink.service.InvalidParameter", "does not upgrade");
        assertEquals("upgrade", p.get("parameter"));
        assertServes(c);
    }

    @Test
    void tooDeeplyNested_invalidRequest() throws Exception {
        VarlinkClient c = connect();
        String deep = "[".repeat(40) + "]".repeat(40);
        assertError(exchange(c, "{\"method\":\"" + TINY + ".Echo\",\"parameters\":{\"text\":" + deep + "}}"),
                TINY + ".InvalidRequest", "nesting deeper than 32");
        assertServes(c);
    }

    @Test
    void invalidUtf8_invalidRequest_connectionStillServes() throws Exception {
        VarlinkClient c = connect();
        ByteArrayOutputStream bad = new ByteArrayOutputStream();
        bad.writeBytes(utf8("{\"method\":\"" + TINY + ".Echo\",\"parameters\":{\"text\":\""));
        bad.writeBytes(new byte[] {(byte) 0xed, (byte) 0xa0, (byte) 0x80}); // an encoded surrogate
        bad.writeBytes(utf8("\"}}"));
        assertError(exchange(c, bad.toByteArray()), TINY + ".InvalidRequest", "not valid UTF-8");
        assertError(exchange(c, new byte[] {(byte) 0xff, (byte) 0xfe}), TINY + ".InvalidRequest", "not valid UTF-8");
        assertServes(c);
    }

    @Test
    void oversizedMessage_requestTooLarge_sameConnectionThenServesValidCall() throws Exception {
        VarlinkClient c = connect();
        String big = "{\"method\":\"" + TINY + ".Echo\",\"parameters\":{\"text\":\"" + "x".repeat(200_000) + "\"}}";
        Map<String, Object> p = assertError(exchange(c, big), TINY + ".RequestTooLarge",
                "exceeds the limit of 65536 bytes", String.valueOf(utf8(big).length));
        assertEquals(65536L, p.get("limit"));
        assertServes(c);
        // Just under the limit is served.
        String fits = "x".repeat(65536 - 100);
        assertEquals(Map.of("text", fits), c.call(TINY + ".Echo", Map.of("text", fits)));
    }

    // ---------------------------------------------------------------- lookup

    @Test
    void unknownInterface_interfaceNotFound() throws Exception {
        VarlinkClient c = connect();
        VarlinkError e = assertThrows(VarlinkError.class, () -> c.call("com.example.Nope.Call", null));
        assertError(e, "org.varlink.service.InterfaceNotFound", "no interface com.example.Nope", "GetInfo");
        assertEquals("com.example.Nope", e.parameters().get("interface"));
        assertServes(c);
    }

    @Test
    void unknownMethod_methodNotFound() throws Exception {
        VarlinkClient c = connect();
        VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(TINY + ".Nope", null));
        assertError(e, "org.varlink.service.MethodNotFound", "has no method Nope");
        assertEquals(TINY + ".Nope", e.parameters().get("method"));
        for (String unqualified : List.of("Echo", ".Echo", "dev.enclavekms.test.Tiny.")) {
            VarlinkError u = assertThrows(VarlinkError.class, () -> c.call(unqualified, null));
            assertError(u, "org.varlink.service.MethodNotFound", "not a qualified method name");
        }
        assertServes(c);
    }

    @Test
    void parametersNotAnObject_invalidRequest() throws Exception {
        VarlinkClient c = connect();
        for (String params : List.of("[\"x\"]", "\"x\"", "42", "true")) {
            assertError(exchange(c, "{\"method\":\"" + TINY + ".Echo\",\"parameters\":" + params + "}"),
                    TINY + ".InvalidRequest", "\"parameters\" must be an object");
        }
        assertServes(c);
    }

    @Test
    void parametersMissingNullOrEmpty_allMeanNoParameters() throws Exception {
        VarlinkClient c = connect();
        for (String m : List.of("{\"method\":\"org.varlink.service.GetInfo\"}",
                "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":null}",
                "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{}}")) {
            Map<String, Object> reply = exchange(c, m);
            assertNull(reply.get("error"), () -> "reply: " + reply);
        }
        VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(TINY + ".Echo", null));
        assertError(e, TINY + ".InvalidParameter", "text: required");
    }

    // ---------------------------------------------------------------- parameters

    @Test
    void wrongParameterTypes_invalidParameterNamingTheParameter() throws Exception {
        VarlinkClient c = connect();
        record Case(String method, Map<String, Object> params, String parameter, String says) { }
        for (Case k : List.of(
                new Case("Echo", Map.of("text", 5L), "text", "text: must be a string"),
                new Case("Echo", Map.of("text", List.of("x")), "text", "text: must be a string"),
                new Case("Add", Map.of("a", "1", "b", 2L), "a", "a: must be an integer"),
                new Case("Add", Map.of("a", 1.5, "b", 2L), "a", "a: must be an integer"),
                new Case("Add", Map.of("a", 1L, "b", 1e30), "b", "b: must be an integer"),
                new Case("Add", Map.of("a", 1L, "b", 5000L), "b", "b: must be between -1000 and 1000"),
                new Case("Add", Map.of("a", 1L), "b", "b: required"),
                new Case("Length", Map.of("data", true), "data", "data: must be a base64 string"))) {
            VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(TINY + "." + k.method(), k.params()));
            assertError(e, TINY + ".InvalidParameter", k.says());
            assertEquals(k.parameter(), e.parameters().get("parameter"));
        }
        assertEquals(Map.of("sum", 3L), c.call(TINY + ".Add", Map.of("a", 1L, "b", 2L)));
    }

    @Test
    void invalidBase64_invalidParameter() throws Exception {
        VarlinkClient c = connect();
        for (String bad : List.of("not base64!", "QQ", "QQ=", "QR==", "Q===", "QUJD\n", "QUJD RA==", "QUJD-_==", "=QUJD")) {
            VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(TINY + ".Length", Map.of("data", bad)),
                    () -> "accepted " + bad);
            assertError(e, TINY + ".InvalidParameter", "data: is not valid base64 (standard alphabet, padded)");
        }
        VarlinkError tooLong = assertThrows(VarlinkError.class,
                () -> c.call(TINY + ".Length", Map.of("data", "QUJDREVGR0hJSktMTU5PUFE=")));
        assertError(tooLong, TINY + ".InvalidParameter", "data: longer than 16 bytes");
        assertEquals(Map.of("bytes", 16L), c.call(TINY + ".Length", Map.of("data", "QUJDREVGR0hJSktMTU5PUA==")));
        assertEquals(Map.of("bytes", 0L), c.call(TINY + ".Length", Map.of("data", "")));
    }

    // ---------------------------------------------------------------- handler failures

    @Test
    void handlerThrows_internalErrorWithoutTheExceptionText() throws Exception {
        VarlinkClient c = connect();
        VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(TINY + ".Fail", null));
        assertError(e, TINY + ".InternalError", "internal error", "daemon log");
        assertFalse(Json.write(e.parameters()).contains("DEADBEEF"));
        assertFalse(Json.write(e.parameters()).contains("IllegalState"));
        assertServes(c);
    }

    @Test
    void handlerReturnsUnwritableValue_internalErrorAndConnectionStillServes() throws Exception {
        VarlinkClient c = connect();
        VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(TINY + ".Unwritable", null));
        assertError(e, TINY + ".InternalError", "internal error");
        assertServes(c);
    }

    // ---------------------------------------------------------------- more, oneway, pipelining

    @Test
    void pipelining_100CallsInOneWrite_100RepliesInOrder() throws Exception {
        VarlinkClient c = connect();
        ByteArrayOutputStream calls = new ByteArrayOutputStream();
        for (int i = 0; i < 100; i++) {
            calls.writeBytes(FrameReader.encode(Json.write(Map.of("method", TINY + ".Echo", "parameters", Map.of("text", "#" + i)))));
        }
        c.sendRaw(calls.toByteArray());
        for (int i = 0; i < 100; i++) {
            assertEquals(Map.of("parameters", Map.of("text", "#" + i)), c.receiveRaw());
        }
        assertServes(c);
    }

    @Test
    void more_continuesRepliesThenAFinalOne() throws Exception {
        VarlinkClient c = connect();
        c.sendRaw(FrameReader.encode("{\"method\":\"" + TINY + ".Count\",\"parameters\":{\"n\":3},\"more\":true}"));
        assertEquals(Map.of("parameters", Map.of("i", 1L), "continues", true), c.receiveRaw());
        assertEquals(Map.of("parameters", Map.of("i", 2L), "continues", true), c.receiveRaw());
        assertEquals(Map.of("parameters", Map.of("i", 3L)), c.receiveRaw());

        List<Object> seen = new ArrayList<>();
        c.callMore(TINY + ".Count", Map.of("n", 5L), r -> seen.add(r.get("i")));
        assertEquals(List.of(1L, 2L, 3L, 4L, 5L), seen);
        assertServes(c);
    }

    @Test
    void streamingMethodWithoutMore_expectedMore() throws Exception {
        VarlinkClient c = connect();
        VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(TINY + ".Count", Map.of("n", 3L)));
        assertError(e, "org.varlink.service.ExpectedMore", "\"more\": true");
        assertServes(c);
        // A single-reply stream needs no continues, so it works without more.
        assertEquals(Map.of("i", 1L), c.call(TINY + ".Count", Map.of("n", 1L)));
    }

    @Test
    void oneway_handlerRunsAndNothingIsSent() throws Exception {
        VarlinkClient c = connect();
        c.oneway(TINY + ".Record", Map.of("value", "first"));
        c.oneway(TINY + ".Record", Map.of("value", "second"));
        // The next reply on the stream is Echo's: the oneway calls got none.
        assertServes(c);
        assertEquals("first", recorded.poll(5, TimeUnit.SECONDS));
        assertEquals("second", recorded.poll(5, TimeUnit.SECONDS));
    }

    @Test
    void onewayFailures_neverAnswered() throws Exception {
        VarlinkClient c = connect();
        c.oneway("com.example.Nope.Call", null);
        c.oneway(TINY + ".Nope", null);
        c.oneway(TINY + ".Record", Map.of("value", 42L));
        c.oneway(TINY + ".Fail", null);
        c.sendRaw(FrameReader.encode("{\"method\":42,\"oneway\":true}"));
        c.sendRaw(FrameReader.encode("{\"method\":\"" + TINY + ".Echo\",\"parameters\":[],\"oneway\":true}"));
        c.oneway(TINY + ".Count", Map.of("n", 3L));
        assertServes(c);
        assertTrue(recorded.isEmpty());
    }

    // ---------------------------------------------------------------- connections

    @Test
    void messageWhoseNulNeverComes_connectionClosedAfterIdleTimeout() throws Exception {
        Duration idle = Duration.ofMillis(300);
        start(LIMITS.withIdleTimeout(idle));
        bystanderMayIdleOut = true;
        VarlinkClient c = connect();
        long t0 = System.nanoTime();
        c.sendRaw(utf8("{\"method\":\"" + TINY + ".Echo\",\"parameters\":{\"text\":\"never ends"));
        // The read blocks until the server gives up on the message and closes the connection.
        IOException closed = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> assertThrows(IOException.class, c::receiveRaw));
        long waited = System.nanoTime() - t0;
        assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
        assertTrue(waited >= idle.toNanos(), "closed after " + waited / 1_000_000 + " ms, before the idle timeout");
    }

    @Test
    void unfinishedMessage_doesNotDelayOtherClients() throws Exception {
        VarlinkClient c = connect();
        c.sendRaw(utf8("{\"method\":\"" + TINY + ".Echo\",\"param"));
        assertEquals(Map.of("text", "meanwhile"), bystander.call(TINY + ".Echo", Map.of("text", "meanwhile")));
        c.sendRaw(utf8("eters\":{\"text\":\"done\"}}\0"));
        assertEquals(Map.of("parameters", Map.of("text", "done")), c.receiveRaw());
    }

    @Test
    void clientThatStopsReading_closedAfterIdleTimeout() throws Exception {
        start(LIMITS.withIdleTimeout(Duration.ofMillis(500)));
        bystanderMayIdleOut = true;
        VarlinkClient c = connect();
        // About 13 MB of replies that nobody reads: the server's writes block on a full socket.
        ByteArrayOutputStream calls = new ByteArrayOutputStream();
        for (int i = 0; i < 200; i++) {
            calls.writeBytes(FrameReader.encode("{\"method\":\"" + TINY + ".Big\",\"parameters\":{\"bytes\":65000}}"));
        }
        c.sendRaw(calls.toByteArray());
        Await.until("the stalled connection (and the idle bystander) to be closed", Duration.ofSeconds(10),
                () -> server.connectionCount() == 0);
    }

    @Test
    void connectionLimit_tooManyConnections_slotFreedWhenAClientLeaves() throws Exception {
        start(LIMITS.withMaxConnections(3));
        VarlinkClient second = connect();
        VarlinkClient third = connect();
        assertServes(second);
        assertServes(third);
        assertEquals(3, server.connectionCount());

        VarlinkClient refused = connect();
        // The refusal is sent on accept, before any call; it is the first thing to read.
        Map<String, Object> p = assertError(refused.receiveRaw(), TINY + ".TooManyConnections", "at most 3 connections");
        assertEquals(3L, p.get("limit"));
        assertThrows(IOException.class, refused::receiveRaw, "a refused connection is closed");

        third.close();
        Await.until("the server to notice the closed connection", Duration.ofSeconds(5),
                () -> server.connectionCount() == 2);
        assertServes(connect());

        second.close(); // leaves room for the after-test check's fresh client
        Await.until("the server to notice the closed connection", Duration.ofSeconds(5),
                () -> server.connectionCount() == 2);
    }

    @Test
    void socketFile_mode0660_noStagingFileLeft() throws Exception {
        assertEquals(PosixFilePermissions.fromString("rw-rw----"), Files.getPosixFilePermissions(socket));
        assertFalse(Files.exists(dir.resolve("tiny.sock~")));
    }

    @Test
    void staleSocketFile_replacedOnBind() throws Exception {
        server.shutdown(Duration.ofSeconds(1));
        Files.writeString(socket, "stale");
        server = null;
        start(LIMITS);
        assertServes(bystander);
    }

    // ---------------------------------------------------------------- org.varlink.service

    @Test
    void getInfo_describesTheServiceAndListsInterfaces() throws Exception {
        Map<String, Object> info = connect().call("org.varlink.service.GetInfo", null);
        assertEquals("enclave-kms", info.get("vendor"));
        assertEquals("bad input test", info.get("product"));
        assertEquals("0.1", info.get("version"));
        assertEquals("https://example.invalid", info.get("url"));
        assertEquals(List.of("org.varlink.service", TINY), info.get("interfaces"));
    }

    @Test
    void getInterfaceDescription_returnsTheIdl() throws Exception {
        VarlinkClient c = connect();
        assertEquals(IDL, c.call("org.varlink.service.GetInterfaceDescription", Map.of("interface", TINY)).get("description"));
        String service = (String) c.call("org.varlink.service.GetInterfaceDescription",
                Map.of("interface", "org.varlink.service")).get("description");
        assertTrue(service.contains("interface org.varlink.service"));
    }

    @Test
    void getInterfaceDescriptionOfUnknownInterface_interfaceNotFound() throws Exception {
        VarlinkClient c = connect();
        VarlinkError e = assertThrows(VarlinkError.class,
                () -> c.call("org.varlink.service.GetInterfaceDescription", Map.of("interface", "com.example.Nope")));
        assertError(e, "org.varlink.service.InterfaceNotFound", "no interface com.example.Nope");
        assertEquals("com.example.Nope", e.parameters().get("interface"));
        VarlinkError missing = assertThrows(VarlinkError.class,
                () -> c.call("org.varlink.service.GetInterfaceDescription", null));
        assertError(missing, "org.varlink.service.InvalidParameter", "interface: required");
    }
}
