package dev.enclavekms.server.varlink;

import dev.enclavekms.json.Json;
import dev.enclavekms.varlink.FrameReader;
import dev.enclavekms.varlink.VarlinkClient;

import java.io.ByteArrayOutputStream;
import java.util.LinkedHashMap;
import java.util.Map;

/** Writes several calls in one write, without waiting for replies: pipelining, as a client does it. */
final class PipelinedCalls {
    private PipelinedCalls() {
    }

    /** {@code methodAndIds}: method name (of {@code iface}), id, method name, id ...; each call's parameters are {@code {"id": id}}. */
    static void send(VarlinkClient client, String iface, String... methodAndIds) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int k = 0; k < methodAndIds.length; k += 2) {
            Map<String, Object> call = new LinkedHashMap<>();
            call.put("method", iface + "." + methodAndIds[k]);
            call.put("parameters", Map.of("id", Long.parseLong(methodAndIds[k + 1])));
            out.writeBytes(FrameReader.encode(Json.write(call)));
        }
        client.sendRaw(out.toByteArray());
    }
}
