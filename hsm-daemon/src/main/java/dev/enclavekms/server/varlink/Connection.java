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

    void busy(boolean b) {
        busy = b;
        touch();
    }

    /** Asks the connection to close once its current call is answered (drain). */
    void requestClose() {
        closing = true;
        if (!busy) {
            close();
        }
    }

    boolean closing() {
        return closing;
    }

    void sendReply(Map<String, Object> parameters, boolean continues) throws IOException {
        Map<String, Object> msg = new LinkedHashMap<>();
        if (parameters != null && !parameters.isEmpty()) {
            msg.put("parameters", parameters);
        }
        if (continues) {
            msg.put("continues", true);
        }
        write(msg);
    }

    void sendError(String error, Map<String, Object> parameters) throws IOException {
        Map<String, Object> msg = new LinkedHashMap<>();
        msg.put("error", error);
        if (parameters != null && !parameters.isEmpty()) {
            msg.put("parameters", parameters);
        }
        write(msg);
    }

    private void write(Map<String, Object> msg) throws IOException {
        byte[] frame = FrameReader.encode(Json.write(msg));
        synchronized (out) {
            out.write(frame);
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
