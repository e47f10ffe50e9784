package dev.enclavekms.bench.shard;

import java.util.Arrays;

/** Repeated measurements of one thing (seconds), sorted: median and spread. */
record Samples(double[] sorted) {
    Samples {
        sorted = sorted.clone();
        Arrays.sort(sorted);
        if (sorted.length == 0) {
            throw new IllegalArgumentException("no samples");
        }
    }

    static Samples of(double... values) {
        return new Samples(values);
    }

    int count() {
        return sorted.length;
    }

    double median() {
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    double min() {
        return sorted[0];
    }

    double max() {
        return sorted[sorted.length - 1];
    }

    /** Nearest-rank percentile, 0 < p ≤ 100. */
    double percentile(double p) {
        int rank = (int) Math.ceil(p / 100 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }
}
