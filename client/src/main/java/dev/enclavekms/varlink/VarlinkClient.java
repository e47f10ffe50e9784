package dev.enclavekms.varlink;

import dev.enclavekms.json.Json;
import dev.enclavekms.json.JsonException;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * A varlink connection over a Unix-domain stream socket. Calls on one connection are
 * serialised (varlink answers in order); open one client per thread for parallelism.
 *
 * <p>Replies are matched to calls only by their order, so once a reply could not be
 * read whole — a malformed or unexpected reply, or a {@code callMore} consumer that
 * threw before the last reply — the connection is closed: reading on would hand one
 * call's reply to the next call. Later calls fail with an {@link IOException}.
 */
public final class VarlinkClient implements AutoCloseable {
    /** Largest reply accepted: a DecryptBatch of 10,000 data keys is about 1.5 MB. */
    public static final int DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024;

    private final SocketChannel channel;
    private final OutputStream out;
    private final FrameReader reader;
    private final ReentrantLock lock = new ReentrantLock();

    private VarlinkClient(SocketChannel channel, int maxReplyBytes) {
        this.channel = channel;
        this.out = Channels.newOutputStream(channel);
        InputStream in = Channels.newInputStream(channel);
        this.reader = new FrameReader(in, maxReplyBytes);
    }

    public static VarlinkClient connect(Path socket) throws IOException {
        return connect(socket, DEFAULT_MAX_REPLY_BYTES);
    }

