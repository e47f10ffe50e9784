package dev.enclavekms.server.varlink.certification;

import dev.enclavekms.server.varlink.ServerLimits;
import dev.enclavekms.server.varlink.VarlinkServer;
import dev.enclavekms.varlink.VarlinkClient;
import dev.enclavekms.varlink.VarlinkError;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our server library against the reference client: {@code varlink-go-certification
 * --client} must complete the certification against {@link CertificationService}
 * served by {@link VarlinkServer}. The service's own checks are tested here too, so
 * that a pass means something.
 */
class CertificationServerTest {
    private static final String I = CertificationService.INTERFACE + ".";

    @TempDir
    Path dir;
    private CertificationService service;
    private VarlinkServer server;
    private Path socket;

    @BeforeEach
    void startServer() throws IOException {
        service = new CertificationService();
        server = new VarlinkServer(new VarlinkServer.ServiceInfo("enclave-kms", "certification test server", "1",
                "https://varlink.org"), List.of(service.varlinkInterface()),
                ServerLimits.DEFAULT.withIdleTimeout(Duration.ofSeconds(30)), "dev.enclavekms.Kms", null);
        socket = dir.resolve("cert.sock");
        server.bind(socket);
    }

    @AfterEach
    void stopServer() {
        server.shutdown(Duration.ofSeconds(1));
    }

    @Test
    void referenceClient_completesCertification() throws Exception {
        String out;
        int exit;
        try (CertificationTool client = CertificationTool.client(socket, dir)) {
            exit = client.awaitExit(Duration.ofSeconds(20));
            out = client.output();
        }
        // The reference client exits 0 even when a step fails; its output tells.
        assertEquals(0, exit, out);
        assertFalse(out.contains("failed"), out);
        for (String step : List.of("Start: '", "Test01: 'true'", "Test02: '1'", "Test03: '1'", "Test04: 'ping'",
                "Test05: 'false'", "Test06: ", "Test07: ", "Test08: ", "Test09: ", "Test10() Send:",
                "Receive: 'Reply number 10'", "Test10: '[Reply number 1 ", "Test11: ''", "End: 'true'")) {
            assertTrue(out.contains(step), () -> "missing \"" + step + "\" in:\n" + out);
        }
        assertEquals(List.of(), service.failures(), "our service found nothing wrong");
        assertEquals(1, service.completed().size());
    }

