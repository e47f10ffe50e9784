package dev.enclavekms.bench;

import dev.enclavekms.varlink.FrameReader;
import org.HdrHistogram.Histogram;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The measurements that need the daemon restarted on the benchmark's token ({@code --dev}
 * on the same state directory):
 * <ul>
 * <li>start-up: exec of {@code bin/enclave-kmsd} to its first Status answer, on an
 * existing token, several times; and {@code kmsctl status} wall time against it;</li>
 * <li>idle-connection memory on the freshly started daemon (the {@code daemon-fresh} row),
 * before the load warms its heap;</li>
 * <li>audit on vs off: unwrap and sign_p256 on a daemon with the durable audit log (the
 * default), then on one started with the audit-off option (BENCH_AUDIT_OFF, default
 * {@value Bench#AUDIT_OFF_DEFAULT}); a daemon that refuses the option gives rows with no
 * numbers and the reason;</li>
 * <li>idle connections: the daemon's RSS and throughput before and while {@code
 * mode.idleConns()} idle connections are open. Beyond the default limits (512
 * connections, 128 per user) the daemon is started with {@code --max-connections} and
 * {@code --max-connections-per-user}; a daemon without those options is measured with as
 * many as its defaults allow, and the row says so.</li>
 * </ul>
 */
final class Restarts {
    /** Idle connections one user may open under the default limits, with room for the load's own. */
    static final int DEFAULT_LIMITS_ALLOW = 100;

    private final Bench bench;
    private final Mode mode;
    private final Workload w;

    Restarts(Bench bench, Workload w) {
        this.bench = bench;
        this.mode = bench.mode;
        this.w = w;
    }

    void run() throws Exception {
        List<String> limits = List.of();
        if (mode.idleConns() > DEFAULT_LIMITS_ALLOW) {
            String max = String.valueOf(mode.idleConns() + 512);
            limits = List.of("--max-connections", max, "--max-connections-per-user", max);
        }
        String limitsRefused = null;
        Measure start = new Measure();
        KmsDaemon d = null;
        try {
            for (int r = 0; r < mode.startupReps(); r++) {
                if (d != null) d.close();
                try {
                    d = KmsDaemon.dev(bench.repo, bench.state, bench.out, "restart", limits);
                } catch (KmsDaemon.DaemonRefused e) {
                    if (limits.isEmpty()) throw e;
                    limitsRefused = firstLine(e.getMessage());
                    limits = List.of();
                    d = KmsDaemon.dev(bench.repo, bench.state, bench.out, "restart", limits);
                }
                Histogram h = Bench.histogram();
                h.recordValue((long) (d.startedAfterMs * 1e6));
                start.add(1000 / d.startedAfterMs, h);
            }
            int idleCount = limitsRefused == null ? mode.idleConns() : Math.min(mode.idleConns(), DEFAULT_LIMITS_ALLOW);
            freshIdleMemory(d, idleCount);
            start.note = "bin/enclave-kmsd --dev on the existing token: exec to the first Status answer";
            bench.add(start.row("startup", "enclave-kmsd", 1, 1), start.latencyNs);
            Measure kmsctl = Startup.kmsctl(bench.repo, d.socket, mode.startupReps());
            bench.add(kmsctl.row("startup", "kmsctl", 1, 1), kmsctl.latencyNs);
            bench.warm(d, auditOps());
            for (Load.Calls op : auditOps()) {
                for (Mode.Config c : auditConfigs()) bench.add(bench.measure(d, op, c), "daemon-audit-on", op.name());
            }
            idle(d, idleCount, limitsRefused);
        } finally {
            if (d != null) d.close();
        }
        auditOff();
    }

    private void auditOff() throws Exception {
        String option = System.getenv().getOrDefault("BENCH_AUDIT_OFF", Bench.AUDIT_OFF_DEFAULT);
        KmsDaemon d;
        try {
            d = KmsDaemon.dev(bench.repo, bench.state, bench.out, "audit-off", List.of(option.strip().split("\\s+")));
        } catch (KmsDaemon.DaemonRefused e) {
            for (Load.Calls op : auditOps()) {
                bench.add(Row.noNumbers(op.name(), "daemon-audit-off", "not measured: the daemon refused '" + option
                        + "' (" + firstLine(e.getMessage()) + ")"), null);
            }
            return;
        }
        try (d) {
            bench.warm(d, auditOps());
            for (Load.Calls op : auditOps()) {
                for (Mode.Config c : auditConfigs()) {
                    Measure m = bench.measure(d, op, c);
                    m.note = "daemon started with " + option;
                    bench.add(m, "daemon-audit-off", op.name());
                }
            }
            for (Load.Calls op : auditOps()) openLoopAuditOff(d, op, option);
        }
    }

    /**
     * The open loop of the first daemon, at the same rate on as many connections, without the
     * audit flush (system {@code daemon-audit-off-open-loop}): how much of its tail is the
     * audit device's.
     */
    private void openLoopAuditOff(KmsDaemon d, Load.Calls op, String option) throws Exception {
        Row peak = Report.best(bench.rows, op.name(), "daemon");
        if (peak == null || !Bench.OPEN_LOOP_OPS.contains(op.name())) return;
        double rate = peak.opsPerS() / 2;
        bench.openLoopRow(d, op, op.name(), rate, Math.max(2, peak.connections()), "daemon-audit-off-open-loop",
                String.format(java.util.Locale.ROOT, "daemon started with %s; fixed arrival rate %.0f/s = 50 %% of "
                        + "the (durable) peak %.0f/s, as daemon-open-loop; latency from due time", option, rate,
                        peak.opsPerS()));
    }

    /**
     * Opens the idle connections, then measures unwrap at the peak setting while they stay
     * open, and checks at the end that every one of them is still served (a Status each).
     */
    private void idle(KmsDaemon d, int count, String limitsRefused) throws Exception {
        Mode.Config peak = peakConfig();
        long rssBefore = d.rssKiB();
        List<Load.Conn> idle = new ArrayList<>();
        try {
            for (int i = 0; i < count; i++) idle.add(new Load.Conn(d.socket));
            Thread.sleep(500); // let the daemon accept them all before measuring its memory
            long rssOpen = d.rssKiB();
            Measure m = bench.measure(d, w.op("unwrap"), peak);
            long rssAfter = d.rssKiB();
            int answered = statusOnEach(idle);
            m.note = String.format(Locale.ROOT, "with %d idle connections open (%d answered a Status afterwards);"
                            + " daemon VmRSS (warmed heap) %.1f MiB before opening them, %.1f MiB with them open,"
                            + " %.1f MiB after the load",
                    count, answered, rssBefore / 1024.0, rssOpen / 1024.0, rssAfter / 1024.0)
                    + (limitsRefused == null ? "" : "; only " + count + " of " + mode.idleConns()
                    + ": the daemon has no --max-connections option (" + limitsRefused + ")");
            bench.add(m, "daemon-idle", "unwrap");
            bench.header.put("idle connections on the warmed daemon", String.format(Locale.ROOT,
                    "%d opened, %d still answered at the end; VmRSS %.1f → %.1f MiB (%.1f KiB per connection: the heap"
                            + " the load grew absorbs them, see the fresh daemon's figure)",
                    count, answered, rssBefore / 1024.0, rssOpen / 1024.0, (rssOpen - rssBefore) / (double) count));
        } finally {
            for (Load.Conn c : idle) c.close();
        }
    }

    /**
     * What an idle connection costs a daemon that has only just started (it has answered
     * one Status): on a daemon warmed by the load, the connections' memory fits in heap the
     * JVM already holds and VmRSS says ~0 per connection. Reads VmRSS, the JVM's heap use
     * ({@code jcmd PID GC.heap_info}: used includes garbage not yet collected) and the OS
     * thread count before and after opening {@code count} connections that send nothing,
     * once the daemon holds a descriptor for each; then one Status on each, and VmRSS again.
     */
    private void freshIdleMemory(KmsDaemon d, int count) throws Exception {
        long pid = d.process.pid();
        Long heapBefore = heapUsedKiB(pid); // first, so the attach listener's thread is in both readings
        int threadsBefore = Proc.threads(pid);
        int fdsBefore = Proc.fds(pid);
        long rssBefore = d.rssKiB();
        List<Load.Conn> idle = new ArrayList<>();
        try {
            for (int i = 0; i < count; i++) idle.add(new Load.Conn(d.socket));
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (Proc.fds(pid) - fdsBefore < count && System.nanoTime() < deadline) Thread.sleep(50);
            int held = Proc.fds(pid) - fdsBefore;
            Thread.sleep(300); // each connection's reader reaches its blocking read
            long rssOpen = d.rssKiB();
            int threadsOpen = Proc.threads(pid);
            Long heapOpen = heapUsedKiB(pid);
            int answered = statusOnEach(idle);
            long rssAnswered = d.rssKiB();
            double perConn = (rssOpen - rssBefore) / (double) count;
            double perConnAnswered = (rssAnswered - rssBefore) / (double) count;
            Map<String, Object> fields = new LinkedHashMap<>();
            fields.put("rss_kib_before", rssBefore);
            fields.put("rss_kib_open", rssOpen);
            fields.put("rss_kib_after_status", rssAnswered);
            fields.put("rss_kib_per_connection", Math.round(perConn * 100) / 100.0);
            fields.put("rss_kib_per_connection_after_status", Math.round(perConnAnswered * 100) / 100.0);
            fields.put("heap_used_kib_before", heapBefore);
            fields.put("heap_used_kib_open", heapOpen);
            fields.put("os_threads_before", threadsBefore);
            fields.put("os_threads_open", threadsOpen);
            String heap = heapBefore == null || heapOpen == null ? "heap not read (jcmd failed)"
                    : String.format(Locale.ROOT, "heap used %.1f → %.1f MiB (%.1f KiB per connection, garbage included)",
                    heapBefore / 1024.0, heapOpen / 1024.0, (heapOpen - heapBefore) / (double) count);
            String note = String.format(Locale.ROOT, "fresh daemon (one Status answered before): %d idle connections"
                            + " (%d descriptors gained); VmRSS %.1f → %.1f MiB = %.2f KiB per connection; %s;"
                            + " OS threads %d → %d; after one Status on each (%d answered) VmRSS %.1f MiB = %.2f KiB"
                            + " per connection",
                    count, held, rssBefore / 1024.0, rssOpen / 1024.0, perConn, heap, threadsBefore, threadsOpen,
                    answered, rssAnswered / 1024.0, perConnAnswered);
            bench.add(new Row("idle_connections", "daemon-fresh", count, 0, Double.NaN, Double.NaN, Double.NaN,
                    Double.NaN, Double.NaN, Double.NaN, 0, 0, note).withExtra(fields), null);
            bench.header.put("idle connections on a fresh daemon", String.format(Locale.ROOT,
                    "%d opened; VmRSS %.1f → %.1f MiB (%.2f KiB per connection; %.2f after one Status on each); %s",
                    count, rssBefore / 1024.0, rssOpen / 1024.0, perConn, perConnAnswered, heap));
        } finally {
            for (Load.Conn c : idle) c.close();
        }
    }

    /** One Status on every connection, all written first and then all read (they share group commits). */
    private static int statusOnEach(List<Load.Conn> conns) {
        int answered = 0;
        byte[] status = FrameReader.encode("{\"method\":\"" + Bench.KMS + "Status\"}");
        boolean[] written = new boolean[conns.size()];
        for (int i = 0; i < conns.size(); i++) {
            try {
                conns.get(i).out.write(status);
                written[i] = true;
            } catch (Exception e) {
                // a connection the daemon refused or closed: counted as not held
            }
        }
        for (int i = 0; i < conns.size(); i++) {
            try {
                if (written[i] && conns.get(i).reader.next() instanceof FrameReader.Frame.Text t
                        && !t.json().contains("\"error\"")) answered++;
            } catch (Exception e) {
                // closed by the daemon: not held
            }
        }
        return answered;
    }

    /** The daemon JVM's heap in use, from {@code jcmd PID GC.heap_info}, or null if jcmd cannot tell. */
    private static Long heapUsedKiB(long pid) {
        try {
            Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
            Process p = new ProcessBuilder(jcmd.toString(), String.valueOf(pid), "GC.heap_info")
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) return null;
            Matcher m = Pattern.compile("heap .*? used (\\d+)K").matcher(out); // the first line: the whole heap
            return m.find() ? Long.parseLong(m.group(1)) : null;
        } catch (Exception e) {
            return null;
        }
    }

    private List<Load.Calls> auditOps() {
        List<Load.Calls> ops = new ArrayList<>();
        for (String op : Bench.AUDIT_OPS) ops.add(w.op(op));
        return ops;
    }

    /** One connection (the single-call cost) and the peak setting (group commit shares the cost). */
    private List<Mode.Config> auditConfigs() {
        return List.of(mode.configs().getFirst(), peakConfig());
    }

    /** The mode's widest setting, where the daemon's peak usually is. */
    private Mode.Config peakConfig() {
        return mode.configs().getLast();
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        String l = s.strip().split("\n")[0].strip();
        return l.length() > 300 ? l.substring(0, 300) : l;
    }
}
