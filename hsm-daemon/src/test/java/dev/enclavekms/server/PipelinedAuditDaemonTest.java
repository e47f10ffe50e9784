package dev.enclavekms.server;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.json.Json;
import dev.enclavekms.testing.InProcessDaemon;
import dev.enclavekms.varlink.FrameReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pipelined data-plane calls through a real daemon, real token and real audit log, at the
 * wire: their records are made durable by the log's group commit, which then releases their
 * replies (AuditLog.appendThen). Each reply arrives in order and only after its record is in
 * the file; and when the log cannot be written, every pipelined call gets AuditUnavailable
 * instead of its reply.
 */
@Timeout(120)
class PipelinedAuditDaemonTest {
    private static final String ENCRYPT = "dev.enclavekms.Kms.Encrypt";
    private static final int CALLS = 64;

    @TempDir
    Path dir;

    /** Sends {@code n} Encrypt calls of key {@code key} in one write, as a pipelining client does. */
    private static void pipeline(SocketChannel ch, String key, int n) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int k = 0; k < n; k++) {
            Map<String, Object> call = new LinkedHashMap<>();
            call.put("method", ENCRYPT);
            call.put("parameters", Map.of("key", key,
                    "plaintext", Base64.getEncoder().encodeToString(("secret " + k).getBytes())));
            out.writeBytes(FrameReader.encode(Json.write(call)));
        }
        Channels.newOutputStream(ch).write(out.toByteArray());
    }

    private static SocketChannel connect(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        ch.connect(UnixDomainSocketAddress.of(socket));
        return ch;
    }

    /** Encrypt records of {@code key} in the log's files now (the file being written ends in zero padding). */
    private long encryptRecords(String key) throws IOException {
        long n = 0;
        for (Path f : dev.enclavekms.audit.AuditLog.logFiles(dir.resolve("audit"))) {
            for (String line : Files.readString(f).split("\n")) {
                if (line.contains("\"method\":\"" + ENCRYPT + "\"") && line.contains("\"key\":\"" + key + "\"")
                        && line.contains("\"outcome\":\"ok\"")) {
                    n++;
                }
            }
        }
        return n;
    }

    @Test
    void pipelinedCalls_answeredInOrder_eachRecordDurableBeforeItsReplyIsRead() throws Exception {
        try (InProcessDaemon d = InProcessDaemon.start(dir, "pipelined-audit", Clock.systemUTC());
             KmsClient admin = d.client();
             SocketChannel ch = connect(d.socket())) {
            admin.createKey("pipe", "ENCRYPT");
            pipeline(ch, "pipe", CALLS);
            FrameReader replies = new FrameReader(Channels.newInputStream(ch), 1 << 20);
            for (int k = 0; k < CALLS; k++) {
                String reply = assertInstanceOf(FrameReader.Frame.Text.class, replies.next()).json();
                Map<String, Object> msg = Json.parseObject(reply);
                assertEquals("pipe", ((Map<?, ?>) msg.get("parameters")).get("key"), reply);
                // Replies leave in order, each after its own record: k + 1 records are on disk.
                long onDisk = encryptRecords("pipe");
                assertTrue(onDisk >= k + 1, "reply " + k + " read with only " + onDisk + " records on disk");
            }
            // Decrypting each ciphertext in turn would show the order too; the count and the key suffice here.
            assertEquals(CALLS, encryptRecords("pipe"));
        }
    }

    @Test
    void unwritableAuditLog_everyPipelinedCallGetsAuditUnavailable_noReplyLeaves() throws Exception {
        try (InProcessDaemon d = InProcessDaemon.start(dir, "pipelined-audit-down", Clock.systemUTC());
             KmsClient admin = d.client();
             SocketChannel ch = connect(d.socket())) {
            admin.createKey("pipe", "ENCRYPT");
            // The log's directory vanishes and a file takes its place: the next write is not in
            // place, and no new file can be made there, so the log stays unwritable.
            Files.move(dir.resolve("audit"), dir.resolve("audit-moved"));
            Files.writeString(dir.resolve("audit"), "not a directory");
            pipeline(ch, "pipe", CALLS);
            FrameReader replies = new FrameReader(Channels.newInputStream(ch), 1 << 20);
            for (int k = 0; k < CALLS; k++) {
                String reply = assertInstanceOf(FrameReader.Frame.Text.class, replies.next()).json();
                assertEquals("dev.enclavekms.Kms.AuditUnavailable", Json.parseObject(reply).get("error"),
                        "call " + k + ": " + reply);
            }
        }
    }
}