    @Test
    void ourClient_completesCertificationAgainstOurServer() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            CertificationClient.Result r = new CertificationClient(c).run();
            assertEquals(Map.of("all_ok", true), r.end());
        }
        assertEquals(List.of(), service.failures());
        assertEquals(1, service.completed().size());
    }

    @Test
    void unknownClientId_clientIdError() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(I + "Test01", Map.of("client_id", "nobody")));
            assertEquals(I + "ClientIdError", e.error());
        }
    }

    @Test
    void wrongValue_certificationErrorWithWantsAndGot_andTheFailureSticks() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            String id = (String) c.call(I + "Start", null).get("client_id");
            c.call(I + "Test01", Map.of("client_id", id));
            VarlinkError e = assertThrows(VarlinkError.class,
                    () -> c.call(I + "Test02", Map.of("client_id", id, "bool", false)));
            assertEquals(I + "CertificationError", e.error());
            assertEquals(Map.of("client_id", id, "bool", true), ((Map<?, ?>) e.parameters().get("wants")).get("parameters"));
            assertEquals(Map.of("client_id", id, "bool", false), ((Map<?, ?>) e.parameters().get("got")).get("parameters"));
            VarlinkError again = assertThrows(VarlinkError.class, () -> c.call(I + "End", Map.of("client_id", id)));
            assertEquals(e.parameters(), again.parameters());
        }
    }

    @Test
    void intWrittenAsFloat_certificationError() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            String id = (String) c.call(I + "Start", null).get("client_id");
            c.call(I + "Test01", Map.of("client_id", id));
            c.call(I + "Test02", Map.of("client_id", id, "bool", true));
            VarlinkError e = assertThrows(VarlinkError.class,
                    () -> c.call(I + "Test03", Map.of("client_id", id, "int", 1.0)));
            assertEquals(I + "CertificationError", e.error());
        }
    }

    @Test
    void extraParameter_certificationError() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            String id = (String) c.call(I + "Start", null).get("client_id");
            VarlinkError e = assertThrows(VarlinkError.class,
                    () -> c.call(I + "Test01", Map.of("client_id", id, "extra", 1L)));
            assertEquals(I + "CertificationError", e.error());
        }
    }

    @Test
    void outOfOrderCall_certificationErrorNamingTheExpectedMethod() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            String id = (String) c.call(I + "Start", null).get("client_id");
            VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(I + "Test02", Map.of("client_id", id, "bool", true)));
            assertEquals(I + "CertificationError", e.error());
            assertEquals(Map.of("method", I + "Test01"), e.parameters().get("wants"));
            assertEquals(Map.of("method", I + "Test02"), e.parameters().get("got"));
        }
    }

    @Test
    void test10WithoutMore_certificationErrorWantingMore() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            Map<String, Object> mytype = runUpTo(c, "Test10");
            String id = (String) mytype.remove("client_id");
            VarlinkError e = assertThrows(VarlinkError.class,
                    () -> c.call(I + "Test10", Map.of("client_id", id, "mytype", mytype.get("mytype"))));
            assertEquals(I + "CertificationError", e.error());
            assertEquals(true, ((Map<?, ?>) e.parameters().get("wants")).get("more"));
        }
    }

    @Test
    void test11NotOneway_certificationError() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            Map<String, Object> state = runUpTo(c, "Test11");
            String id = (String) state.get("client_id");
            VarlinkError e = assertThrows(VarlinkError.class,
                    () -> c.call(I + "Test11", Map.of("client_id", id, "last_more_replies", state.get("replies"))));
            assertEquals(I + "CertificationError", e.error());
            assertEquals(true, ((Map<?, ?>) e.parameters().get("wants")).get("oneway"));
        }
    }

    @Test
    void test11WrongReplies_onewayUnanswered_endReportsIt() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            Map<String, Object> state = runUpTo(c, "Test11");
            String id = (String) state.get("client_id");
            c.oneway(I + "Test11", Map.of("client_id", id, "last_more_replies", List.of("Reply number 1")));
            VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(I + "End", Map.of("client_id", id)));
            assertEquals(I + "CertificationError", e.error());
            assertEquals(List.of("Reply number 1"),
                    ((Map<?, ?>) ((Map<?, ?>) e.parameters().get("got")).get("parameters")).get("last_more_replies"));
        }
    }

    @Test
    void clients_haveSeparateState() throws Exception {
        try (VarlinkClient a = VarlinkClient.connect(socket); VarlinkClient b = VarlinkClient.connect(socket)) {
            String idA = (String) a.call(I + "Start", null).get("client_id");
            String idB = (String) b.call(I + "Start", null).get("client_id");
            a.call(I + "Test01", Map.of("client_id", idA));
            assertThrows(VarlinkError.class, () -> b.call(I + "Test02", Map.of("client_id", idB, "bool", true)));
            a.call(I + "Test02", Map.of("client_id", idA, "bool", true));
        }
    }

    /**
     * Runs the sequence up to (not including) {@code stop}; returns client_id plus
     * Test09's reply (for Test10) or Test10's replies (for Test11).
     */
    private static Map<String, Object> runUpTo(VarlinkClient c, String stop) throws IOException, VarlinkError {
        String id = (String) c.call(I + "Start", null).get("client_id");
        Map<String, Object> r = c.call(I + "Test01", Map.of("client_id", id));
        r = c.call(I + "Test02", Map.of("client_id", id, "bool", r.get("bool")));
        r = c.call(I + "Test03", Map.of("client_id", id, "int", r.get("int")));
        r = c.call(I + "Test04", Map.of("client_id", id, "float", r.get("float")));
        r = c.call(I + "Test05", Map.of("client_id", id, "string", r.get("string")));
        r = c.call(I + "Test06", Map.of("client_id", id, "bool", r.get("bool"), "int", r.get("int"),
                "float", r.get("float"), "string", r.get("string")));
        r = c.call(I + "Test07", Map.of("client_id", id, "struct", r.get("struct")));
        r = c.call(I + "Test08", Map.of("client_id", id, "map", r.get("map")));
        r = c.call(I + "Test09", Map.of("client_id", id, "set", r.get("set")));
        if (stop.equals("Test10")) {
            return new java.util.HashMap<>(Map.of("client_id", id, "mytype", r.get("mytype")));
        }
        List<Object> replies = new java.util.ArrayList<>();
        c.callMore(I + "Test10", Map.of("client_id", id, "mytype", r.get("mytype")), x -> replies.add(x.get("string")));
        return Map.of("client_id", id, "replies", replies);
    }
}
