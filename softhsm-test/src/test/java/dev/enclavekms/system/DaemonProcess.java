package dev.enclavekms.system;

import dev.enclavekms.json.Json;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A real enclave-kmsd process started through the launcher the README documents
 * ({@code bin/enclave-kmsd --dev --state-dir DIR}), on its own SoftHSM token under a
 * fresh state directory. Its stdout and stderr go to files so tests can scan them.
 *
 * <p>Crash tests start it with extra (test-only) arguments, wait for a line it prints
 * (e.g. {@code PAUSED AT rotate.after-hardware}), {@linkplain #kill9() SIGKILL} it, and
 * {@linkplain #restart(String...) restart} it on the same state directory with other
 * arguments.
 */
public final class DaemonProcess implements AutoCloseable {
    public static final Path REPO = Path.of(System.getProperty("enclavekms.repo", "..")).toAbsolutePath().normalize();

    private final Path stateDir;
    private final List<String> extraArgs;
    private final Path stdout;
    private final Path stderr;
    private Process process;
    private Map<String, Object> dev;
    /** Where this start's output begins in the (appended) stdout and stderr files. */
    private long stdoutStart;
    private long stderrStart;

    private DaemonProcess(Path stateDir, List<String> extraArgs) {
        this.stateDir = stateDir;
        this.extraArgs = List.copyOf(extraArgs);
        this.stdout = stateDir.resolveSibling(stateDir.getFileName() + "-stdout.log");
        this.stderr = stateDir.resolveSibling(stateDir.getFileName() + "-stderr.log");
    }

    /**
     * Starts a daemon on a new state directory under {@code parent}, with {@code extraArgs}
     * after {@code --dev --state-dir DIR} (e.g. the {@code --test-*} options); they are
     * given again at every restart.
     */
    public static DaemonProcess start(Path parent, String... extraArgs) throws Exception {
        return start(parent, List.of(extraArgs));
    }

    /** As {@link #start(Path, String...)}, with the options as a list. */
    public static DaemonProcess start(Path parent, List<String> extraArgs) throws Exception {
        DaemonProcess d = new DaemonProcess(parent.resolve("state"), extraArgs);
        d.startProcess();
        return d;
    }

    /** Starts with the options of {@link #start} followed by {@code restartArgs}. */
    private void startProcess(String... restartArgs) throws Exception {
        // -v: debug logging on, so the tests' scans for secrets cover every log line there is.
        List<String> cmd = new ArrayList<>(List.of(REPO.resolve("bin/enclave-kmsd").toString(), "--dev", "-v",
                "--state-dir", stateDir.toString()));
        cmd.addAll(extraArgs);
        cmd.addAll(List.of(restartArgs));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(REPO.toFile())
                .redirectOutput(ProcessBuilder.Redirect.appendTo(stdout.toFile()))
                .redirectError(ProcessBuilder.Redirect.appendTo(stderr.toFile()));
        pb.environment().remove("ENCLAVE_KMS_SOCKET");
        stdoutStart = size(stdout);
        stderrStart = size(stderr);
        process = pb.start();
        // Ready when the welcome text has been printed (after the socket is bound).
        awaitOutput("enclave-kms is serving on", Duration.ofSeconds(60));
        dev = Json.parseObject(Files.readString(stateDir.resolve("dev.json")));
    }

    /**
     * Waits until this start of the daemon has printed {@code text} on stdout; polls the
     * output file, never sleeps a fixed time, and fails at once if the daemon exits.
     */
    public void awaitOutput(String text, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!stdoutOfThisStart().contains(text)) {
            if (!process.isAlive()) {
                throw new IllegalStateException("daemon exited with " + process.exitValue() + " before printing '"
                        + text + "':\n" + read(stderr, stderrStart));
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("daemon did not print '" + text + "' within " + timeout + ":\n"
                        + read(stderr, stderrStart));
            }
            process.waitFor(20, TimeUnit.MILLISECONDS); // returns at once if the daemon dies
        }
    }

    /** What this start of the daemon printed on stdout so far. */
    public String stdoutOfThisStart() throws IOException {
        return read(stdout, stdoutStart);
    }

    /** What this start of the daemon printed on stderr (its log) so far. */
    public String stderrOfThisStart() throws IOException {
        return read(stderr, stderrStart);
    }

    private static long size(Path p) throws IOException {
        return Files.exists(p) ? Files.size(p) : 0;
    }

    private static String read(Path p) throws IOException {
        return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8) : "";
    }

    private static String read(Path p, long from) throws IOException {
        if (!Files.exists(p)) return "";
        byte[] all = Files.readAllBytes(p);
        return new String(all, (int) Math.min(from, all.length), (int) Math.max(0, all.length - from),
                StandardCharsets.UTF_8);
    }

    /**
     * Stops with SIGTERM (drain) if running, and starts again on the same state directory
     * with {@code extraArgs} (none: a normal daemon).
     */
    public void restart(String... extraArgs) throws Exception {
        stop();
        startProcess(extraArgs);
    }

    /**
     * Kills the daemon with SIGKILL, as a crash or the OOM killer would: no shutdown hook,
     * no draining, nothing flushed. {@code bin/enclave-kmsd} execs java, so the process this
     * class started is the JVM itself (checked here, or the signal would hit a shell and
     * leave the daemon running).
     *
     * @return the exit status the OS reported (137 = 128 + SIGKILL)
     */
    public int kill9() throws Exception {
        String command = process.info().command().orElse("?");
        if (!command.endsWith("/java")) {
            throw new IllegalStateException("pid " + process.pid() + " is " + command
                    + ", not the JVM: the launcher no longer execs java, so SIGKILL would miss the daemon");
        }
        process.destroyForcibly(); // SIGKILL on Unix
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("daemon " + process.pid() + " survived SIGKILL for 30 s");
        }
        return process.exitValue();
    }

    public long pid() {
        return process.pid();
    }

    public void stop() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroy(); // SIGTERM: the daemon drains and exits
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
        }
    }

    public Path socket() {
        return Path.of((String) dev.get("socket"));
    }

    public Path stateDir() {
        return stateDir;
    }

    public Path softhsmConf() {
        return Path.of((String) dev.get("softhsm_conf"));
    }

    public Path pinFile() {
        return Path.of((String) dev.get("pin_file"));
    }

    public String tokenLabel() {
        return (String) dev.get("token_label");
    }

    public Path pkcs11Module() {
        return Path.of((String) dev.get("pkcs11_module"));
    }

    /** Everything the daemon printed so far, stdout and stderr. */
    public String output() throws IOException {
        return read(stdout) + read(stderr);
    }

    public boolean alive() {
        return process.isAlive();
    }

    @Override
    public void close() throws InterruptedException {
        stop();
    }
}
