package dev.enclavekms.varlink;

import dev.enclavekms.json.Json;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link VarlinkClient} against a scripted peer on a real socket: for every call it
 * receives, the peer records it and answers with the next scripted bytes.
 */
class VarlinkClientTest {
    @TempDir
    Path dir;
    private ServerSocketChannel listener;
    private Thread peer;
    private final BlockingQueue<String> received = new LinkedBlockingQueue<>();
    private final BlockingQueue<String> script = new LinkedBlockingQueue<>();
    private VarlinkClient client;

    @BeforeEach
    void start() throws IOException {
        Path socket = dir.resolve("peer.sock");
        listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        listener.bind(UnixDomainSocketAddress.of(socket));
        peer = Thread.ofVirtual().start(this::servePeer);
        client = VarlinkClient.connect(socket);
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        listener.close();
        peer.join(5000);
    }

    /** Serves every connection; a scripted answer ending in {@link #CLOSE} closes it after writing. */
    private void servePeer() {
        while (true) {
            SocketChannel ch;
            try {
                ch = listener.accept();
            } catch (IOException closed) {
                return;
            }
            Thread.ofVirtual().start(() -> serveConnection(ch));
        }
    }

    private void serveConnection(SocketChannel ch) {
        try (ch) {
            FrameReader reader = new FrameReader(Channels.newInputStream(ch), 1 << 20);
            FrameReader.Frame f;
            while ((f = reader.next()) != null) {
                received.add(((FrameReader.Frame.Text) f).json());
                String reply = script.poll(5, TimeUnit.SECONDS);
                if (reply == null) {
                    return;
                }
                boolean close = reply.endsWith(CLOSE);
                ch.write(ByteBuffer.wrap(reply.replace(CLOSE, "").getBytes(StandardCharsets.UTF_8)));
                if (close) {
                    return;
                }
            }
        } catch (IOException | InterruptedException e) {
            // the client went away
        }
    }

    private static final String CLOSE = "<close>";

    /** Scripts the raw bytes answering the next call ("" for no answer). */
    private void answer(String raw) {
        script.add(raw);
    }

    private String nextReceived() throws InterruptedException {
        String s = received.poll(5, TimeUnit.SECONDS);
        if (s == null) throw new AssertionError("the peer received nothing");
        return s;
    }

    @Test
    void call_emptyOrNullParametersOmitted_replyParametersMissingNullOrEmptyAllEmpty() throws Exception {
        answer("{}\0");
        answer("{\"parameters\":null}\0");
        answer("{\"parameters\":{}}\0");
        assertEquals(Map.of(), client.call("a.B", null));
        assertEquals(Map.of(), client.call("a.B", Map.of()));
        assertEquals(Map.of(), client.call("a.B", VarlinkClient.params("x", null)));
        for (int i = 0; i < 3; i++) {
            assertEquals("{\"method\":\"a.B\"}", nextReceived());
        }
    }

    @Test
    void call_floatsIntsAndNullsKeepTheirJsonForm() throws Exception {
        answer("{\"parameters\":{\"f\":1,\"g\":1.0,\"n\":null}}\0");
        Map<String, Object> r = client.call("a.B", Map.of("f", 1.0, "pi", Math.PI, "i", 2L));
        assertEquals(1L, r.get("f"));
        assertEquals(1.0, r.get("g"));
        assertTrue(r.containsKey("n"));
        Map<String, Object> sent = Json.parseObject(nextReceived());
        assertEquals(Map.of("f", 1.0, "pi", Math.PI, "i", 2L), sent.get("parameters"));
    }

    @Test
    void callMoreAndOneway_flagsOnTheWire() throws Exception {
        answer("{\"parameters\":{\"i\":1},\"continues\":true}\0{\"parameters\":{\"i\":2}}\0");
        List<Object> seen = new ArrayList<>();
        client.callMore("a.B", Map.of("n", 2L), r -> seen.add(r.get("i")));
        assertEquals(List.of(1L, 2L), seen);
        assertEquals("{\"method\":\"a.B\",\"parameters\":{\"n\":2},\"more\":true}", nextReceived());

        answer("");
        client.oneway("a.C", null);
        assertEquals("{\"method\":\"a.C\",\"oneway\":true}", nextReceived());
    }

