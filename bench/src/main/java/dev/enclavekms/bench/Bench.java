package dev.enclavekms.bench;

import dev.enclavekms.json.Json;
import org.HdrHistogram.Histogram;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code bench/run [--quick|--smoke]}: starts a dev daemon on a fresh SoftHSM token,
 * measures every operation through it (closed loop at several connections × depths, a
 * fixed-rate open loop at half of the peak, DecryptBatch), restarts it to time start-up,
 * hold idle connections and compare audit on and off, then measures the baselines
 * (direct in-process PKCS#11, p11-kit, process-per-call pkcs11-tool, the empty-call
 * floor) on the same token, and writes {@code latest.json}, {@code latest.md} and
 * {@code latest-latency.json}. Nothing here asserts a time.
 */
public final class Bench {
    static final String KMS = "dev.enclavekms.Kms.";
    /** The daemon option that turns the audit log's durability off, for the audit on/off rows. */
    static final String AUDIT_OFF_DEFAULT = "--audit-durability=none";
    static final List<String> OPEN_LOOP_OPS = List.of("unwrap", "sign_p256");
    static final List<String> AUDIT_OPS = List.of("unwrap", "sign_p256");

    final Mode mode;
    final Path repo;
    final Path out;
    final Path state;
    final List<Row> rows = new ArrayList<>();
    final Map<Row, Histogram> latency = new IdentityHashMap<>();
    final Map<String, String> header = new LinkedHashMap<>();

    Bench(Mode mode, Path repo, Path out, Path state) {
        this.mode = mode;
        this.repo = repo;
        this.out = out;
        this.state = state;
    }

