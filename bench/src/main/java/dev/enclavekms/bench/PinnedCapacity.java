package dev.enclavekms.bench;

import java.util.ArrayList;
import java.util.List;

/**
 * The daemon's capacity on one core: a daemon started under {@code taskset -c 0} (on the
 * benchmark's token, with the options of the main rows) measured by this JVM pinned to
 * CPU 1, at the best unpinned setting of each operation ({@code daemon-pinned}). Its
 * counterpart, direct on one thread pinned to CPU 0 ({@code direct-pinned}), runs with
 * the baselines. Unpinned, the load generator takes CPU from the daemon on the same two
 * vCPUs; pinned, the ratio says how much of one core's device throughput the daemon
 * delivers. With fewer than two CPUs (or no taskset) the rows say why they are empty.
 */
final class PinnedCapacity {
    static final List<String> OPS = List.of("unwrap", "sign_p256");
    static final String DAEMON_CPU = "0";
    static final String LOAD_CPU = "1";

    private PinnedCapacity() {
    }

    static void daemon(Bench bench, Workload w) throws Exception {
        String why = Pinning.unavailable();
        if (why != null) {
            for (String op : OPS) bench.add(Row.noNumbers(op, "daemon-pinned", "skipped: " + why), null);
            return;
        }
        String original = Pinning.allowedList(Pinning.SELF);
        // A JVM that sees one CPU picks the Serial GC; G1, as unpinned, keeps placement the only change.
        try (KmsDaemon d = KmsDaemon.dev(bench.repo, bench.state, bench.out, "pinned", List.of(),
                List.of("taskset", "-c", DAEMON_CPU), "-XX:+UseG1GC")) {
            Pinning.pin(Pinning.SELF, LOAD_CPU);
            try {
                List<Load.Calls> ops = new ArrayList<>();
                for (String op : OPS) ops.add(w.op(op));
                // A fresh JVM on one core compiles slowly: warm it three times as long as the main daemon.
                for (int i = 0; i < (bench.mode.smoke() ? 1 : 3); i++) bench.warm(d, ops);
                int daemonThreads;
                int loadThreads;
                try {
                    daemonThreads = Pinning.verify(d.process.pid(), DAEMON_CPU);
                    loadThreads = Pinning.verify(Pinning.SELF, LOAD_CPU);
                } catch (IllegalStateException e) {
                    for (String op : OPS) bench.add(Row.noNumbers(op, "daemon-pinned", "skipped: pinning not in effect: "
                            + e.getMessage()), null);
                    return;
                }
                for (Load.Calls op : ops) {
                    Row best = Report.best(bench.rows, op.name(), "daemon");
                    Mode.Config c = best == null ? bench.mode.configs().getLast()
                            : new Mode.Config(best.connections(), best.depth());
                    try {
                        Measure m = bench.measure(d, op, c);
                        m.note = "daemon pinned to CPU " + DAEMON_CPU + " (taskset; Cpus_allowed_list of all its "
                                + daemonThreads + " threads checked), load generator (the bench JVM, " + loadThreads
                                + " threads) to CPU " + LOAD_CPU + "; the best unpinned setting; daemon with -XX:+UseG1GC as unpinned";
                        bench.add(m, "daemon-pinned", op.name());
                    } catch (IllegalStateException e) {
                        bench.add(Row.failed(op.name(), "daemon-pinned", c.conns(), c.depth(), e.getMessage()), null);
                        if (!d.process.isAlive()) throw e;
                    }
                }
            } finally {
                Pinning.pin(Pinning.SELF, original);
            }
        }
    }
}
