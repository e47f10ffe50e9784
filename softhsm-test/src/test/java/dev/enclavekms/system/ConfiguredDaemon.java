package dev.enclavekms.system;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real enclave-kmsd started as operators start it, {@code bin/enclave-kmsd --config FILE},
 * on the SoftHSM token, PIN and registry that a {@link DaemonProcess} in dev mode
 * provisioned first (then stopped). Used where the dev layout does not fit: other users
 * must reach the socket, so it lives in a directory they can traverse, in a group they
 * are in ({@code socket.group}), under a policy file of the test's own.
 */
public final class ConfiguredDaemon implements AutoCloseable {
    private final Path config;
    private final Path softhsmConf;
    private final Path log;
    private Process process;

    private ConfiguredDaemon(Path config, Path softhsmConf, Path log) {
        this.config = config;
        this.softhsmConf = softhsmConf;
        this.log = log;
    }

    /**
     * Provisions a token with a dev daemon under {@code dir}, then starts a configured
     * daemon on it with {@code socket}, {@code socketGroup} and {@code policy}.
     */
    public static ConfiguredDaemon start(Path dir, Path socket, String socketGroup, Path policy) throws Exception {
        Files.createDirectories(dir);
        DaemonProcess dev = DaemonProcess.start(dir);
        dev.stop();
        Path config = dir.resolve("enclave-kms.conf");
        Files.writeString(config, String.join("\n",
                "pkcs11.module = " + dev.pkcs11Module(),
                "pkcs11.token-label = " + dev.tokenLabel(),
                "pkcs11.pin-file = " + dev.pinFile(),
                "registry = " + dev.stateDir().resolve("registry.db"),
                "socket = " + socket,
                "socket.group = " + socketGroup,
                "policy = " + policy, ""));
        ConfiguredDaemon d = new ConfiguredDaemon(config, dev.softhsmConf(), dir.resolve("configured-daemon.log"));
        d.startProcess();
        return d;
    }

    private void startProcess() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(List.of(DaemonProcess.REPO.resolve("bin/enclave-kmsd").toString(),
                "--config", config.toString())).directory(DaemonProcess.REPO.toFile())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().put("SOFTHSM2_CONF", softhsmConf.toString());
        process = pb.start();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!output().contains("Daemon: serving ")) {
            if (!process.isAlive()) {
                throw new IllegalStateException("daemon exited with " + process.exitValue() + ":\n" + output());
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("daemon not ready after 60 s:\n" + output());
            }
            process.waitFor(50, TimeUnit.MILLISECONDS);
        }
    }

    /** Everything the daemon printed so far. */
    public String output() throws IOException {
        return Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
    }

    public void stop() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop();
    }
}
