package dev.enclavekms.bench;

import org.HdrHistogram.Histogram;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * One-shot commands timed wall-clock, exec to exit: {@code kmsctl status} against a
 * running daemon, and {@code pkcs11-tool --list-objects} on the same token (what an
 * operator would otherwise run). Rows have operation {@code startup}; ops/s is the
 * inverse of the wall time, the percentiles are the wall times.
 */
final class Startup {
    private Startup() {
    }

    static Measure kmsctl(Path repo, Path socket, int reps) throws Exception {
        return time(List.of(repo.resolve("bin/kmsctl").toString(), "--socket", socket.toString(), "status"),
                Map.of(), repo, reps, "bin/kmsctl --socket S status, exec to exit");
    }

    static Measure pkcs11Tool(Map<String, Object> dev, int reps) throws Exception {
        return time(List.of("pkcs11-tool", "--module", (String) dev.get("pkcs11_module"), "--token-label",
                        (String) dev.get("token_label"), "--list-objects"),
                Map.of("SOFTHSM2_CONF", (String) dev.get("softhsm_conf")), Path.of("/"), reps,
                "pkcs11-tool --list-objects (no login), exec to exit");
    }

    private static Measure time(List<String> cmd, Map<String, String> env, Path dir, int reps, String note)
            throws Exception {
        Direct.Op op = (t, i) -> {
            ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD);
            pb.environment().remove("ENCLAVE_KMS_SOCKET");
            pb.environment().putAll(env);
            int rc = pb.start().waitFor();
            if (rc != 0) throw new IllegalStateException(String.join(" ", cmd.subList(0, 1)) + " exited " + rc);
            return 1;
        };
        Direct.run(1, op, 600, 1, new Histogram(3_600_000_000_000L, 3)); // page cache, CDS archive
        Measure m = new Measure();
        for (int r = 0; r < reps; r++) {
            Histogram h = new Histogram(3_600_000_000_000L, 3);
            m.add(Direct.run(1, op, 600, 1, h), h);
        }
        m.note = note;
        return m;
    }
}
