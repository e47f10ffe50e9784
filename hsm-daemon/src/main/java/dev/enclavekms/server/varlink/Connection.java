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
 * Calls are read on the connection's own virtual thread. Pipelined calls of methods that
 * may run concurrently each run on threads of their own; their replies take a place in
 * {@link #reserve() reply order} when the call is read and leave in that order, so every
 * call is answered in the order it was sent, as varlink requires.
 */
final class Connection {
    /** A reply's place in the order of the connection's calls. */
    static final class Slot {
        private byte[] frame;
        private boolean done;
        /** Runs once the reply is written or dropped: the call has ended. */
        private Runnable ended;
        /** The call when it runs on a device worker: the reaper times it out (see {@link #timeOutOverdue}). */
        private volatile WorkerCall onWorker;

        void onWorker(WorkerCall call) {
            onWorker = call;
        }
    }

    /** Replies not yet written, in the order their calls arrived (guarded by itself). */
    private final java.util.ArrayDeque<Slot> order = new java.util.ArrayDeque<>();
    /**
     * A thread is writing the replies it took off the head of {@link #order} (guarded by
     * {@code order}): a reply completed meanwhile is left for it, and nobody else writes.
     */
    private boolean writing;
    /** Set when a reply could not be written: the connection is closing, later replies are dropped. */
    private boolean broken;
    /** Calls begun and not yet ended (guarded by this). */
    private int calls;
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
        calls++;
        busy = true;
        touch();
        return true;
    }

    /** Ends a call whose reply was written (or dropped); the last call of a draining connection closes it. */
    void endCall() {
        boolean close;
        synchronized (this) {
            calls--;
            busy = calls > 0;
            touch();
            close = closing && calls == 0;
        }
        if (close) {
            close();
        }
    }

    /** Takes the next place in the reply order, for a call that will run concurrently. */
    Slot reserve() {
        synchronized (order) {
            Slot s = new Slot();
            order.add(s);
            return s;
        }
    }

    /**
     * Gives a reserved place its reply ({@code null}: none) and writes every reply that is
     * now first in line; {@code ended} runs once this reply is written or dropped. A reply
     * that cannot be written closes the connection.
     *
     * <p>One thread writes at a time, and it writes every reply that is ready, consecutive
     * ones with one {@code write}: a call that completes while another writes leaves its
     * reply to that writer and returns at once, instead of waiting for the lock and then
     * making a system call of its own.
     */
    void complete(Slot slot, byte[] frame, Runnable ended) {
        switch (place(slot, frame, ended, false)) {
            case LEFT -> { }
            case DROPPED -> ended.run();
            case WRITE -> writeAllReady();
        }
    }

    /**
     * {@link #complete} for a thread that must never write to a client (the audit log's group
     * commit, a device worker): gives the place its reply, and when that makes replies ready
     * at the head of the order and nobody writes them yet, starts a virtual thread to write
     * them. So a client that stops reading blocks only that thread, and the replies of one
     * connection completed together (one group commit) leave with one write by one thread.
     */
    void completeOffThread(Slot slot, byte[] frame, Runnable ended) {
        switch (place(slot, frame, ended, true)) {
            case LEFT -> { }
            case DROPPED -> ended.run();
            case WRITE -> Thread.startVirtualThread(this::writeAllReady);
        }
    }

    /** What giving a place its reply leaves to the thread that gave it. */
    private enum Placed {
        /** Another thread writes it (or, {@code onlyAtHead}, whoever completes the reply before it). */
        LEFT,
        /** The connection is broken: the reply is dropped, and its call ends now. */
        DROPPED,
        /** This thread became the writer: the ready replies are its to write. */
        WRITE
    }

    private Placed place(Slot slot, byte[] frame, Runnable ended, boolean onlyAtHead) {
        synchronized (order) {
            slot.frame = frame;
            slot.done = true;
            slot.ended = ended;
            if (broken) {
                order.remove(slot);
                order.notifyAll(); // awaitReplies may be waiting for the order to empty
                return Placed.DROPPED;
            }
            if (writing || (onlyAtHead && !order.peekFirst().done)) {
                return Placed.LEFT;
            }
            writing = true;
            return Placed.WRITE;
        }
    }

    /** As the writer: writes every ready reply, then ends their calls. */
    private void writeAllReady() {
        java.util.List<Runnable> endedNow = new java.util.ArrayList<>(4);
        writeReady(endedNow);
        for (Runnable r : endedNow) {
            r.run();
        }
    }

    /** As the writer: writes the ready replies at the head of the order until none is left. */
    private void writeReady(java.util.List<Runnable> endedNow) {
        while (true) {
            java.util.List<Slot> taken = new java.util.ArrayList<>(4);
            synchronized (order) {
                while (!broken && !order.isEmpty() && order.peekFirst().done) {
                    taken.add(order.pollFirst());
                }
                if (taken.isEmpty()) {
                    if (broken) {
                        for (Slot s : order) {
                            if (s.done) endedNow.add(s.ended); // the others end when they complete
                        }
                        order.clear();
                    }
                    writing = false;
                    order.notifyAll();
                    return;
                }
            }
            try {
                write(joined(taken));
            } catch (IOException e) {
                synchronized (order) {
                    broken = true; // the peer went away or the reaper closed a stalled connection
                }
                close();
            }
            for (Slot s : taken) {
                s.ended.run(); // at once: the reader may be waiting for a free place among the calls
            }
        }
    }

    /** The frames of consecutive replies as one buffer (most often just the one frame). */
    private static byte[] joined(java.util.List<Slot> slots) {
        if (slots.size() == 1) {
            byte[] f = slots.get(0).frame;
            return f == null ? new byte[0] : f;
        }
        int length = 0;
        for (Slot s : slots) {
            if (s.frame != null) length += s.frame.length;
        }
        byte[] all = new byte[length];
        int at = 0;
        for (Slot s : slots) {
            if (s.frame != null) {
                System.arraycopy(s.frame, 0, all, at, s.frame.length);
                at += s.frame.length;
            }
        }
        return all;
    }

    /**
     * Claims for the reaper this connection's calls on device workers that are past their
     * deadline and not yet answered. The calls in flight are found through their places in
     * the reply order, so tracking them costs nothing per call.
     */
    java.util.List<WorkerCall> timeOutOverdue(long nowNanos) {
        java.util.List<WorkerCall> overdue = java.util.List.of();
        synchronized (order) {
            for (Slot s : order) {
                WorkerCall w = s.onWorker;
                if (w != null && !s.done && w.overdue(nowNanos) && w.timeOut()) {
                    if (overdue.isEmpty()) overdue = new java.util.ArrayList<>();
                    overdue.add(w);
                }
            }
        }
        return overdue;
    }

    /** Waits until every reserved reply is written: calls after this one must not overtake them. */
    void awaitReplies() throws IOException {
        synchronized (order) {
            while (!order.isEmpty() || writing) {
                try {
                    order.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("interrupted while waiting for earlier replies");
                }
            }
            if (broken) {
                throw new IOException("an earlier reply could not be written");
            }
        }
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
        if (parameters != null && parameters.size() == 1
                && parameters.values().iterator().next() instanceof PreEncoded value) {
            return preEncodedReplyFrame(parameters.keySet().iterator().next(), value, continues);
        }
        Map<String, Object> msg = new LinkedHashMap<>();
        if (parameters != null && !parameters.isEmpty()) {
            msg.put("parameters", parameters);
        }
        if (continues) {
            msg.put("continues", true);
        }
        return FrameReader.encode(Json.write(msg));
    }

    /**
     * The frame {@link #replyFrame} writes for one pre-encoded parameter, byte for byte, with
     * the value's bytes copied in once.
     */
    private static byte[] preEncodedReplyFrame(String name, PreEncoded value, boolean continues) {
        byte[] head = ("{\"parameters\":{" + Json.write(name) + ":").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] tail = (continues ? "},\"continues\":true}" : "}}").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        int length = value.utf8Length();
        byte[] frame = new byte[head.length + length + tail.length + 1]; // ends with the NUL
        System.arraycopy(head, 0, frame, 0, head.length);
        value.copyUtf8(frame, head.length);
        System.arraycopy(tail, 0, frame, head.length + length, tail.length);
        return frame;
    }

    void sendReply(Map<String, Object> parameters, boolean continues) throws IOException {
        write(replyFrame(parameters, continues));
    }

    void sendError(String error, Map<String, Object> parameters) throws IOException {
        write(errorFrame(error, parameters));
    }

    static byte[] errorFrame(String error, Map<String, Object> parameters) {
        Map<String, Object> msg = new LinkedHashMap<>();
        msg.put("error", error);
        if (parameters != null && !parameters.isEmpty()) {
            msg.put("parameters", parameters);
        }
        return FrameReader.encode(Json.write(msg));
    }

    void write(byte[] frame) throws IOException {
        if (frame.length == 0) {
            return; // nothing to say (a oneway call)
        }
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
