package dev.enclavekms.server.varlink;

import dev.enclavekms.json.Json;
import dev.enclavekms.json.JsonException;
import dev.enclavekms.varlink.FrameReader;
import dev.enclavekms.varlink.VarlinkError;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;

/**
 * A varlink server on a Unix-domain stream socket: NUL-terminated JSON messages, one
 * virtual thread per connection, pipelined calls answered in order, {@code more}
 * replies, {@code oneway} calls, and {@code org.varlink.service} built in.
 *
 * <p>Bad input never costs more than the offending call: malformed JSON, invalid
 * UTF-8, an oversized message or an unknown method each get a typed error and the
 * connection keeps being served. A connection whose message never ends is closed
 * after the idle timeout. Only a handler's unexpected exception is logged; the caller
 * gets a generic internal error without the exception's text.
 */
public final class VarlinkServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VarlinkServer.class.getName());
    public static final String SERVICE_INTERFACE = "org.varlink.service";

    /** What {@code GetInfo} reports. */
    public record ServiceInfo(String vendor, String product, String version, String url) { }

    /** Told about every answered call (for logs, metrics and, later, audit). */
    @FunctionalInterface
    public interface CallObserver {
        void called(Peer peer, String method, String error, long nanos);
    }

    private final ServerLimits limits;
    private final Map<String, VarlinkInterface> interfaces = new LinkedHashMap<>();
    private final String errorInterface;
    private final CallObserver observer;
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    private final AtomicLong connectionIds = new AtomicLong();
    private final ExecutorService threads = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("varlink-conn-", 0).factory());
    private final ScheduledExecutorService reaper = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().daemon().name("varlink-idle-reaper").factory());
    private volatile ServerSocketChannel listener;
    private volatile Path boundPath;
    private volatile boolean stopping;
    private Thread acceptor;

    /**
     * @param errorInterface the interface whose {@code InvalidRequest},
     *                       {@code RequestTooLarge} and {@code TooManyConnections}
     *                       errors report protocol-level problems
     */
    public VarlinkServer(ServiceInfo info, List<VarlinkInterface> served, ServerLimits limits,
                         String errorInterface, CallObserver observer) {
        this.limits = limits;
        this.errorInterface = errorInterface;
        this.observer = observer == null ? (p, m, e, n) -> { } : observer;
        VarlinkInterface service = ServiceInterface.create(info, this::interfaceNames, this::description);
        interfaces.put(service.name(), service);
        for (VarlinkInterface i : served) {
            if (interfaces.put(i.name(), i) != null) {
                throw new IllegalArgumentException("interface " + i.name() + " registered twice");
            }
        }
    }

    private List<String> interfaceNames() {
        return new ArrayList<>(interfaces.keySet());
    }

    private String description(String name) {
        VarlinkInterface i = interfaces.get(name);
        return i == null ? null : i.description();
    }

    /**
     * Binds a new socket at {@code path} (replacing a stale socket file) with mode 0660,
     * so that only the owner and the socket's group can connect.
     */
    public void bind(Path path) throws IOException {
        Files.deleteIfExists(path);
        ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        ch.bind(UnixDomainSocketAddress.of(path), 256);
        Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-rw----"));
        this.boundPath = path;
        serve(ch);
    }

    /** Serves an already listening channel (socket activation: {@code System.inheritedChannel()}). */
    public void serve(ServerSocketChannel channel) {
        this.listener = channel;
        long periodMs = Math.max(100, Math.min(1000, limits.idleTimeout().toMillis() / 4));
        reaper.scheduleAtFixedRate(this::closeIdle, periodMs, periodMs, TimeUnit.MILLISECONDS);
        acceptor = Thread.ofPlatform().name("varlink-accept").start(this::acceptLoop);
    }

    public Path boundPath() {
        return boundPath;
    }

    public int connectionCount() {
        return connections.size();
    }

    private void acceptLoop() {
        while (!stopping) {
            SocketChannel ch;
            try {
                ch = listener.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!stopping) {
                    LOG.log(System.Logger.Level.WARNING, "accept failed: " + e.getMessage());
                }
                continue;
            }
            Connection c = new Connection(ch, peerOf(ch));
            if (connections.size() >= limits.maxConnections()) {
                refuse(c);
                continue;
            }
            connections.add(c);
            threads.execute(() -> serveConnection(c));
        }
    }

    private Peer peerOf(SocketChannel ch) {
        long id = connectionIds.incrementAndGet();
        try {
            UnixDomainPrincipal p = ch.getOption(ExtendedSocketOptions.SO_PEERCRED);
            return new Peer(p.user().getName(), p.group().getName(), id);
        } catch (IOException | UnsupportedOperationException e) {
            // Without credentials the caller is nobody in particular: policy will deny it.
            return new Peer("?", "?", id);
        }
    }

    private void refuse(Connection c) {
        try {
            c.sendError(errorInterface + ".TooManyConnections", Map.of(
                    "limit", (long) limits.maxConnections(),
                    "message", "the daemon serves at most " + limits.maxConnections() + " connections at once; try again"));
        } catch (IOException ignored) {
            // the refused client went away already
        }
        c.close();
    }

    private void serveConnection(Connection c) {
        FrameReader reader = new FrameReader(Channels.newInputStream(c.channel()), limits.maxMessageBytes());
        try {
            while (!c.closing()) {
                FrameReader.Frame frame = reader.next();
                if (frame == null) {
                    break;
                }
                c.busy(true);
                try {
                    handleFrame(c, frame);
                } finally {
                    c.busy(false);
                }
            }
        } catch (IOException e) {
            // Peer went away, idle timeout closed the channel, or a message ended without NUL.
            LOG.log(System.Logger.Level.DEBUG, () -> "connection " + c.peer().connectionId() + " ended: " + e.getMessage());
        } finally {
            connections.remove(c);
            c.close();
        }
    }

    private void handleFrame(Connection c, FrameReader.Frame frame) throws IOException {
        switch (frame) {
            case FrameReader.Frame.TooLarge t -> c.sendError(errorInterface + ".RequestTooLarge", Map.of(
                    "limit", (long) limits.maxMessageBytes(),
                    "message", "message of " + t.bytes() + " bytes exceeds the limit of " + limits.maxMessageBytes() + " bytes"));
            case FrameReader.Frame.BadEncoding b -> invalidRequest(c, "message is not valid UTF-8");
            case FrameReader.Frame.Text t -> handleMessage(c, t.json());
        }
    }

    private void invalidRequest(Connection c, String why) throws IOException {
        c.sendError(errorInterface + ".InvalidRequest", Map.of("message", why));
    }

    @SuppressWarnings("unchecked")
    private void handleMessage(Connection c, String json) throws IOException {
        Map<String, Object> msg;
        try {
            Object v = Json.parse(json, limits.maxDepth());
            if (!(v instanceof Map)) {
                invalidRequest(c, "a varlink message must be a JSON object");
                return;
            }
            msg = (Map<String, Object>) v;
        } catch (JsonException e) {
            invalidRequest(c, "malformed JSON: " + e.getMessage());
            return;
        }
        if (!(msg.get("method") instanceof String method)) {
            invalidRequest(c, "the message has no \"method\" string");
            return;
        }
        boolean oneway = Boolean.TRUE.equals(msg.get("oneway"));
        boolean more = Boolean.TRUE.equals(msg.get("more"));
        Object rawParams = msg.get("parameters");
        if (rawParams != null && !(rawParams instanceof Map)) {
            if (!oneway) invalidRequest(c, "\"parameters\" must be an object");
            return;
        }
        long start = System.nanoTime();
        String error = null;
        try {
            Map<String, Object> reply = dispatch(c, method, (Map<String, Object>) rawParams, more, oneway,
                    Boolean.TRUE.equals(msg.get("upgrade")));
            if (!oneway) {
                c.sendReply(reply, false);
            }
        } catch (VarlinkError e) {
            error = e.error();
            if (!oneway) {
                c.sendError(e.error(), e.parameters());
            }
        } finally {
            observer.called(c.peer(), method, error, System.nanoTime() - start);
        }
    }

    private Map<String, Object> dispatch(Connection c, String method, Map<String, Object> params, boolean more,
                                         boolean oneway, boolean upgrade) throws VarlinkError, IOException {
        int dot = method.lastIndexOf('.');
        if (dot <= 0 || dot == method.length() - 1) {
            throw new VarlinkError("org.varlink.service.MethodNotFound", Map.of("method", method));
        }
        VarlinkInterface iface = interfaces.get(method.substring(0, dot));
        if (iface == null) {
            throw new VarlinkError("org.varlink.service.InterfaceNotFound", Map.of("interface", method.substring(0, dot)));
        }
        MethodHandler handler = iface.methods().get(method.substring(dot + 1));
        if (handler == null) {
            throw new VarlinkError("org.varlink.service.MethodNotFound", Map.of("method", method));
        }
        if (upgrade) {
            throw new VarlinkError("org.varlink.service.InvalidParameter", Map.of("parameter", "upgrade"));
        }
        Call call = new Call(iface.name(), method.substring(dot + 1),
                new Params(params, iface.invalidParameterError()), more, oneway, c);
        try {
            Map<String, Object> reply = handler.handle(call);
            return reply == null ? Map.of() : reply;
        } catch (VarlinkError | IOException e) {
            throw e;
        } catch (Exception | StackOverflowError e) {
            // Ours, not the caller's: log it with its stack, tell the caller only that it happened.
            LOG.log(System.Logger.Level.ERROR, "internal error in " + method + " (connection "
                    + c.peer().connectionId() + ")", e);
            throw new VarlinkError(iface.internalError(), Map.of("message", "internal error; see the daemon log"));
        }
    }

    private void closeIdle() {
        long limit = limits.idleTimeout().toNanos();
        for (Connection c : connections) {
            if (!c.busy() && c.idleNanos() > limit) {
                c.close();
            }
        }
    }

    /**
     * Stops accepting, lets calls in flight finish and be answered within {@code drain},
     * then closes every connection.
     */
    public void shutdown(Duration drain) {
        stopping = true;
        try {
            if (listener != null) listener.close();
        } catch (IOException ignored) {
            // nothing left to do with a listener we are closing
        }
        for (Connection c : connections) {
            c.requestClose();
        }
        threads.shutdown();
        try {
            if (!threads.awaitTermination(drain.toMillis(), TimeUnit.MILLISECONDS)) {
                for (Connection c : connections) c.close();
                threads.awaitTermination(1, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        reaper.shutdownNow();
        if (boundPath != null) {
            try {
                Files.deleteIfExists(boundPath);
            } catch (IOException ignored) {
                // a stale socket file is replaced at the next bind
            }
        }
    }

    @Override
    public void close() {
        shutdown(Duration.ofSeconds(5));
    }
}
