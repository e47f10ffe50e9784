package dev.enclavekms.bench.shard;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** External commands: whether they are there, and running them. */
final class Tools {
    private Tools() {
    }

    /** Null when {@code command args} runs and exits 0, else why not (with the Debian package to install). */
    static String missing(String command, String... args) {
        try {
            run(command, args);
            return null;
        } catch (IOException e) {
            return command + " is not available (" + e.getMessage() + "); install the Debian package '"
                    + command + "' (bin/lib.sh ensure_packages does)";
        }
    }

    static String firstLine(String command, String... args) {
        try {
            String out = run(command, args).strip();
            int nl = out.indexOf('\n');
            return nl < 0 ? out : out.substring(0, nl);
        } catch (IOException e) {
            return "unavailable";
        }
    }

    /** Runs a command to its end (at most 10 minutes); returns stdout+stderr; throws when it fails. */
    static String run(String command, String... args) throws IOException {
        List<String> cmd = new java.util.ArrayList<>();
        cmd.add(command);
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            if (!p.waitFor(10, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IOException(command + " did not finish");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " exited with " + p.exitValue() + ": " + out.strip());
        }
        return out;
    }
}