    @Test
    void errorReply_varlinkErrorWithNameAndMessage() throws Exception {
        answer("{\"error\":\"a.Failed\",\"parameters\":{\"message\":\"it failed\",\"key\":\"k\"}}\0");
        VarlinkError e = assertThrows(VarlinkError.class, () -> client.call("a.B", null));
        assertEquals("a.Failed", e.error());
        assertEquals("it failed", e.humanMessage());
        assertEquals("k", e.parameters().get("key"));
        answer("{\"parameters\":{\"ok\":true}}\0");
        assertEquals(Map.of("ok", true), client.call("a.B", null), "an error reply leaves the connection usable");
    }

    @Test
    void continuesReplyToPlainCall_ioException_connectionClosedInsteadOfDesynchronised() throws Exception {
        answer("{\"parameters\":{\"i\":1},\"continues\":true}\0{\"parameters\":{\"i\":2}}\0");
        IOException e = assertThrows(IOException.class, () -> client.call("a.B", null));
        assertTrue(e.getMessage().contains("'continues'"), e.getMessage());
        // Without closing, this call would get {"i":2}, the rest of the first call's stream.
        assertThrows(IOException.class, () -> client.call("a.C", null));
    }

    @Test
    void malformedReplies_ioException_connectionClosed() throws Exception {
        for (String bad : List.of("{\"parameters\":\0", "[]\0", "{\"error\":42}\0", "{\"parameters\":[1]}\0",
                "{\"continues\":\"yes\"}\0", "\"\uD800\"\0")) {
            try (VarlinkClient c = VarlinkClient.connect(dir.resolve("peer.sock"))) {
                answer(bad);
                IOException e = assertThrows(IOException.class, () -> c.call("a.B", null), bad);
                assertTrue(e.getMessage().contains("malformed reply"), e.getMessage());
                assertThrows(IOException.class, () -> c.call("a.B", null), "the connection was closed");
            }
        }
    }

    @Test
    void consumerThrowsMidStream_connectionClosed() throws Exception {
        answer("{\"parameters\":{\"i\":1},\"continues\":true}\0{\"parameters\":{\"i\":2}}\0");
        assertThrows(IllegalStateException.class, () -> client.callMore("a.B", null, r -> {
            throw new IllegalStateException("consumer bug");
        }));
        assertThrows(IOException.class, () -> client.call("a.C", null));
    }

    @Test
    void peerClosesMidReply_ioException() throws Exception {
        answer("{\"parameters\":" + CLOSE);
        IOException e = assertThrows(IOException.class, () -> client.call("a.B", null));
        assertTrue(e.getMessage().contains("no NUL terminator"), e.getMessage());
    }

    @Test
    void peerClosesBeforeReplying_ioException() throws Exception {
        answer(CLOSE);
        IOException e = assertThrows(IOException.class, () -> client.call("a.B", null));
        assertTrue(e.getMessage().contains("connection closed by the server"), e.getMessage());
    }

    @Test
    void replyTimeout_peerSilent_failsAndClosesTheConnection() {
        client.setReplyTimeout(java.time.Duration.ofMillis(200));
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> client.call("org.example.Slow", Map.of()));
        assertTrue(e.getMessage().contains("no reply within 200 ms"), e.getMessage());
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(4), "did not wait for the peer");
        assertThrows(IOException.class, () -> client.call("org.example.Again", Map.of()), "the connection is closed");
    }

    @Test
    void replyTimeout_answeredInTime_isCancelled() throws Exception {
        client.setReplyTimeout(java.time.Duration.ofSeconds(5));
        script.add("{\"parameters\":{\"ok\":true}}\u0000");
        assertEquals(Map.of("ok", true), client.call("org.example.Fast", Map.of()));
    }
}