    public static void main(String[] args) throws Exception {
        Mode mode = Mode.FULL;
        Path repo = Path.of(".").toAbsolutePath().normalize();
        Path out = null;
        String stateEnv = System.getenv("BENCH_STATE_DIR");
        Path state = stateEnv == null || stateEnv.isBlank() ? null : Path.of(stateEnv);
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--quick" -> mode = Mode.QUICK;
                case "--smoke" -> mode = Mode.SMOKE;
                case "--repo" -> repo = Path.of(args[++i]).toAbsolutePath().normalize();
                case "--out" -> out = Path.of(args[++i]).toAbsolutePath().normalize();
                default -> throw new IllegalArgumentException("usage: bench/run [--quick|--smoke] [--out DIR]");
            }
        }
        if (out == null) out = repo.resolve("bench/results");
        if (state == null) state = out.resolve("state");
        new Bench(mode, repo, out, state).runAll();
    }

    void runAll() throws Exception {
        header.put("started", Instant.now().toString());
        header.put("mode", mode.name());
        header.put("cpus", Runtime.getRuntime().availableProcessors() + " (shared with other users: numbers are noisy)");
        header.put("load average at start", loadAvg());
        header.put("jdk", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        header.put("measured checkout", gitDescription());
        header.put("repetitions", mode.reps() + " × " + mode.repS() + " s after " + mode.warmS()
                + " s warm-up, after warming the daemon on every operation; ops/s = median, spread = min–max");
        header.put("daemon state (token, registry, audit log)", state + " on " + fsType(state));
        Map<String, Object> dev;
        Workload w;
        try (KmsDaemon d = KmsDaemon.dev(repo, state, out, "first", List.of())) {
            header.put("first start (--dev, creates the token): exec to first Status", ms(d.startedAfterMs));
            dev = Json.parseObject(Files.readString(state.resolve("dev.json")));
            w = Workload.prepare(d.socket);
            warm(d, w.ops());
            warm(d, List.of(w.mix()));
            for (Load.Calls op : w.ops()) closedLoop(d, op, op.name().equals("status") ? "floor" : "daemon");
            closedLoop(d, w.mix(), "daemon");
            batch(d, w);
            for (String op : OPEN_LOOP_OPS) openLoop(d, w.op(op), w.op("status"));
            for (String op : OPEN_LOOP_OPS) withinMillisecond(d, w.op(op));
            diskFlush();
            PinnedCapacity.daemon(this, d, w); // last: it leaves the daemon pinned
        }
        new Restarts(this, w).run();
        new Baselines(this, mode, dev).run();
        Measure tool = Startup.pkcs11Tool(dev, mode.startupReps());
        add(tool.row("startup", "pkcs11-tool", 1, 1), tool.latencyNs);
        header.put("load average at end", loadAvg());
        header.put("finished", Instant.now().toString());
        Report.write(out, rows, header, latency);
        System.out.println(Report.markdown(rows, header));
        System.out.println("wrote " + out.resolve("latest.json") + ", latest.md and latest-latency.json");
    }

    /** Every operation for a while on 4 connections × depth 2, so no setting runs on a cold JIT. */
    void warm(KmsDaemon d, List<Load.Calls> ops) throws Exception {
        List<Load.Conn> conns = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) conns.add(new Load.Conn(d.socket));
            for (Load.Calls op : ops) Load.run(conns, 2, op, mode.warmS() * 3, 0, 1, histogram());
        } finally {
            for (Load.Conn c : conns) c.close();
        }
    }

    /** {@code op} at every connections × depth setting of the mode. */
    void closedLoop(KmsDaemon d, Load.Calls op, String system) throws Exception {
        for (Mode.Config c : mode.configs()) {
            try {
                add(measure(d, op, c), system, op.name());
            } catch (IllegalStateException e) {
                // An error reply (e.g. the daemon shedding load) is a result to report, not a
                // reason to lose the rest of the run; the row has no numbers and says why.
                add(Row.failed(op.name(), system, c.conns(), c.depth(), e.getMessage()), null);
                if (!d.process.isAlive()) throw e;
                Thread.sleep(2000); // let the daemon drain what the failed setting left queued
            }
        }
    }

    /** One setting: warm-up, then the repetitions, on connections opened once. */
    Measure measure(KmsDaemon d, Load.Calls op, Mode.Config c) throws Exception {
        Measure m = new Measure();
        m.config = c;
        List<Load.Conn> conns = new ArrayList<>();
        try {
            for (int i = 0; i < c.conns(); i++) conns.add(new Load.Conn(d.socket));
            Load.run(conns, c.depth(), op, mode.warmS(), 0, 1, histogram());
            for (int r = 0; r < mode.reps(); r++) {
                Histogram h = histogram();
                ProcCpu.Mark cpu = ProcCpu.mark(d.process.pid());
                m.add(Load.run(conns, c.depth(), op, mode.repS(), 0, 1, h), h, cpu, 1);
            }
        } finally {
            for (Load.Conn conn : conns) conn.close();
        }
        return m;
    }

    void add(Measure m, String system, String op) {
        add(m.row(op, system, m.config.conns(), m.config.depth()), m.latencyNs);
    }

    private void batch(KmsDaemon d, Workload w) throws Exception {
        Measure m = new Measure();
        int reps = mode.smoke() ? 1 : mode.reps();
        try (Load.Conn conn = new Load.Conn(d.socket)) {
            if (!mode.smoke()) Load.run(List.of(conn), 1, w.batch(), 600, 1, Workload.BATCH, histogram());
            for (int r = 0; r < reps; r++) {
                Histogram h = histogram();
                ProcCpu.Mark cpu = ProcCpu.mark(d.process.pid());
                m.add(Load.run(List.of(conn), 1, w.batch(), 600, 1, Workload.BATCH, h), h, cpu, Workload.BATCH);
            }
        }
        m.note = "ops = data keys; latency per call of " + Workload.BATCH;
        add(m.row(w.batch().name(), "daemon", 1, 1), m.latencyNs);
    }

    /**
     * A fixed arrival rate of half the best closed-loop throughput of {@code op}, on as many
     * connections as that best setting used: the p99 a service sees at a comfortable load.
     * Then the empty call ({@code Status}, the transport floor) at the same rate on as many
     * connections (system {@code floor-open-loop}, operation {@code op}): what the socket, the
     * wake-ups and the generator alone cost at that rate, before any device work or audit.
     */
    private void openLoop(KmsDaemon d, Load.Calls op, Load.Calls floor) throws Exception {
        Row peak = Report.best(rows, op.name(), "daemon");
        if (peak == null) {
            add(Row.noNumbers(op.name(), "daemon-open-loop", "no closed-loop peak to take half of"), null);
            return;
        }
        double rate = peak.opsPerS() / 2;
        int conns = Math.max(2, peak.connections());
        String at = String.format(java.util.Locale.ROOT, "fixed arrival rate %.0f/s = 50 %% of the peak %.0f/s (%d×%d)",
                rate, peak.opsPerS(), peak.connections(), peak.depth());
        openLoopRow(d, op, op.name(), rate, conns, "daemon-open-loop", "open loop: " + at + "; latency from due time");
        openLoopRow(d, floor, op.name(), rate, conns, "floor-open-loop", "the empty call (Status) at " + op.name()
                + "'s open-loop rate: " + at + "; latency from due time");
    }

    /**
     * One warmed open-loop run of {@code calls} at {@code rate} on {@code conns} connections,
     * added as a row of {@code operation} and {@code system}; the note gets the generator's
     * own lateness.
     */
    void openLoopRow(KmsDaemon d, Load.Calls calls, String operation, double rate, int conns, String system,
                     String note) throws Exception {
        Measure m = new Measure();
        OpenLoop.run(d.socket, conns, rate, Math.min(1.0, mode.openLoopS() / 3), calls, histogram()); // warm-up
        Histogram h = histogram();
        ProcCpu.Mark cpu = ProcCpu.mark(d.process.pid());
        OpenLoop.Result r = OpenLoop.run(d.socket, conns, rate, mode.openLoopS(), calls, h);
        m.add(r.callsPerS(), h, cpu, 1);
        m.note = note + "; " + r.lateness();
        add(m.row(operation, system, conns, 0), m.latencyNs);
    }

    /** Shares of the closed-loop peak tried, highest first, for the highest rate with p99 ≤ 1 ms. */
    static final double[] SLO_SHARES = {0.45, 0.35, 0.25, 0.15, 0.10, 0.05};

    /**
     * The highest fixed arrival rate, of {@link #SLO_SHARES} × the closed-loop peak, at which
     * the open-loop p99 stays within 1 ms (system {@code daemon-open-loop-1ms}): the capacity
     * a service with a 1 ms p99 objective can plan with. Tried from the highest share down;
     * the first that holds is reported. If none does, the lowest share's numbers are reported
     * with a note saying so. Smoke mode tries one share (a completeness check).
     */
    private void withinMillisecond(KmsDaemon d, Load.Calls op) throws Exception {
        Row peak = Report.best(rows, op.name(), "daemon");
        if (peak == null) {
            add(Row.noNumbers(op.name(), "daemon-open-loop-1ms", "no closed-loop peak to take a share of"), null);
            return;
        }
        int conns = Math.max(2, peak.connections());
        double[] shares = mode.smoke() ? new double[] {SLO_SHARES[SLO_SHARES.length - 1]} : SLO_SHARES;
        List<String> tried = new ArrayList<>();
        for (int i = 0; i < shares.length; i++) {
            double rate = peak.opsPerS() * shares[i];
            Measure m = new Measure();
            OpenLoop.run(d.socket, conns, rate, Math.min(1.0, mode.openLoopS() / 3), op, histogram()); // warm-up
            Histogram h = histogram();
            ProcCpu.Mark cpu = ProcCpu.mark(d.process.pid());
            OpenLoop.Result r = OpenLoop.run(d.socket, conns, rate, mode.openLoopS(), op, h);
            m.add(r.callsPerS(), h, cpu, 1);
            double p99Us = h.getValueAtPercentile(99) / 1000.0;
            boolean holds = p99Us <= 1000;
            if (holds || i == shares.length - 1) {
                m.note = String.format(java.util.Locale.ROOT, "%s: fixed arrival rate %.0f/s = %.0f %% of the peak "
                                + "%.0f/s (%d×%d); %s", holds ? "highest rate tried with p99 ≤ 1 ms"
                                : "p99 > 1 ms at every rate tried, lowest shown", rate, shares[i] * 100,
                        peak.opsPerS(), peak.connections(), peak.depth(),
                        tried.isEmpty() ? "the first rate tried" : "p99 above 1 ms at " + String.join(", ", tried))
                        + "; " + r.lateness();
                add(m.row(op.name(), "daemon-open-loop-1ms", conns, 0), m.latencyNs);
                return;
            }
            tried.add(String.format(java.util.Locale.ROOT, "%.0f %% (%.1f ms)", shares[i] * 100, p99Us / 1000));
        }
    }

    /**
     * The audit device alone, at the lowest open-loop rate tried for unwrap (where calls arrive
     * alone and each leads its own flush), on the daemon's file system: the floor under a
     * durable call's latency.
     */
    private void diskFlush() throws Exception {
        Row peak = Report.best(rows, "unwrap", "daemon");
        if (peak == null) return;
        double rate = peak.opsPerS() * SLO_SHARES[SLO_SHARES.length - 1];
        Measure m = DiskFlush.measure(state.resolve("disk-flush"), rate, mode.openLoopS());
        add(m.row("audit_flush", "disk", 1, 0), m.latencyNs);
    }

    void add(Row r, Histogram h) {
        rows.add(r);
        if (h != null) latency.put(r, h);
        System.err.printf("%-18s %-16s conn=%-5d depth=%-2d %10s ops/s  p50 %8s µs  p99 %8s µs  %s%n", r.operation(),
                r.system(), r.connections(), r.depth(), Report.f(r.opsPerS()), Report.f(r.p50Us()),
                Report.f(r.p99Us()), r.note() == null ? "" : r.note());
    }

    static Histogram histogram() {
        return new Histogram(3_600_000_000_000L, 3);
    }

    static String ms(double ms) {
        return String.format(java.util.Locale.ROOT, "%.0f ms", ms);
    }

    /** The file system type of the mount holding {@code p} (from /proc/mounts), for the report. */
    private static String fsType(Path p) {
        try {
            Path abs = p.toAbsolutePath().normalize();
            String best = "";
            String type = "?";
            for (String line : Files.readAllLines(Path.of("/proc/mounts"))) {
                String[] f = line.split(" ");
                if (f.length > 2 && abs.startsWith(f[1]) && f[1].length() >= best.length()) {
                    best = f[1];
                    type = f[2] + " (" + f[0] + ")";
                }
            }
            return type;
        } catch (Exception e) {
            return "?";
        }
    }

    /** The commit (and branch) of the checkout whose daemon and launchers are measured. */
    private String gitDescription() {
        try {
            Process p = new ProcessBuilder("git", "-C", repo.toString(), "log", "-1", "--format=%h %s")
                    .redirectErrorStream(true).start();
            String head = new String(p.getInputStream().readAllBytes()).strip();
            Process b = new ProcessBuilder("git", "-C", repo.toString(), "status", "--porcelain", "--branch", "-uno")
                    .redirectErrorStream(true).start();
            String[] status = new String(b.getInputStream().readAllBytes()).strip().split("\n");
            p.waitFor();
            b.waitFor();
            String branch = status[0].replace("## ", "");
            boolean dirty = status.length > 1;
            return branch + ": " + (head.length() > 90 ? head.substring(0, 90) + "…" : head) + (dirty ? " (with uncommitted changes)" : "");
        } catch (Exception e) {
            return "?";
        }
    }

    static String loadAvg() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).strip();
        } catch (Exception e) {
            return "?";
        }
    }
}
