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
import java.nio.file.StandardCopyOption;
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
 * connection keeps being served. A connection whose message never ends, or that stops
 * reading its replies, is closed after the idle timeout. Only a handler's unexpected
 * exception is logged; the caller gets a generic internal error without the
 * exception's text. A {@code oneway} call is never answered, not even with an error.
 */
public final class VarlinkServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VarlinkServer.class.getName());
    public static final String SERVICE_INTERFACE = "org.varlink.service";
    private static final List<String> FLAGS = List.of("more", "oneway", "upgrade");
    /** Longer than any real interface.Method name; bounds what an error echoes back. */
    private static final int MAX_METHOD_LENGTH = 255;
    /**
     * Calls of one connection that may run at the same time (pipelining): beyond it the
     * connection's reader waits, and the client's writes back up in the socket.
     */
    static final int MAX_CALLS_IN_FLIGHT = 16;
    /**
     * Larger messages (batches) run alone: a connection's concurrent calls then hold at most
     * {@code MAX_CALLS_IN_FLIGHT} × 64 KiB of parsed messages.
     */
    private static final int MAX_CONCURRENT_MESSAGE_CHARS = 64 * 1024;
    private static final int READ_CHUNK_BYTES = 4 * 1024;
    /** The JDK property that chooses how virtual threads wait for socket I/O (read once, at the first such wait). */
    public static final String POLLER_MODE = "jdk.pollerMode";

    /*
     * A connection's reader waits for its client's next call in the JDK's poller. JDK 25's
     * default on Linux ("VTHREAD_POLLERS") runs the pollers as virtual threads behind a
     * master poller thread, so a call arriving on an idle connection wakes the master, which
     * schedules a poller virtual thread, which schedules the reader: per call two epoll_wait
     * and one epoll_ctl more, and a carrier woken once more, than with a platform poller
     * thread ("SYSTEM_THREADS", mode 1) that schedules the reader directly. Calls arriving
     * one by one pay that on every call (docs/performance.md, "Calls arriving one by one
     * (session 6)"). Set before the first connection is read; an explicit -Djdk.pollerMode
     * (ENCLAVE_KMS_JAVA_OPTS) wins, and a JDK without the property ignores it. The daemon
     * with --audit-durability=none keeps the JDK's default (Main.jdkPollerMode): without a
     * flush per lone call, the virtual-thread pollers answer one sooner.
     */
    static {
        if (System.getProperty(POLLER_MODE) == null) {
            System.setProperty(POLLER_MODE, "1");
        }
    }

    /** Where a call's reply frames go: straight to the socket, or into its place in the reply order. */
    @FunctionalInterface
    private interface Replies {
        void send(byte[] frame) throws IOException;
    }

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
    private final CallInterceptor interceptor;
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    /** Connections per peer user, for maxConnectionsPerUser without a scan of every connection. */
    private final Map<String, Integer> perUser = new ConcurrentHashMap<>();
    private final AtomicLong connectionIds = new AtomicLong();
    private final ExecutorService threads = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("varlink-conn-", 0).factory());
    private final ScheduledExecutorService reaper = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().daemon().name("varlink-idle-reaper").factory());
    /** Message-buffer memory shared by all connections (see ServerLimits.maxBufferedBytes). */
    private final java.util.concurrent.atomic.AtomicLong buffered = new java.util.concurrent.atomic.AtomicLong();
    private final FrameReader.Budget budget = new FrameReader.Budget() {
        @Override
        public boolean tryTake(long bytes) {
            while (true) {
                long now = buffered.get();
                if (now + bytes > limits.maxBufferedBytes()) return false;
                if (buffered.compareAndSet(now, now + bytes)) return true;
            }
        }

        @Override
        public void give(long bytes) {
            buffered.addAndGet(-bytes);
        }
    };
    /**
     * Platform threads for handlers of offloaded interfaces (those that call into native
     * device code): a native call pins the virtual thread's carrier, and a few slow device
     * calls would otherwise stall every connection, even calls that never touch the device.
     */
    private final ExecutorService workers;
    /**
     * Concurrent calls in flight on all connections together. A call that finds none besides
     * itself runs whole on one thread, its reader's or a worker (see {@link #runWhole}): on a
     * quiet daemon a thread hand-off may wake an idle vCPU, while under load the CPUs are
     * awake anyway and the per-call threads spread the work. It also means at most one whole
     * call at a time: a thread blocked on a client that stopped reading, or on the audit log,
     * is one.
     */
    private final java.util.concurrent.atomic.AtomicInteger concurrentCalls = new java.util.concurrent.atomic.AtomicInteger();
    /**
     * Whether the daemon's lone device call may run on its connection's reader (see
     * {@link #serveConnection}). Its device call and the audit flush then pin the reader's
     * carrier thread; with one carrier that would stall every other connection meanwhile.
     */
    static final boolean READER_RUNS_LONE_CALLS = Integer.getInteger("jdk.virtualThreadScheduler.parallelism",
            Runtime.getRuntime().availableProcessors()) >= 2;
    /**
     * A lone call is running on its reader. One at a time, released only when its device call
     * returns (not when the reaper answers it): a hung device pins at most one carrier.
     */
    private final java.util.concurrent.atomic.AtomicBoolean readerCall = new java.util.concurrent.atomic.AtomicBoolean();
    private volatile ServerSocketChannel listener;
    /** True when bind() created the listener: only then does shutdown close and unlink it. */
    private volatile boolean ownsListener;
    private volatile java.nio.channels.Selector acceptSelector;
    private volatile Object boundFileKey;
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
        this(info, served, limits, errorInterface, observer, CallInterceptor.NONE);
    }

    /**
     * @param interceptor sees every call to a served interface before its reply is written,
     *                    and may refuse it (see {@link CallInterceptor}): the audit log
     */
    public VarlinkServer(ServiceInfo info, List<VarlinkInterface> served, ServerLimits limits,
                         String errorInterface, CallObserver observer, CallInterceptor interceptor) {
        this.limits = limits;
        this.errorInterface = errorInterface;
        this.observer = observer == null ? (p, m, e, n) -> { } : observer;
        this.interceptor = interceptor == null ? CallInterceptor.NONE : interceptor;
        this.workers = Executors.newFixedThreadPool(Math.max(4, Runtime.getRuntime().availableProcessors() * 2),
                Thread.ofPlatform().daemon().name("varlink-worker-", 0).factory());
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
     *
     * <p>The socket is bound under a temporary name, given its mode, then renamed into
     * place: bound directly, it would be connectable with the umask's mode until the
     * chmod, and the rename also replaces a stale socket without a moment of absence.
     */
    public void bind(Path path) throws IOException {
        refuseIfServed(path);
        Path staging = path.resolveSibling(path.getFileName() + "~");
        Files.deleteIfExists(staging);
        ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.bind(UnixDomainSocketAddress.of(staging), 256);
            Files.setPosixFilePermissions(staging, PosixFilePermissions.fromString("rw-rw----"));
            Files.move(staging, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            ch.close();
            Files.deleteIfExists(staging);
            throw e;
        }
        this.boundPath = path;
        this.boundFileKey = Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
        try {
            serve(ch);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        ownsListener = true;
    }

    /** Another live server on this path must not be silently replaced (a stale file may be). */
    private static void refuseIfServed(Path path) throws IOException {
        if (!Files.exists(path)) {
            return;
        }
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.connect(UnixDomainSocketAddress.of(path));
        } catch (IOException stale) {
            return; // nobody answers: a leftover of a process that died
        }
        throw new IOException("another process is serving on " + path + "; refusing to take over its socket");
    }

    /**
     * Serves an already listening channel (socket activation: {@code System.inheritedChannel()}).
     * The caller keeps the channel: {@link #shutdown} stops accepting from it but neither
     * closes it nor removes its file. Connections that arrive after that stay in the
     * socket's backlog for the next process the service manager starts on it. (Closing an
     * inherited channel would also make the JDK point file descriptors 0, 1 and 2 at
     * /dev/null, swallowing the rest of the shutdown's log.)
     */
    public void serve(ServerSocketChannel channel) throws IOException {
        // Non-blocking accept behind a selector: shutdown can wake the acceptor without
        // closing the channel, and without the acceptor taking a connection off the backlog.
        java.nio.channels.Selector selector = java.nio.channels.Selector.open();
        try {
            channel.configureBlocking(false);
            channel.register(selector, java.nio.channels.SelectionKey.OP_ACCEPT);
        } catch (IOException | RuntimeException e) {
            selector.close();
            throw e;
        }
        this.listener = channel;
        this.acceptSelector = selector;
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
        try (java.nio.channels.Selector selector = acceptSelector) {
            acceptUntilStopping(selector);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.ERROR, "accept loop ended: " + e.getMessage());
        }
    }

    private void acceptUntilStopping(java.nio.channels.Selector selector) throws IOException {
        while (!stopping) {
            selector.select();
            selector.selectedKeys().clear();
            if (stopping) {
                return;
            }
            SocketChannel ch;
            try {
                ch = listener.accept(); // accepted channels are in blocking mode
                if (ch == null) {
                    continue; // another process on the same socket took it
                }
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!stopping) {
                    LOG.log(System.Logger.Level.WARNING, "accept failed: " + e.getMessage());
                    // e.g. out of file descriptors: back off instead of spinning on the error
                    java.util.concurrent.locks.LockSupport.parkNanos(100_000_000L);
                }
                continue;
            }
            Connection c = new Connection(ch, peerOf(ch));
            if (stopping) {
                c.close(); // accepted while shutting down: nobody would serve it
                return;
            }
            if (connections.size() >= limits.maxConnections()) {
                refuse(c, limits.maxConnections(), "the daemon serves at most " + limits.maxConnections()
                        + " connections at once; try again");
                continue;
            }
            int mine = perUser.getOrDefault(c.peer().user(), 0);
            if (mine >= limits.maxConnectionsPerUser()) {
                refuse(c, limits.maxConnectionsPerUser(), "user " + c.peer().user() + " already holds "
                        + limits.maxConnectionsPerUser() + " connections, the most one user may hold; close some");
                continue;
            }
            perUser.merge(c.peer().user(), 1, Integer::sum);
            connections.add(c);
            try {
                threads.execute(() -> serveConnection(c));
            } catch (java.util.concurrent.RejectedExecutionException shuttingDown) {
                forget(c);
                c.close();
                return;
            }
        }
    }

    private Peer peerOf(SocketChannel ch) {
        long id = connectionIds.incrementAndGet();
        try {
            UnixDomainPrincipal p = ch.getOption(ExtendedSocketOptions.SO_PEERCRED);
            return new Peer(p.user().getName(), p.group().getName(), id);
        } catch (IOException | UnsupportedOperationException e) {
            // Without credentials the caller is nobody in particular: policy will deny it.
            return new Peer(Peer.UNKNOWN, Peer.UNKNOWN, id);
        }
    }

    /**
     * Tells a connection over the limit why it is closed. The error is sent at once, before
     * the client's first call, so a client reads it as the reply to that call.
     */
    private void refuse(Connection c, int limit, String why) {
        try {
            c.sendError(errorInterface + ".TooManyConnections", Map.of("limit", (long) limit, "message", why));
        } catch (IOException ignored) {
            // the refused client went away already
        }
        c.close();
    }

    private void forget(Connection c) {
        if (connections.remove(c)) {
            perUser.computeIfPresent(c.peer().user(), (user, n) -> n <= 1 ? null : n - 1);
        }
    }

    /**
     * Reads the connection's calls. A call of a {@linkplain VarlinkInterface#concurrentMethods()
     * concurrent method} runs off this thread (at most {@value #MAX_CALLS_IN_FLIGHT} at once):
     * a device call on a device worker (see {@link #runDevicePart}), any other on a virtual
     * thread of its own; its reply is queued in the connection's reply order. Any other
     * message waits until every earlier reply is written and is then handled here, so the
     * calls after it also wait for it.
     */
    @SuppressWarnings("unchecked")
    private void serveConnection(Connection c) {
        // 4 KiB reads: every connection holds its chunk while idle (10,000 idle connections: 40 MB, not 160).
        FrameReader reader = new FrameReader(Channels.newInputStream(c.channel()), limits.maxMessageBytes(), budget,
                READ_CHUNK_BYTES);
        java.util.concurrent.Semaphore inFlight = new java.util.concurrent.Semaphore(MAX_CALLS_IN_FLIGHT);
        try {
            while (!c.closing()) {
                FrameReader.Frame frame = reader.next();
                if (frame == null) {
                    break;
                }
                Object parsed = frame instanceof FrameReader.Frame.Text t ? parse(t.json()) : null;
                if (!c.beginCall()) {
                    break; // shutting down: this call is not run, the client sees the connection close
                }
                if (parsed != null && concurrent(parsed, ((FrameReader.Frame.Text) frame).json())) {
                    inFlight.acquireUninterruptibly();
                    Connection.Slot slot = c.reserve();
                    boolean lone = concurrentCalls.incrementAndGet() == 1;
                    // concurrentCalls drops just before the reply is written (see leaving()), so a
                    // client that calls again as soon as it has its answer finds the daemon idle.
                    Runnable answered = () -> {
                        inFlight.release();
                        c.endCall();
                    };
                    // The daemon's only call in flight runs whole: here when nothing is pipelined
                    // behind it (the price: if its device call hangs, this connection's later calls
                    // wait for the device; the reaper still answers this one at its deadline), else
                    // on a worker. Any other device call goes to a worker for its first half.
                    VarlinkInterface device = deviceInterface(parsed);
                    if (device != null) {
                        WorkerCall w = new WorkerCall(c, (Map<String, Object>) parsed, device, slot, answered,
                                System.nanoTime() + limits.callTimeout().toNanos());
                        if (lone && READER_RUNS_LONE_CALLS && !reader.hasBuffered()
                                && readerCall.compareAndSet(false, true)) {
                            // The daemon's only call, with nothing pipelined behind it: run here.
                            slot.onWorker(w); // the reaper answers it past its deadline
                            try {
                                runWhole(w);
                            } finally {
                                readerCall.set(false); // only now: the device call has returned
                            }
                            continue;
                        }
                        try {
                            workers.execute(lone ? () -> runWhole(w) : () -> runDevicePart(w));
                            slot.onWorker(w); // from now on the reaper answers it past its deadline
                            continue;
                        } catch (java.util.concurrent.RejectedExecutionException shuttingDown) {
                            // answered below, on a virtual thread
                        }
                    }
                    Runnable run = () -> {
                        byte[][] reply = new byte[1][];
                        try {
                            handleMessage(c, parsed, f -> reply[0] = f, null);
                        } catch (IOException | RuntimeException e) {
                            failedWithoutReply(c, e);
                        } finally {
                            leaving();
                            c.complete(slot, reply[0], answered);
                        }
                    };
                    startCallThread(run);
                    continue;
                }
                try {
                    c.awaitReplies();
                    handleFrame(c, frame, parsed, c::write);
                } finally {
                    c.endCall();
                }
            }
        } catch (IOException e) {
            // Peer went away, idle timeout closed the channel, or a message ended without NUL.
            LOG.log(System.Logger.Level.DEBUG, () -> "connection " + c.peer().connectionId() + " ended: " + e.getMessage());
        } finally {
            reader.release();
            try {
                c.awaitReplies(); // the calls still running are answered before the connection closes
            } catch (IOException ignored) {
                // the connection is broken already
            }
            forget(c);
            c.close();
        }
    }

    /** The message parsed (a JSON value), or the JsonException that says why it is not JSON. */
    private Object parse(String json) {
        try {
            return Json.parse(json, limits.maxDepth());
        } catch (JsonException e) {
            return e;
        }
    }

    /** Whether a parsed message is a plain call (no more, oneway or upgrade) of a concurrent method. */
    private boolean concurrent(Object parsed, String json) {
        if (!(parsed instanceof Map<?, ?> msg) || json.length() > MAX_CONCURRENT_MESSAGE_CHARS
                || !(msg.get("method") instanceof String method)) {
            return false;
        }
        for (String flag : FLAGS) {
            if (msg.get(flag) != null && !Boolean.FALSE.equals(msg.get(flag))) {
                return false;
            }
        }
        int dot = method.lastIndexOf('.');
        if (dot <= 0) {
            return false;
        }
        VarlinkInterface iface = interfaces.get(method.substring(0, dot));
        return iface != null && iface.concurrentMethods().contains(method.substring(dot + 1));
    }

    /**
     * The interface of a concurrent call that runs whole on a device worker: an offloaded
     * interface's plain (not streaming) method; else null.
     */
    private VarlinkInterface deviceInterface(Object parsed) {
        String method = (String) ((Map<?, ?>) parsed).get("method");
        int dot = method.lastIndexOf('.');
        VarlinkInterface iface = interfaces.get(method.substring(0, dot));
        return iface.offloaded() && !(iface.methods().get(method.substring(dot + 1)) instanceof MethodHandler.Streaming)
                ? iface : null;
    }

    /**
     * Runs the daemon's lone device call whole on this thread — dispatch, the device call, the
     * audit record, the reply. This thread is the connection's reader when nothing is
     * pipelined behind the call and no other call runs on a reader (no hand-off at all: a lone
     * unwrap with audit off measured p50 164 → 42 µs), and then writes the reply too; else a
     * device worker, which leaves the write to the connection's writer (a worker never writes
     * to a client). The call timeout is kept by
     * {@link #answerOverdue}: a call still queued or running at its deadline is answered with
     * an error by the reaper, and this thread then drops whatever it produces.
     */
    private void runWhole(WorkerCall w) {
        if (!w.start()) {
            return; // answered already: it waited in the queue past its deadline
        }
        Connection c = w.connection();
        byte[][] reply = new byte[1][];
        try {
            handleMessage(c, w.message(), f -> reply[0] = f, w);
        } catch (IOException | RuntimeException e) {
            if (w.settle()) {
                LOG.log(System.Logger.Level.WARNING, "call on connection " + c.peer().connectionId()
                        + " failed without a reply; closing the connection: " + e);
                c.close();
            }
        } finally {
            if (w.settle()) {
                leaving();
                if (Thread.currentThread().isVirtual()) {
                    // On the connection's own reader: written here. A client that stops
                    // reading blocks only its own reader, until the idle timeout closes it.
                    c.complete(w.slot(), reply[0], w.answered());
                } else {
                    // On a device worker: never a socket write. A client that stops reading
                    // would hold the worker — and the device calls queued behind it — until
                    // the idle timeout (five minutes by default), and a few such clients
                    // every worker.
                    c.completeOffThread(w.slot(), reply[0], w.answered());
                }
            }
        }
    }

    /**
     * A pipelined device call, from this worker: validation, admission, dispatch and the
     * device call run here; the audit record is handed to the interceptor without waiting for
     * it ({@link CallInterceptor#completedThen}), and whichever thread makes it durable (the
     * audit log's group commit) gives the reply to the connection, which writes it on a
     * thread of its own ({@link Connection#completeOffThread}). So a worker never waits for
     * the disk or for a client's socket, and no thread is started and parked per call to wait
     * for the record. The call timeout is kept as for {@link #runWhole}, by the reaper, up to
     * the end of the device call (a call it timed out is dropped here, unrecorded again); the
     * wait for the record is bounded by the audit log (its maxWait, as for a waiting caller).
     */
    private void runDevicePart(WorkerCall w) {
        if (!w.start()) {
            return; // answered already: it waited in the queue past its deadline
        }
        Connection c = w.connection();
        byte[][] reply = new byte[1][];
        Ran ran;
        try {
            ran = run(c, w.message(), f -> reply[0] = f, true);
        } catch (IOException | RuntimeException e) {
            if (w.settle()) {
                failedWithoutReply(c, e);
                leaving();
                c.completeOffThread(w.slot(), null, w.answered());
            }
            return;
        }
        if (ran == null) {
            // Bad input, answered in reply[0] without reaching the interceptor: nothing to record.
            if (w.settle()) {
                leaving();
                c.completeOffThread(w.slot(), reply[0], w.answered());
            }
            return;
        }
        if (!w.settle()) {
            return; // timed out meanwhile: answered and recorded as failed by the reaper
        }
        VarlinkError failure = ran.failure();
        if (ran.gate() == null) {
            answerSplit(ran, w, failure);
        } else if (failure == null) {
            ran.gate().succeededThen(ran.reply().parameters(), refused -> answerSplit(ran, w, refused));
        } else {
            ran.gate().failedThen(failure.error(), refused -> answerSplit(ran, w, refused != null ? refused : failure));
        }
    }

    /**
     * Answers a split call once its record is settled ({@code sent}: null for its reply, else
     * the error it gets), on the thread that settled it. Never blocks: the reply is written
     * by the connection's own writer.
     */
    private void answerSplit(Ran ran, WorkerCall w, VarlinkError sent) {
        Connection c = ran.c();
        try {
            observer.called(c.peer(), ran.method(), sent == null ? null : sent.error(), System.nanoTime() - ran.start());
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "call observer failed on " + ran.method(), e);
        }
        leaving();
        byte[] frame = ran.oneway() ? null
                : sent == null ? ran.reply().frame() : Connection.errorFrame(sent.error(), sent.parameters());
        c.completeOffThread(w.slot(), frame, w.answered());
    }

    /**
     * Starts a call's thread. Not through an executor: a thread-per-task executor tracks
     * every thread in a concurrent set (an insert and a removal per call, measured at 6 % of
     * the daemon's CPU at 16 × 8), and nothing needs that set — a connection's reader waits
     * for its calls' replies before it ends, and shutdown waits for the readers.
     */
    private static void startCallThread(Runnable call) {
        Thread.startVirtualThread(call);
    }

    /** No reply to give: closing is the only answer that keeps the client in step. */
    private static void failedWithoutReply(Connection c, Exception e) {
        LOG.log(System.Logger.Level.WARNING, "call on connection " + c.peer().connectionId()
                + " failed without a reply; closing the connection: " + e);
        c.close();
    }

    /** A data-plane call is about to be answered: it no longer counts against "lone". */
    private void leaving() {
        concurrentCalls.decrementAndGet();
    }

    /** Answers, with an internal error, the calls on workers that passed the call timeout (from the reaper). */
    private void answerOverdue() {
        long now = System.nanoTime();
        for (Connection c : connections) {
            for (WorkerCall w : c.timeOutOverdue(now)) {
                try {
                    threads.execute(() -> answerTimedOut(w));
                } catch (java.util.concurrent.RejectedExecutionException shuttingDown) {
                    answerTimedOut(w);
                }
            }
        }
    }

    /**
     * As a call waiting for its worker did before: the interceptor sees it fail (the audit
     * record), the caller gets an internal error. Not started yet (queued behind a hung device),
     * it never runs; already running, the device may still finish it, unanswered.
     */
    private void answerTimedOut(WorkerCall w) {
        Connection c = w.connection();
        String method = (String) w.message().get("method");
        String why = method + " did not finish within " + limits.callTimeout().toSeconds() + " s; the device may be hung";
        LOG.log(System.Logger.Level.ERROR, why);
        VarlinkError sent = new VarlinkError(w.iface().internalError(), Map.of("message", why));
        @SuppressWarnings("unchecked")
        Map<String, Object> params = w.message().get("parameters") instanceof Map<?, ?> p
                ? (Map<String, Object>) p : Map.of();
        try {
            interceptor.completed(new CallInterceptor.CompletedCall(c.peer(), c.attributes(), method, params, null,
                    sent.error(), false));
        } catch (VarlinkError refused) {
            sent = refused;
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "call interceptor failed on " + method, e);
        }
        observer.called(c.peer(), method, sent.error(), System.nanoTime() - w.startNanos());
        leaving();
        c.complete(w.slot(), Connection.errorFrame(sent.error(), sent.parameters()), w.answered());
    }

    private void handleFrame(Connection c, FrameReader.Frame frame, Object parsed, Replies out) throws IOException {
        switch (frame) {
            case FrameReader.Frame.TooLarge t -> out.send(Connection.errorFrame(errorInterface + ".RequestTooLarge", Map.of(
                    "limit", (long) limits.maxMessageBytes(),
                    "message", "message of " + t.bytes() + " bytes exceeds the limit of " + limits.maxMessageBytes() + " bytes")));
            case FrameReader.Frame.BadEncoding b -> invalidRequest(out, "message is not valid UTF-8");
            case FrameReader.Frame.OverBudget o -> out.send(Connection.errorFrame(errorInterface + ".RequestTooLarge", Map.of(
                    "limit", (long) limits.maxMessageBytes(),
                    "message", "message of " + o.bytes() + " bytes refused: the daemon's buffers for incoming"
                            + " messages are full; retry later or send smaller batches")));
            case FrameReader.Frame.Text t -> handleMessage(c, parsed, out, null);
        }
    }

    private void invalidRequest(Replies out, String why) throws IOException {
        out.send(Connection.errorFrame(errorInterface + ".InvalidRequest", Map.of("message", why)));
    }

    /**
     * Validates, dispatches and answers one message. {@code onWorker} is the call's
     * {@link WorkerCall} when this thread is its device worker (null otherwise): the handler
     * then runs here, and nothing is recorded or answered once the reaper has timed it out.
     */
    private void handleMessage(Connection c, Object parsed, Replies out, WorkerCall onWorker) throws IOException {
        Ran ran = run(c, parsed, out, onWorker != null);
        if (ran != null) {
            finish(ran, out, onWorker);
        }
    }

    /**
     * A call that ran (or failed) and has yet to pass the interceptor and be answered: the
     * second half of a call, which a device worker hands to the interceptor without waiting
     * (see {@link #runDevicePart}).
     */
    private record Ran(Connection c, String method, Intercepted gate, boolean oneway, long start, Reply reply,
                       VarlinkError failure) {
    }

    /**
     * The first half of a call: validates the message and, when it is a call, admits and
     * dispatches it. Returns null when the message was answered here (bad input).
     */
    @SuppressWarnings("unchecked")
    private Ran run(Connection c, Object parsed, Replies out, boolean onWorker) throws IOException {
        if (parsed instanceof JsonException e) {
            invalidRequest(out, "malformed JSON: " + e.getMessage());
            return null;
        }
        if (!(parsed instanceof Map)) {
            invalidRequest(out, "a varlink message must be a JSON object");
            return null;
        }
        Map<String, Object> msg = (Map<String, Object>) parsed;
        for (String flag : FLAGS) {
            Object f = msg.get(flag);
            if (f != null && !(f instanceof Boolean)) {
                invalidRequest(out, "\"" + flag + "\" must be true or false");
                return null;
            }
        }
        // A oneway caller reads no reply: answering it anyway, even with an error, would be
        // taken as the reply to its next call. So nothing below answers a oneway call.
        boolean oneway = Boolean.TRUE.equals(msg.get("oneway"));
        boolean more = Boolean.TRUE.equals(msg.get("more"));
        Object rawMethod = msg.get("method");
        if (!(rawMethod instanceof String method)) {
            if (!oneway) {
                invalidRequest(out, rawMethod == null ? "the message has no \"method\""
                        : "\"method\" must be a string");
            }
            return null;
        }
        if (method.length() > MAX_METHOD_LENGTH) {
            if (!oneway) invalidRequest(out, "\"method\" is longer than " + MAX_METHOD_LENGTH + " characters");
            return null;
        }
        Object rawParams = msg.get("parameters");
        if (rawParams != null && !(rawParams instanceof Map)) {
            if (!oneway) invalidRequest(out, "\"parameters\" must be an object");
            return null;
        }
        long start = System.nanoTime();
        Map<String, Object> params = rawParams == null ? Map.of() : (Map<String, Object>) rawParams;
        // org.varlink.service (GetInfo, the IDLs) reveals nothing and must work even when
        // the interceptor refuses everything else.
        Intercepted gate = method.startsWith(SERVICE_INTERFACE + ".") ? null : new Intercepted(c, method, params);
        try {
            if (gate != null) {
                gate.admit();
            }
            Reply reply = dispatch(c, method, (Map<String, Object>) rawParams, more, oneway,
                    Boolean.TRUE.equals(msg.get("upgrade")), gate, onWorker);
            return new Ran(c, method, gate, oneway, start, reply, null);
        } catch (VarlinkError e) {
            return new Ran(c, method, gate, oneway, start, null, e);
        } catch (IOException | RuntimeException e) {
            observer.called(c.peer(), method, null, System.nanoTime() - start);
            throw e;
        }
    }

    /**
     * The second half of a call: the interceptor sees its outcome (the audit record, which
     * may refuse it), then the reply or error is sent. {@code onWorker} as for
     * {@link #handleMessage}: a call the reaper timed out meanwhile is dropped here.
     */
    private void finish(Ran ran, Replies out, WorkerCall onWorker) throws IOException {
        if (onWorker != null && !onWorker.settle()) {
            return; // timed out meanwhile: answered and recorded as failed by the reaper
        }
        String error = null;
        try {
            VarlinkError failure = ran.failure();
            if (failure == null) {
                try {
                    if (ran.gate() != null) {
                        ran.gate().succeeded(ran.reply().parameters());
                    }
                    if (!ran.oneway()) {
                        out.send(ran.reply().frame());
                    }
                    return;
                } catch (VarlinkError refused) {
                    failure = refused;
                }
            }
            VarlinkError sent = failure;
            if (ran.gate() != null) {
                try {
                    ran.gate().failed(failure.error());
                } catch (VarlinkError refused) {
                    sent = refused;
                }
            }
            error = sent.error();
            if (!ran.oneway()) {
                out.send(Connection.errorFrame(sent.error(), sent.parameters()));
            }
        } finally {
            observer.called(ran.c().peer(), ran.method(), error, System.nanoTime() - ran.start());
        }
    }

    /** A call on its way through the {@link CallInterceptor}: shown to it once at each step it reaches. */
    private final class Intercepted {
        private final Connection c;
        private final String method;
        private final Map<String, Object> params;
        /** Refused at admission, or its outcome already shown: nothing more to show. */
        private boolean done;
        /** A streamed call shown as it started: a later failure is shown too. */
        private volatile boolean started;

        Intercepted(Connection c, String method, Map<String, Object> params) {
            this.c = c;
            this.method = method;
            this.params = params;
        }

        void admit() throws VarlinkError {
            done = true; // a refusal here is not a call that ran
            try {
                interceptor.admit(c.peer(), method);
            } catch (RuntimeException e) {
                throw interceptorBug(e);
            }
            done = false;
        }

        void beforeFirstIntermediate(Map<String, Object> reply) throws VarlinkError {
            started = true;
            show(new CallInterceptor.CompletedCall(c.peer(), c.attributes(), method, params,
                    reply == null ? Map.of() : reply, null, true));
        }

        private void show(CallInterceptor.CompletedCall call) throws VarlinkError {
            try {
                interceptor.completed(call);
            } catch (RuntimeException e) {
                throw interceptorBug(e);
            }
        }

        /** The interceptor failed unexpectedly: the call is refused (never answered unseen), the bug logged. */
        private VarlinkError interceptorBug(RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "call interceptor failed on " + method + " (connection "
                    + c.peer().connectionId() + ")", e);
            return new VarlinkError(errorInterface + ".InternalError", Map.of("message",
                    "internal error; see the daemon log"));
        }

        void succeeded(Map<String, Object> reply) throws VarlinkError {
            if (started || done) {
                return;
            }
            done = true; // shown once, even if the interceptor refuses it
            show(new CallInterceptor.CompletedCall(c.peer(), c.attributes(), method, params, reply, null, false));
        }

        void failed(String error) throws VarlinkError {
            if (done) {
                return;
            }
            done = true;
            show(new CallInterceptor.CompletedCall(c.peer(), c.attributes(), method, params, null, error, false));
        }

        /** {@link #succeeded} without waiting: {@code then} gets null (answer it) or the error to send instead. */
        void succeededThen(Map<String, Object> reply, java.util.function.Consumer<VarlinkError> then) {
            if (started || done) {
                then.accept(null);
                return;
            }
            done = true;
            showThen(new CallInterceptor.CompletedCall(c.peer(), c.attributes(), method, params, reply, null, false),
                    then);
        }

        /** {@link #failed} without waiting: {@code then} gets null (send the failure) or the error to send instead. */
        void failedThen(String error, java.util.function.Consumer<VarlinkError> then) {
            if (done) {
                then.accept(null);
                return;
            }
            done = true;
            showThen(new CallInterceptor.CompletedCall(c.peer(), c.attributes(), method, params, null, error, false),
                    then);
        }

        private void showThen(CallInterceptor.CompletedCall call, java.util.function.Consumer<VarlinkError> then) {
            CallInterceptor.Recorded recorded = new CallInterceptor.Recorded() {
                @Override
                public void answer(VarlinkError refusal) {
                    then.accept(refusal);
                }

                @Override
                public void failed(RuntimeException bug) {
                    then.accept(interceptorBug(bug));
                }
            };
            try {
                interceptor.completedThen(call, recorded);
            } catch (RuntimeException e) {
                recorded.failed(e); // thrown before it told recorded (its contract)
            }
        }
    }

    /** A final reply: its parameters (for the interceptor) and its encoded frame. */
    private record Reply(Map<String, Object> parameters, byte[] frame) {
    }

    /** Runs the call and returns its final reply. */
    private Reply dispatch(Connection c, String method, Map<String, Object> params, boolean more,
                           boolean oneway, boolean upgrade, Intercepted gate, boolean onWorker)
            throws VarlinkError, IOException {
        int dot = method.lastIndexOf('.');
        if (dot <= 0 || dot == method.length() - 1) {
            throw new VarlinkError("org.varlink.service.MethodNotFound", Map.of("method", method,
                    "message", "\"" + method + "\" is not a qualified method name (interface.Method)"));
        }
        String interfaceName = method.substring(0, dot);
        VarlinkInterface iface = interfaces.get(interfaceName);
        if (iface == null) {
            throw new VarlinkError("org.varlink.service.InterfaceNotFound", Map.of("interface", interfaceName,
                    "message", "this service has no interface " + interfaceName
                            + "; org.varlink.service.GetInfo lists its interfaces"));
        }
        MethodHandler handler = iface.methods().get(method.substring(dot + 1));
        if (handler == null) {
            throw new VarlinkError("org.varlink.service.MethodNotFound", Map.of("method", method,
                    "message", "interface " + interfaceName + " has no method " + method.substring(dot + 1)));
        }
        if (upgrade) {
            throw new VarlinkError("org.varlink.service.InvalidParameter", Map.of("parameter", "upgrade",
                    "message", method + " does not upgrade the connection"));
        }
        Params parameters = new Params(params, iface.invalidParameterError());
        Set<String> declared = iface.declaredParameters().get(method.substring(dot + 1));
        if (declared != null && params != null) {
            for (String name : params.keySet()) {
                if (!declared.contains(name)) {
                    throw parameters.invalid(name, "unknown parameter; " + method.substring(dot + 1) + " takes "
                            + (declared.isEmpty() ? "no parameters" : String.join(", ", declared)));
                }
            }
        }
        Call call = gate == null ? new Call(iface.name(), method.substring(dot + 1), parameters, more, oneway, c)
                : new Call(iface.name(), method.substring(dot + 1), parameters, more, oneway, c,
                gate::beforeFirstIntermediate);
        try {
            Map<String, Object> reply = iface.offloaded() && !(handler instanceof MethodHandler.Streaming) && !onWorker
                    ? handleOnWorker(iface, handler, call) : handler.handle(call);
            Map<String, Object> r = reply == null ? Map.of() : reply;
            // Encoded here, inside the error boundary: a value JSON cannot carry is our bug,
            // and the caller must still get an answer rather than a dropped connection.
            return new Reply(r, Connection.replyFrame(r, false));
        } catch (VarlinkError | IOException e) {
            throw e;
        } catch (Exception | StackOverflowError e) {
            // Ours, not the caller's: log it with its stack, tell the caller only that it happened.
            LOG.log(System.Logger.Level.ERROR, "internal error in " + method + " (connection "
                    + c.peer().connectionId() + ")", e);
            throw new VarlinkError(iface.internalError(), Map.of("message", "internal error; see the daemon log"));
        }
    }

    /** Runs a handler on a platform worker, waiting at most the call timeout for it. */
    private Map<String, Object> handleOnWorker(VarlinkInterface iface, MethodHandler handler, Call call) throws Exception {
        java.util.concurrent.Future<Map<String, Object>> f;
        try {
            f = workers.submit(() -> handler.handle(call));
        } catch (java.util.concurrent.RejectedExecutionException shuttingDown) {
            throw new VarlinkError(iface.internalError(), Map.of("message", "the daemon is shutting down"));
        }
        try {
            return f.get(limits.callTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof Exception cause) throw cause;
            throw e;
        } catch (java.util.concurrent.TimeoutException e) {
            // Not started yet (queued behind a hung device): it must not run after the caller
            // was told it failed. Already running: the device may still finish it.
            f.cancel(false);
            LOG.log(System.Logger.Level.ERROR, call.qualifiedMethod() + " did not finish within "
                    + limits.callTimeout().toSeconds() + " s; the device may be hung");
            throw new VarlinkError(iface.internalError(), Map.of("message", call.qualifiedMethod()
                    + " did not finish within " + limits.callTimeout().toSeconds() + " s; the device may be hung"));
        }
    }

    /**
     * Closes connections that sent no complete message within the idle timeout, and those
     * whose reply has been blocked for as long: a client that stops reading would otherwise
     * hold its connection (and its slot under the connection limit) forever.
     */
    private void closeIdle() {
        answerOverdue();
        long limit = limits.idleTimeout().toNanos();
        for (Connection c : connections) {
            if ((!c.busy() && c.idleNanos() > limit) || c.stalledWriteNanos() > limit) {
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
        java.nio.channels.Selector selector = acceptSelector;
        if (selector != null) {
            selector.wakeup();
        }
        if (acceptor != null) {
            try {
                acceptor.join(Duration.ofSeconds(5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try {
            // Ours: closed now, so that new clients are refused at once instead of waiting in
            // a backlog that nobody will accept. Inherited: left to the service manager.
            if (listener != null && ownsListener) listener.close();
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
        workers.shutdownNow();
        if (boundPath != null) {
            try {
                // Only the file this server bound: a newer daemon may have replaced it.
                Object key = Files.readAttributes(boundPath, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
                if (key != null && key.equals(boundFileKey)) {
                    Files.deleteIfExists(boundPath);
                }
            } catch (IOException ignored) {
                // gone already, or replaced: nothing of ours to remove
            }
        }
    }

    @Override
    public void close() {
        shutdown(Duration.ofSeconds(5));
    }
}
