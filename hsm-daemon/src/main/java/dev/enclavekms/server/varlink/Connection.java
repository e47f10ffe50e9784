package dev.enclavekms.server.varlink;

import dev.enclavekms.json.Json;
import dev.enclavekms.varlink.FrameReader;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One client connection: its peer, its per-connection state and its reply stream.
 * Calls are read and answered one after another on the connection's own virtual
 * thread, so pipelined calls are answered in the order they were sent.
 */
final class Connection {
    private final SocketChannel channel;
    private final Peer peer;
    private final OutputStream out;
    private final Map<String, Object> attributes = new ConcurrentHashMap<>();
    private volatile long lastActivityNanos = System.nanoTime();
    /** When the write in progress started, 0 when none: a client that stops reading blocks it. */
    private volatile long writeStartedNanos;
    private volatile boolean busy;
    private volatile boolean closing;

    Connection(SocketChannel channel, Peer peer) {
        this.channel = channel;
        this.peer = peer;
        this.out = Channels.newOutputStream(channel);
    }

    SocketChannel channel() {
        return channel;
    }

    Peer peer() {
        return peer;
    }

    Map<String, Object> attributes() {
        return attributes;
    }

    void touch() {
        lastActivityNanos = System.nanoTime();
    }

    long idleNanos() {
        return System.nanoTime() - lastActivityNanos;
    }

    boolean busy() {
        return busy;
    }

    /** How long the write in progress has been blocked, 0 when nothing is being written. */
    long stalledWriteNanos() {
        long started = writeStartedNanos;
        return started == 0 ? 0 : System.nanoTime() - started;
    }

    /**
     * Claims the connection for a call just read; false once a close was requested, and
     * then the call must not run. Together with {@link #requestClose} this decides every
     * call one way: it runs and is answered, or it never runs and the client sees the
     * connection close without a reply.
     */
    synchronized boolean beginCall() {
        if (closing) {
            return false;
        }
        busy = true;
        touch();
        return true;
    }

    synchronized void endCall() {
        busy = false;
        touch();
    }

    /** Asks the connection to close once its current call is answered (drain). */
    void requestClose() {
        boolean idle;
        synchronized (this) {
            closing = true;
            idle = !busy;
        }
        if (idle) {
            close();
        }
    }

    boolean closing() {
        return closing;
    }

    /**
     * Encodes a reply; empty parameters are omitted (systemd's convention).
     *
     * @throws IllegalArgumentException when the parameters hold a value JSON cannot carry
     */
    static byte[] replyFrame(Map<String, Object> parameters, boolean continues) {
        Map<String, Object> msg = new LinkedHashMap<>();
        if (parameters != null && !parameters.isEmpty()) {
            msg.put("parameters", parameters);
        }
        if (continues) {
            msg.put("continues", true);
        }
        return FrameReader.encode(Json.write(msg));
    }

    void sendReply(Map<String, Object> parameters, boolean continues) throws IOException {
        write(replyFrame(parameters, continues));
    }

    void sendError(String error, Map<String, Object> parameters) throws IOException {
        Map<String, Object> msg = new LinkedHashMap<>();
        msg.put("error", error);
        if (parameters != null && !parameters.isEmpty()) {
            msg.put("parameters", parameters);
        }
        write(FrameReader.encode(Json.write(msg)));
    }

    void write(byte[] frame) throws IOException {
        synchronized (out) {
            writeStartedNanos = System.nanoTime() | 1; // never 0 while writing
            try {
                out.write(frame);
            } finally {
                writeStartedNanos = 0;
            }
        }
        touch();
    }

    void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing a socket we are done with: nothing useful to do about a failure
        }
    }
}
