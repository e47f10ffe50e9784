package dev.enclavekms.bench;

import dev.enclavekms.json.Json;
import dev.enclavekms.varlink.FrameReader;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The load generator: {@code connections} varlink connections, each with up to
 * {@code depth} calls in flight (varlink answers in order on a connection, so replies are
 * matched to calls by position). One thread per connection writes a call whenever a
 * reply frees a slot, so a connection never has more than {@code depth} outstanding.
 * Latency is taken from the moment a call is written to the moment its reply is read
 * whole, so with depth > 1 it includes the time queued behind earlier calls.
 */
final class Load {
    private Load() {
    }

    /** Frames (method + parameters) ready to send; calls cycle through them. */
    record Calls(String name, byte[][] frames) {
        static Calls of(String name, String method, List<Map<String, Object>> params) {
            byte[][] f = new byte[params.size()][];
            for (int i = 0; i < f.length; i++) {
                Map<String, Object> call = new java.util.LinkedHashMap<>();
                call.put("method", method);
                if (!params.get(i).isEmpty()) call.put("parameters", params.get(i));
                f[i] = FrameReader.encode(Json.write(call));
            }
            return new Calls(name, f);
        }
    }

    /** A persistent connection used for every repetition of one configuration. */
    static final class Conn implements AutoCloseable {
        final SocketChannel ch;
        final OutputStream out;
        final FrameReader reader;

        Conn(Path socket) throws IOException {
            ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            ch.connect(UnixDomainSocketAddress.of(socket));
            out = Channels.newOutputStream(ch);
            InputStream in = Channels.newInputStream(ch);
            reader = new FrameReader(in, 256 * 1024 * 1024);
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }

    /**
     * Runs {@code calls} for {@code seconds} (or until {@code maxCalls} per connection have
     * completed, if positive) on every connection.
     *
     * @return completions per second (times {@code unitsPerCall}) and latency in histogram
     */
    static double run(List<Conn> conns, int depth, Calls calls, double seconds, long maxCalls, int unitsPerCall,
                      Histogram into) throws Exception {
        long start = System.nanoTime();
        long deadline = start + (long) (seconds * 1e9);
        List<Thread> threads = new ArrayList<>();
        long[] done = new long[conns.size()];
        long[] lastNs = new long[conns.size()];
        Histogram[] hs = new Histogram[conns.size()];
        AtomicReference<Throwable> failure = new AtomicReference<>();
        for (int c = 0; c < conns.size(); c++) {
            final int ci = c;
            hs[c] = new Histogram(3_600_000_000_000L, 3);
            Conn conn = conns.get(c);
            threads.add(Thread.ofPlatform().name("load-" + c).start(() -> {
                try {
                    long[] sent = new long[depth];
                    int head = 0;
                    int inFlight = 0;
                    long issued = 0;
                    int next = ci * 7;
                    while (true) {
                        // At least one call per connection, even if this thread started after the
                        // deadline on a loaded machine (else a repetition could count nothing).
                        boolean more = (issued == 0 || System.nanoTime() < deadline)
                                && (maxCalls <= 0 || issued < maxCalls);
                        while (more && inFlight < depth) {
                            byte[] f = calls.frames()[next++ % calls.frames().length];
                            sent[(head + inFlight) % depth] = System.nanoTime();
                            conn.out.write(f);
                            inFlight++;
                            issued++;
                            more = maxCalls <= 0 || issued < maxCalls;
                        }
                        if (inFlight == 0) break;
                        FrameReader.Frame fr = conn.reader.next();
                        long now = System.nanoTime();
                        if (!(fr instanceof FrameReader.Frame.Text t)) throw new IOException("bad reply frame " + fr);
                        checkReply(t.json());
                        hs[ci].recordValue(now - sent[head]);
                        head = (head + 1) % depth;
                        inFlight--;
                        done[ci]++;
                        lastNs[ci] = now;
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }));
        }
        for (Thread t : threads) t.join();
        if (failure.get() != null) throw new IllegalStateException(calls.name() + ": " + failure.get(), failure.get());
        long total = 0;
        long end = start;
        for (int c = 0; c < conns.size(); c++) {
            total += done[c];
            end = Math.max(end, lastNs[c]);
            into.add(hs[c]);
        }
        return total * (double) unitsPerCall / ((end - start) / 1e9);
    }

    /** Fails on an error reply; cheap for large replies (no parse). */
    static void checkReply(String json) throws dev.enclavekms.json.JsonException {
        if (json.length() < 4096 && json.contains("\"error\"")) {
            Map<String, Object> m = Json.parseObject(json);
            if (m.get("error") != null) throw new IllegalStateException("error reply: " + json);
        }
    }
}
