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
 */
public final class DaemonProcess implements AutoCloseable {
    public static final Path REPO = Path.of(System.getProperty("enclavekms.repo", "..")).toAbsolutePath().normalize();

    private final Path stateDir;
    private final List<String> extraArgs;
    private final Path stdout;
    private final Path stderr;
    private Process process;
    private Map<String, Object> dev;
    private int starts;

    private DaemonProcess(Path stateDir, List<String> extraArgs) {
        this.stateDir = stateDir;
        this.extraArgs = List.copyOf(extraArgs);
        this.stdout = stateDir.resolveSibling(stateDir.getFileName() + "-stdout.log");
        this.stderr = stateDir.resolveSibling(stateDir.getFileName() + "-stderr.log");
    }

    /** Starts a daemon on a new state directory under {@code parent}. */
    public static DaemonProcess start(Path parent) throws Exception {
        return start(parent, List.of());
    }

    /** Starts a daemon with extra options (e.g. the {@code --test-*} hooks of --dev mode), also on restarts. */
    public static DaemonProcess start(Path parent, List<String> extraArgs) throws Exception {
        DaemonProcess d = new DaemonProcess(parent.resolve("state"), extraArgs);
        d.startProcess();
        return d;
    }

    private void startProcess() throws Exception {
        List<String> cmd = new ArrayList<>(List.of(REPO.resolve("bin/enclave-kmsd").toString(), "--dev", "--state-dir",
                stateDir.toString()));
        cmd.addAll(extraArgs);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(REPO.toFile())
                .redirectOutput(ProcessBuilder.Redirect.appendTo(stdout.toFile()))
                .redirectError(ProcessBuilder.Redirect.appendTo(stderr.toFile()));
        pb.environment().remove("ENCLAVE_KMS_SOCKET");
        process = pb.start();
        starts++;
        // Ready when the welcome text has been printed (after the socket is bound).
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        int expected = starts;
        while (countOccurrences(read(stdout), "enclave-kms is serving on") < expected) {
            if (!process.isAlive()) {
                throw new IllegalStateException("daemon exited with " + process.exitValue() + ":\n" + read(stderr));
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("daemon not ready after 60 s:\n" + read(stderr));
            }
            process.waitFor(50, TimeUnit.MILLISECONDS);
        }
        dev = Json.parseObject(Files.readString(stateDir.resolve("dev.json")));
    }

    private static int countOccurrences(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) n++;
        return n;
    }

    private static String read(Path p) throws IOException {
        return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8) : "";
    }

    /** Stops with SIGTERM (drain) and starts again on the same state directory. */
    public void restart() throws Exception {
        stop();
        startProcess();
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

    /** The daemon's process id (the JVM: the launcher execs it). */
    public long pid() {
        return process.pid();
    }

    @Override
    public void close() throws InterruptedException {
        stop();
    }
}
