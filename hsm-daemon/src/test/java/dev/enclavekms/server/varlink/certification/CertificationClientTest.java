package dev.enclavekms.server.varlink.certification;

import dev.enclavekms.varlink.VarlinkClient;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Our client against the reference server: {@link CertificationClient} on
 * {@link VarlinkClient} must complete the certification against
 * {@code varlink-go-certification} running as a server process.
 */
class CertificationClientTest {
    @TempDir
    static Path dir;
    private static CertificationTool server;
    private static Path socket;

    @BeforeAll
    static void startReferenceServer() throws Exception {
        socket = dir.resolve("go.sock");
        server = CertificationTool.server(socket, dir);
    }

    @AfterAll
    static void stopReferenceServer() {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void ourClient_completesCertificationAgainstReferenceServer() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            CertificationClient.Result r = new CertificationClient(c).run();
            assertEquals(Map.of("all_ok", true), r.end());
            List<String> want = new ArrayList<>();
            for (int i = 1; i <= 10; i++) want.add("Reply number " + i);
            assertEquals(want, r.moreReplies());
        }
    }

    @Test
    void ourClient_certifiesTwiceOnOneConnection() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            CertificationClient.Result first = new CertificationClient(c).run();
            CertificationClient.Result second = new CertificationClient(c).run();
            assertEquals(true, first.end().get("all_ok"));
            assertEquals(true, second.end().get("all_ok"));
        }
    }

    @Test
    void referenceServer_describesItself() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(socket)) {
            Map<String, Object> info = c.call("org.varlink.service.GetInfo", null);
            assertEquals(List.of("org.varlink.service", "org.varlink.certification"), info.get("interfaces"));
            String idl = (String) c.call("org.varlink.service.GetInterfaceDescription",
                    Map.of("interface", "org.varlink.certification")).get("description");
            for (String decl : List.of("method Test10(client_id: string, mytype: MyType) -> (string: string)",
                    "error CertificationError (wants: object, got: object)")) {
                assertEquals(true, idl.contains(decl), decl);
            }
        }
    }
}
