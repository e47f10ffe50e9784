package dev.enclavekms.system;

import dev.enclavekms.json.Json;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * enclave-kmsd started the way systemd starts it from {@code enclave-kms.socket}: a
 * launcher (src/test/resources/socket_activate.py, standing in for systemd) owns the
 * listening socket for the whole test and passes it to each daemon process as standard
 * input ({@code --socket-activation}); the daemon's {@code sd_notify} messages arrive on
 * the launcher's NOTIFY_SOCKET. Everything the launcher sees is kept as events.
 */
final class ActivatedDaemon implements AutoCloseable {
    private final Path stateDir;
    private final Path socket;
    private final Path stdout;
    private final Path stderr;
    private final Process launcher;
    private final Writer commands;
    private final List<Map<String, Object>> events = new ArrayList<>();
    private int startedCount;

    private ActivatedDaemon(Path dir, Path stateDir, Path socket, List<String> daemonCommand, Map<String, String> env)
            throws IOException {
        this.stateDir = stateDir;
        this.socket = socket;
        this.stdout = dir.resolve("daemon-stdout.log");
        this.stderr = dir.resolve("daemon-stderr.log");
        Path script = DaemonProcess.REPO.resolve("softhsm-test/src/test/resources/socket_activate.py");
        List<String> cmd = new ArrayList<>(List.of("python3", script.toString(), "--socket", socket.toString(),
                "--notify", dir.resolve("notify.sock").toString(), "--stdout", stdout.toString(),
                "--stderr", stderr.toString(), "--"));
        cmd.addAll(daemonCommand);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(DaemonProcess.REPO.toFile())
                .redirectError(ProcessBuilder.Redirect.appendTo(dir.resolve("launcher-stderr.log").toFile()));
        pb.environment().remove("ENCLAVE_KMS_SOCKET");
        pb.environment().remove("NOTIFY_SOCKET");
        pb.environment().remove("JOURNAL_STREAM");
        pb.environment().remove("CREDENTIALS_DIRECTORY");
        pb.environment().putAll(env);
        launcher = pb.start();
        commands = new OutputStreamWriter(launcher.getOutputStream(), StandardCharsets.UTF_8);
        Thread.ofPlatform().daemon().name("launcher-events").start(this::readEvents);
    }

    /**
     * A launcher listening on {@code dir/state/kms.sock} for {@code bin/enclave-kmsd --dev
     * --state-dir dir/state --socket-activation}; no daemon runs until {@link #startDaemon}.
     */
    static ActivatedDaemon listening(Path dir, String... extraDaemonArgs) throws IOException {
        Path state = dir.resolve("state");
        List<String> cmd = new ArrayList<>(List.of(DaemonProcess.REPO.resolve("bin/enclave-kmsd").toString(), "--dev",
                "--state-dir", state.toString(), "--socket-activation"));
        cmd.addAll(List.of(extraDaemonArgs));
        return listening(dir, state, state.resolve("kms.sock"), cmd, Map.of());
    }

    /** A launcher listening on {@code socket} for any daemon command (which must take the socket from stdin). */
    static ActivatedDaemon listening(Path dir, Path stateDir, Path socket, List<String> daemonCommand,
                                     Map<String, String> env) throws IOException {
        ActivatedDaemon d = new ActivatedDaemon(dir, stateDir, socket, daemonCommand, env);
        d.await("the launcher listening", Duration.ofSeconds(30), e -> "listening".equals(e.get("event")));
        return d;
    }

    private void readEvents() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(launcher.getInputStream(),
                StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                Map<String, Object> e = Json.parseObject(line);
                synchronized (events) {
                    events.add(e);
                    events.notifyAll();
                }
            }
        } catch (IOException | dev.enclavekms.json.JsonException e) {
            // launcher gone (or garbled): waits below time out with the events seen so far
        }
    }

    /** Starts a daemon process on the listening socket; returns its pid (not waiting for readiness). */
    long startDaemon() throws IOException {
        int n = ++startedCount;
        command("start");
        Map<String, Object> started = awaitNth("daemon process " + n + " started", Duration.ofSeconds(30), n,
                e -> "started".equals(e.get("event")));
        return ((Number) started.get("pid")).longValue();
    }

    /** Waits for the {@code n}-th READY=1 notification (one per start and one per reload). */
    Map<String, Object> awaitReady(int n, Duration timeout) {
        return awaitNth("READY=1 number " + n, timeout, n, e -> notification(e, "READY=1"));
    }

    /** Waits for the exit of the {@code n}-th daemon process; returns its exit status. */
    int awaitExit(int n, Duration timeout) {
        return ((Number) awaitNth("exit of daemon process " + n, timeout, n,
                e -> "exited".equals(e.get("event"))).get("status")).intValue();
    }

    static boolean notification(Map<String, Object> e, String line) {
        return "notify".equals(e.get("event")) && ((String) e.get("message")).lines().anyMatch(line::equals);
    }

    Map<String, Object> await(String what, Duration timeout, Predicate<Map<String, Object>> p) {
        return awaitNth(what, timeout, 1, p);
    }

    /** Waits, without sleeping a fixed time, until {@code n} events match. */
    Map<String, Object> awaitNth(String what, Duration timeout, int n, Predicate<Map<String, Object>> p) {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (events) {
            while (true) {
                int seen = 0;
                for (Map<String, Object> e : events) {
                    if (p.test(e) && ++seen == n) {
                        return e;
                    }
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AssertionError("timed out after " + timeout + " waiting for " + what + "; events: "
                            + events + "\ndaemon stderr:\n" + safeRead(stderr));
                }
                try {
                    events.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new AssertionError("interrupted waiting for " + what);
                }
            }
        }
    }

    /** Every event so far, in order. */
    List<Map<String, Object>> events() {
        synchronized (events) {
            return List.copyOf(events);
        }
    }

    /** Notification messages so far, in order. */
    List<String> notifications() {
        return events().stream().filter(e -> "notify".equals(e.get("event")))
                .map(e -> (String) e.get("message")).toList();
    }

    private void command(String c) throws IOException {
        commands.write(c + "\n");
        commands.flush();
    }

    Path socket() {
        return socket;
    }

    Path stateDir() {
        return stateDir;
    }

    String stdout() {
        return safeRead(stdout);
    }

    String stderr() {
        return safeRead(stderr);
    }

    private static String safeRead(Path p) {
        try {
            return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            return "(unreadable: " + e + ")";
        }
    }

    static void signal(long pid, String signal) throws IOException, InterruptedException {
        Commands.run("kill", "-" + signal, Long.toString(pid)).requireSuccess();
    }

    @Override
    public void close() throws IOException, InterruptedException {
        try {
            command("quit");
            commands.close();
        } catch (IOException gone) {
            // the launcher exited already
        }
        if (!launcher.waitFor(30, TimeUnit.SECONDS)) {
            launcher.destroyForcibly().waitFor();
        }
    }
}
