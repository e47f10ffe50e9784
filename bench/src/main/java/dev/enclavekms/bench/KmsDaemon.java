package dev.enclavekms.bench;

import dev.enclavekms.json.Json;
import dev.enclavekms.varlink.FrameReader;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A daemon process under measurement, started through {@code bin/enclave-kmsd} as a user
 * would. {@link #startedAfterMs} is the time from exec to the first successful
 * {@code Kms.Status} reply (the start-up target), launcher included.
 *
 * <p>Every start is {@code --dev} on the same state directory: the first creates the
 * token, later ones reuse it, with the options a measurement needs (connection limits for
 * the idle-connection check, audit durability off for the audit on/off rows).
 */
final class KmsDaemon implements AutoCloseable {
    final Process process;
    final Path socket;
    final double startedAfterMs;

    private KmsDaemon(Process process, Path socket, double startedAfterMs) {
        this.process = process;
        this.socket = socket;
        this.startedAfterMs = startedAfterMs;
    }

    /**
     * {@code bin/enclave-kmsd --dev --state-dir STATE [extra...]}: creates the token on the
     * first start and reuses it afterwards. {@code extra} are daemon options such as
     * {@code --audit-durability none} or {@code --max-connections N}; a daemon that does not
     * know one exits at once, which {@link DaemonRefused} reports.
     */
    static KmsDaemon dev(Path repo, Path state, Path logs, String name, List<String> extra) throws Exception {
        Files.createDirectories(state);
        List<String> cmd = new java.util.ArrayList<>(List.of(repo.resolve("bin/enclave-kmsd").toString(), "--dev",
                "--state-dir", state.toString()));
        cmd.addAll(extra);
        // BENCH_DAEMON_ARGS: options for every daemon the run starts (e.g. to compare a
        // daemon setting across two runs).
        String more = System.getenv("BENCH_DAEMON_ARGS");
        if (more != null && !more.isBlank()) cmd.addAll(List.of(more.strip().split("\\s+")));
        return start(repo, cmd, state.resolve("kms.sock"), state.resolve("softhsm2.conf"), logs, name);
    }

    private static KmsDaemon start(Path repo, List<String> cmd, Path socket, Path softhsmConf, Path logs, String name)
            throws Exception {
        Files.createDirectories(logs);
        Path stdout = logs.resolve("daemon-" + name + "-stdout.log");
        Path stderr = logs.resolve("daemon-" + name + "-stderr.log");
        Files.deleteIfExists(socket);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(repo.toFile())
                .redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
        pb.environment().remove("ENCLAVE_KMS_SOCKET");
        pb.environment().put("SOFTHSM2_CONF", softhsmConf.toString());
        long t0 = System.nanoTime();
        Process p = pb.start();
        long deadline = t0 + TimeUnit.SECONDS.toNanos(120);
        while (!statusAnswers(socket)) {
            if (!p.isAlive()) {
                throw new DaemonRefused("daemon (" + name + ") exited " + p.exitValue() + ": "
                        + Files.readString(stderr).strip());
            }
            if (System.nanoTime() > deadline) {
                p.destroyForcibly();
                throw new IllegalStateException("daemon (" + name + ") not serving after 120 s: "
                        + Files.readString(stderr));
            }
            LockSupport.parkNanos(2_000_000L); // poll: the socket appears when the daemon binds it
        }
        double ms = (System.nanoTime() - t0) / 1e6;
        System.err.printf("daemon (%s) answered Status %.0f ms after exec%n", name, ms);
        return new KmsDaemon(p, socket, ms);
    }

    /** One raw {@code Kms.Status} call; false while the socket is absent or refuses. */
    private static boolean statusAnswers(Path socket) {
        if (!Files.exists(socket)) return false;
        try (Load.Conn c = new Load.Conn(socket)) {
            c.out.write(FrameReader.encode("{\"method\":\"" + Bench.KMS + "Status\"}"));
            FrameReader.Frame f = c.reader.next();
            return f instanceof FrameReader.Frame.Text t && Json.parseObject(t.json()).get("error") == null;
        } catch (Exception e) {
            return false;
        }
    }

    /** The daemon's resident set in KiB (VmRSS); the launcher execs java, so its pid is the JVM's. */
    long rssKiB() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + process.pid() + "/status"))) {
            if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
        throw new IOException("no VmRSS for pid " + process.pid());
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy(); // SIGTERM: drains and exits, releasing the token
        if (!process.waitFor(30, TimeUnit.SECONDS)) process.destroyForcibly().waitFor();
    }

    /** The daemon would not start with the settings given (e.g. one it does not know). */
    static final class DaemonRefused extends IllegalStateException {
        DaemonRefused(String m) {
            super(m);
        }
    }
}
