package dev.enclavekms.server.varlink;

import dev.enclavekms.json.Json;
import dev.enclavekms.varlink.FrameReader;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** A reply whose only parameter is pre-encoded is framed byte for byte as the writer frames the same value. */
class PreEncodedReplyFrameTest {
    /** JSON text held as UTF-8, as a batch's results are. */
    private record Utf8(String json) implements PreEncoded {
        @Override
        public int utf8Length() {
            return json.getBytes(StandardCharsets.UTF_8).length;
        }

        @Override
        public void copyUtf8(byte[] frame, int offset) {
            byte[] b = json.getBytes(StandardCharsets.UTF_8);
            System.arraycopy(b, 0, frame, offset, b.length);
        }

        @Override
        public void appendTo(StringBuilder sb) {
            sb.append(json);
        }

        @Override
        public int length() {
            return json.length();
        }
    }

    @Test
    void framesEqualTheWritersFrames_withAndWithoutContinues() throws Exception {
        List<Object> value = List.of(Map.of("plaintext", "AAEC"), Map.of("error", "KeyNotFound", "message", "clé \uD83D\uDD11 \"x\""));
        for (String name : List.of("results", "na\"me", "é")) {
            for (boolean continues : new boolean[] {false, true}) {
                Map<String, Object> pre = Map.of(name, new Utf8(Json.write(value)));
                byte[] framed = Connection.replyFrame(pre, continues);

                Map<String, Object> msg = new LinkedHashMap<>();
                msg.put("parameters", Map.of(name, value));
                if (continues) msg.put("continues", true);
                assertArrayEquals(FrameReader.encode(Json.write(msg)), framed, name + " " + continues);
            }
        }
    }

    @Test
    void aPreEncodedValueBesideOthers_goesThroughTheWriter() {
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("results", new Utf8("[1,2]"));
        params.put("count", 2L);
        assertArrayEquals(FrameReader.encode("{\"parameters\":{\"results\":[1,2],\"count\":2}}"),
                Connection.replyFrame(params, false));
    }
}
