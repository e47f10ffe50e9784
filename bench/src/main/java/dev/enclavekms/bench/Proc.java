package dev.enclavekms.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Counts from /proc about another process (the daemon): open descriptors and OS threads. */
final class Proc {
    private Proc() {
    }

    /** Open file descriptors (one per accepted connection, among others). */
    static int fds(long pid) throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return (int) s.count();
        }
    }

    /** OS threads ({@code Threads:} of /proc/PID/status); virtual threads are not among them. */
    static int threads(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("Threads:")) return Integer.parseInt(line.substring(8).strip());
        }
        throw new IOException("no Threads: for pid " + pid);
    }
}
