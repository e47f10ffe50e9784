package dev.enclavekms.bench;

import java.util.List;

/**
 * How long and how widely one run measures. {@code --smoke} exists for the test suite
 * (BenchSmokeIT): every operation and every baseline once, briefly, to check that the
 * report is complete — its numbers mean nothing.
 *
 * @param warmS          warm-up per setting, discarded
 * @param repS           one repetition
 * @param reps           repetitions per setting (median and min–max spread)
 * @param configs        connections × depth settings of the closed-loop load
 * @param processCalls   pkcs11-tool processes started for the process-per-call baseline
 * @param openLoopS      length of the fixed-rate (half of peak) run per operation
 * @param idleConns      idle connections held open for the memory / throughput check
 * @param startupReps    starts timed for the start-up rows (daemon, kmsctl, pkcs11-tool)
 */
record Mode(String name, double warmS, double repS, int reps, List<Config> configs, int processCalls,
            double openLoopS, int idleConns, int startupReps) {

    record Config(int conns, int depth) {
    }

    static final Mode SMOKE = new Mode("--smoke (a completeness check for the test suite: numbers mean nothing)",
            0.05, 0.15, 2, List.of(new Config(1, 1), new Config(2, 2)), 2, 0.3, 100, 1);

    static final Mode QUICK = new Mode("--quick (short repetitions: smoke numbers, not a measurement to quote)",
            0.3, 0.4, 3, List.of(new Config(1, 1), new Config(2, 1), new Config(4, 4), new Config(16, 1)), 10,
            1.5, 10_000, 3);

    static final Mode FULL = new Mode("full", 1.0, 2.0, 5,
            List.of(new Config(1, 1), new Config(2, 1), new Config(4, 1), new Config(8, 1), new Config(16, 1),
                    new Config(64, 1), new Config(1, 8), new Config(4, 8), new Config(16, 8)),
            50, 5.0, 10_000, 10);

    boolean smoke() {
        return this == SMOKE;
    }
}
