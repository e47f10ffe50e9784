package dev.enclavekms.bench;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

/**
 * CPU affinity through {@code taskset} (util-linux), for the pinned capacity comparison:
 * the daemon on one CPU and the load generator on another, so that the daemon's
 * throughput is what one core gives it, not what it gets while sharing both with the
 * generator. Every pin is checked afterwards in {@code /proc/PID/task/*}/status
 * ({@code Cpus_allowed_list}) of every thread, never assumed.
 */
final class Pinning {
    static final long SELF = ProcessHandle.current().pid();

    private Pinning() {
    }

    /** Why CPUs 0 and 1 cannot be given one process each here, or null if they can. */
    static String unavailable() {
        int n = Runtime.getRuntime().availableProcessors();
        String allowed;
        try {
            allowed = allowedList(SELF);
        } catch (IOException e) {
            return "no /proc/self/status (" + e.getMessage() + ")";
        }
        TreeSet<Integer> cpus = parse(allowed);
        if (n < 2 || !cpus.contains(0) || !cpus.contains(1)) {
            return "pinning needs CPUs 0 and 1; this machine gives the bench " + n + " (Cpus_allowed_list " + allowed
                    + ")";
        }
        try {
            Process p = new ProcessBuilder("taskset", "-p", String.valueOf(SELF))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) return "taskset -p failed";
        } catch (Exception e) {
            return "no taskset (util-linux): " + e.getMessage();
        }
        return null;
    }

    /** {@code taskset -a -p -c CPUS PID}: every current thread of {@code pid}; threads it starts later inherit. */
    static void pin(long pid, String cpus) throws Exception {
        String out = "";
        // A thread that ends between taskset listing the threads and setting its affinity makes
        // taskset fail ("No such process"); the next attempt lists only the living ones.
        for (int attempt = 0; attempt < 5; attempt++) {
            Process p = new ProcessBuilder("taskset", "-a", "-p", "-c", cpus, String.valueOf(pid))
                    .redirectErrorStream(true).start();
            out = new String(p.getInputStream().readAllBytes()).strip();
            if (p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0) {
                return;
            }
        }
        throw new IllegalStateException("taskset -a -p -c " + cpus + " " + pid + " failed: " + out);
    }

    /**
     * Checks that every thread of {@code pid} may run on exactly {@code cpus}.
     *
     * @return how many threads were checked
     */
    static int verify(long pid, String cpus) throws IOException {
        TreeSet<Integer> want = parse(cpus);
        int checked = 0;
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc/" + pid + "/task"))) {
            for (Path t : tasks) {
                String list;
                try {
                    list = field(t.resolve("status"), "Cpus_allowed_list:");
                } catch (NoSuchFileException e) {
                    continue; // the thread ended meanwhile
                }
                if (!parse(list).equals(want)) {
                    throw new IllegalStateException("thread " + t.getFileName() + " of " + pid + " has Cpus_allowed_list "
                            + list + ", not " + cpus);
                }
                checked++;
            }
        }
        return checked;
    }

    static String allowedList(long pid) throws IOException {
        return field(Path.of("/proc/" + pid + "/status"), "Cpus_allowed_list:");
    }

    /** A CPU list such as {@code 0-1,3}. */
    static TreeSet<Integer> parse(String list) {
        TreeSet<Integer> s = new TreeSet<>();
        for (String part : list.strip().split(",")) {
            if (part.isBlank()) continue;
            String[] ab = part.split("-");
            int a = Integer.parseInt(ab[0].strip());
            int b = ab.length > 1 ? Integer.parseInt(ab[1].strip()) : a;
            for (int i = a; i <= b; i++) s.add(i);
        }
        return s;
    }

    private static String field(Path status, String name) throws IOException {
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith(name)) return line.substring(name.length()).strip();
        }
        throw new IOException("no " + name + " in " + status);
    }
}
