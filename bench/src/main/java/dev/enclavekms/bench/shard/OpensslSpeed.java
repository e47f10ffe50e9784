package dev.enclavekms.bench.shard;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code openssl speed -evp aes-256-gcm -bytes 16384 -seconds N [-multi 2] -mr}: OpenSSL's
 * in-memory AES-256-GCM speed on 16 KiB blocks, the yardstick of issue 8's targets. The
 * machine-readable total is the last line {@code +F:<n>:AES-256-GCM:<bytes per second>}
 * (with {@code -multi}, the sum over the processes).
 */
final class OpensslSpeed {
    private OpensslSpeed() {
    }

    /** Why openssl cannot be measured here, or null when it can. */
    static String unavailableReason() {
        return Tools.missing("openssl", "version");
    }

    /**
     * Bytes per second, summed over {@code processes}. By default openssl divides by the
     * <em>user CPU time</em> it used, so its figure holds on a loaded machine where
     * anything timed by the wall clock slows down; {@code elapsed} adds {@code -elapsed}
     * (wall-clock divisor), the figure to compare wall-clock timings with.
     */
    static double bytesPerSecond(int seconds, int processes, boolean elapsed) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("openssl", "speed", "-evp", "aes-256-gcm", "-bytes", "16384",
                "-seconds", Integer.toString(seconds), "-mr"));
        if (elapsed) {
            cmd.add("-elapsed");
        }
        if (processes > 1) {
            cmd.addAll(List.of("-multi", Integer.toString(processes)));
        }
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(seconds * 4L + 30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("openssl speed did not finish");
        }
        if (p.exitValue() != 0) {
            throw new IOException("openssl speed exited with " + p.exitValue() + ": " + out.strip());
        }
        return parse(out);
    }

    /** The total from {@code -mr} output. */
    static double parse(String out) throws IOException {
        double total = Double.NaN;
        for (String line : out.split("\n")) {
            String l = line.strip();
            if (l.startsWith("+F:") && l.toUpperCase().contains(":AES-256-GCM:")) {
                total = Double.parseDouble(l.substring(l.lastIndexOf(':') + 1));
            }
        }
        if (Double.isNaN(total) || total <= 0) {
            throw new IOException("no AES-256-GCM total in openssl speed's output: " + out.strip());
        }
        return total;
    }

    static String version() {
        return Tools.firstLine("openssl", "version");
    }
}