    public static VarlinkClient connect(Path socket, int maxReplyBytes) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            ch.close();
            throw new IOException("cannot connect to " + socket + ": " + e.getMessage(), e);
        }
        return new VarlinkClient(ch, maxReplyBytes);
    }

    /** Calls {@code method} and returns the reply's parameters (never null). */
    public Map<String, Object> call(String method, Map<String, ?> parameters) throws IOException, VarlinkError {
        lock.lock();
        try (Deadline d = deadline()) {
            send(method, parameters, false, false);
            Reply r = d.check(this::receive);
            if (r.continues()) {
                throw broken(new IOException("server sent a 'continues' reply to a call without 'more'"));
            }
            return r.parameters();
        } finally {
            lock.unlock();
        }
    }

    /**
     * The longest a call may wait for its (first) reply; {@code null} waits for ever (the
     * default). When it passes the connection is closed, since a late reply could no
     * longer be matched to its call, and the call fails with an IOException.
     */
    public void setReplyTimeout(java.time.Duration timeout) {
        this.replyTimeout = timeout;
    }

    private volatile java.time.Duration replyTimeout;
    private static final java.util.concurrent.ScheduledExecutorService TIMER =
            java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
                    Thread.ofPlatform().daemon().name("varlink-client-timeout").factory());

    /** Closes the connection if the call is not answered in time. */
    private final class Deadline implements AutoCloseable {
        private final java.util.concurrent.ScheduledFuture<?> alarm;
        private volatile boolean fired;

        Deadline(java.time.Duration timeout) {
            alarm = timeout == null ? null : TIMER.schedule(() -> {
                fired = true;
                broken(null);
            }, timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        }

        <T> T check(ReplyRead<T> read) throws IOException, VarlinkError {
            try {
                return read.read();
            } catch (IOException e) {
                if (fired) {
                    throw new IOException("no reply within " + replyTimeout.toMillis() + " ms; connection closed", e);
                }
                throw e;
            }
        }

        @Override
        public void close() {
            if (alarm != null) alarm.cancel(false);
        }
    }

    @FunctionalInterface
    private interface ReplyRead<T> {
        T read() throws IOException, VarlinkError;
    }

    private Deadline deadline() {
        return new Deadline(replyTimeout);
    }

    /**
     * Calls {@code method} with {@code more: true}; every reply's parameters go to
     * {@code onReply}, the last one included.
     */
    public void callMore(String method, Map<String, ?> parameters, Consumer<Map<String, Object>> onReply)
            throws IOException, VarlinkError {
        lock.lock();
        try (Deadline d = deadline()) {
            send(method, parameters, true, false);
            while (true) {
                Reply r = d.check(this::receive);
                try {
                    onReply.accept(r.parameters());
                } catch (RuntimeException | Error e) {
                    if (r.continues()) {
                        broken(null); // the rest of the stream is still coming
                    }
                    throw e;
                }
                if (!r.continues()) {
                    return;
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** Sends a call with {@code oneway: true}: the server sends no reply. */
    public void oneway(String method, Map<String, ?> parameters) throws IOException {
        lock.lock();
        try {
            send(method, parameters, false, true);
        } catch (VarlinkError refused) {
            throw new IOException(refused.getMessage(), refused);
        } finally {
            lock.unlock();
        }
    }

    /** Sends raw bytes (tests of malformed input). */
    public void sendRaw(byte[] bytes) throws IOException {
        lock.lock();
        try {
            out.write(bytes);
            out.flush();
        } finally {
            lock.unlock();
        }
    }

    /** Reads one raw reply (tests of malformed input). */
    public Map<String, Object> receiveRaw() throws IOException {
        lock.lock();
        try {
            return readMessage();
        } finally {
            lock.unlock();
        }
    }

    private void send(String method, Map<String, ?> parameters, boolean more, boolean oneway)
            throws IOException, VarlinkError {
        Map<String, Object> msg = new LinkedHashMap<>();
        msg.put("method", method);
        if (parameters != null && !parameters.isEmpty()) {
            msg.put("parameters", parameters);
        }
        if (more) msg.put("more", true);
        if (oneway) msg.put("oneway", true);
        byte[] frame = FrameReader.encode(Json.write(msg));
        try {
            out.write(frame);
            out.flush();
        } catch (IOException e) {
            // A server that refuses the connection (TooManyConnections) says so and closes
            // before our first call: our write fails, but its error waits in the receive buffer.
            VarlinkError refusal = pendingError();
            broken(e); // part of the call may have gone out
            if (refusal != null) {
                throw refusal;
            }
            throw e;
        }
    }

    /** An error reply already received, if there is one; never blocks on a live server (it closed). */
    private VarlinkError pendingError() {
        try {
            FrameReader.Frame f = reader.next();
            if (f instanceof FrameReader.Frame.Text t) {
                Map<String, Object> msg = Json.parseObject(t.json());
                if (msg.get("error") instanceof String error) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> params = msg.get("parameters") instanceof Map<?, ?> p
                            ? (Map<String, Object>) p : Map.of();
                    return new VarlinkError(error, params);
                }
            }
        } catch (IOException | JsonException ignored) {
            // nothing readable: the write failure is the whole story
        }
        return null;
    }

    private record Reply(Map<String, Object> parameters, boolean continues) { }

    /** Reads one reply; {@code parameters} missing, null or {} all give an empty map. */
    @SuppressWarnings("unchecked")
    private Reply receive() throws IOException, VarlinkError {
        Map<String, Object> msg = readMessage();
        Object params = msg.get("parameters");
        Object error = msg.get("error");
        Object continues = msg.get("continues");
        if ((params != null && !(params instanceof Map)) || (error != null && !(error instanceof String))
                || (continues != null && !(continues instanceof Boolean))) {
            throw broken(new IOException("malformed reply from server: \"parameters\" must be an object, "
                    + "\"error\" a string and \"continues\" a boolean"));
        }
        Map<String, Object> p = params == null ? Map.of() : (Map<String, Object>) params;
        if (error != null) {
            throw new VarlinkError((String) error, p);
        }
        return new Reply(p, Boolean.TRUE.equals(continues));
    }

    private Map<String, Object> readMessage() throws IOException {
        FrameReader.Frame f;
        try {
            f = reader.next();
        } catch (IOException e) {
            throw broken(e);
        }
        if (f == null) {
            throw broken(new IOException("connection closed by the server"));
        }
        return switch (f) {
            case FrameReader.Frame.Text t -> {
                try {
                    yield Json.parseObject(t.json());
                } catch (JsonException e) {
                    throw broken(new IOException("malformed reply from server: " + e.getMessage(), e));
                }
            }
            case FrameReader.Frame.TooLarge t -> throw broken(new IOException("reply of " + t.bytes() + " bytes exceeds the limit"));
            case FrameReader.Frame.BadEncoding b -> throw broken(new IOException("reply is not valid UTF-8"));
            case FrameReader.Frame.OverBudget o -> throw broken(new IOException("reply of " + o.bytes()
                    + " bytes exceeds the buffer budget"));
        };
    }

    /** Closes the connection because replies can no longer be matched to calls. */
    private IOException broken(IOException cause) {
        try {
            channel.close();
        } catch (IOException suppressed) {
            if (cause != null) cause.addSuppressed(suppressed);
        }
        return cause;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    /** Convenience for building parameter maps that may contain nulls (omitted). */
    public static Map<String, Object> params(Object... keyValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            if (keyValues[i + 1] != null) {
                m.put((String) keyValues[i], keyValues[i + 1]);
            }
        }
        return m;
    }

}
