package dev.enclavekms.bench;

import java.util.ArrayList;
import java.util.List;

/**
 * The daemon's capacity on one core: after the main rows, the same (warm) daemon is
 * pinned to CPU 0 and this JVM — the load generator — to CPU 1, and each operation is
 * measured again at its best unpinned setting ({@code daemon-pinned}). Its counterpart,
 * direct on one thread pinned to CPU 0 ({@code direct-pinned}), runs with the baselines.
 * Unpinned, the load generator takes CPU from the daemon on the same two vCPUs; pinned,
 * the ratio says how much of one core's device throughput the daemon delivers. With
 * fewer than two CPUs (or no taskset) the rows say why they are empty.
 */
final class PinnedCapacity {
    static final List<String> OPS = List.of("unwrap", "sign_p256");
    static final String DAEMON_CPU = "0";
    static final String LOAD_CPU = "1";

    private PinnedCapacity() {
    }

    static void daemon(Bench bench, KmsDaemon d, Workload w) throws Exception {
        String why = Pinning.unavailable();
        if (why != null) {
            skipped(bench, why);
            return;
        }
        String original = Pinning.allowedList(Pinning.SELF);
        try {
            List<Load.Calls> ops = new ArrayList<>();
            for (String op : OPS) ops.add(w.op(op));
            try {
                // The daemon is left pinned: it is stopped right after these rows.
                Pinning.pin(d.process.pid(), DAEMON_CPU);
                Pinning.pin(Pinning.SELF, LOAD_CPU);
            } catch (IllegalStateException e) {
                skipped(bench, e.getMessage());
                return;
            }
            bench.warm(d, ops); // threads the daemon starts now inherit the pin, and get checked below
            int daemonThreads;
            int loadThreads;
            try {
                // again: a thread started while taskset walked the thread list kept the old mask
                Pinning.pin(d.process.pid(), DAEMON_CPU);
                daemonThreads = Pinning.verify(d.process.pid(), DAEMON_CPU);
                loadThreads = Pinning.verify(Pinning.SELF, LOAD_CPU);
            } catch (IllegalStateException e) {
                skipped(bench, "pinning not in effect: " + e.getMessage());
                return;
            }
            for (Load.Calls op : ops) {
                Row best = Report.best(bench.rows, op.name(), "daemon");
                Mode.Config c = best == null ? bench.mode.configs().getLast()
                        : new Mode.Config(best.connections(), best.depth());
                try {
                    Measure m = bench.measure(d, op, c);
                    m.note = "the daemon of the main rows pinned to CPU " + DAEMON_CPU + " (taskset; Cpus_allowed_list"
                            + " of all its " + daemonThreads + " threads checked), load generator (the bench JVM, "
                            + loadThreads + " threads) to CPU " + LOAD_CPU + "; the best unpinned setting";
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

    private static void skipped(Bench bench, String why) {
        for (String op : OPS) bench.add(Row.noNumbers(op, "daemon-pinned", "skipped: " + why), null);
    }
}
