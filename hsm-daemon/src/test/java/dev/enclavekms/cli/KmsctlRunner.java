package dev.enclavekms.cli;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertFalse;

/** Runs kmsctl in-process exactly as {@code main} does, with the streams and terminals a test chooses. */
final class KmsctlRunner {
    private KmsctlRunner() {
    }

    record Run(int code, byte[] out, String stdout, String stderr) { }

    static Run run(byte[] stdin, Map<String, String> env, boolean stdinTerminal, boolean stderrTerminal,
                   String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Kmsctl.run(new Environment(new ByteArrayInputStream(stdin),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8),
                env, stdinTerminal, stderrTerminal), args);
        String stderr = err.toString(StandardCharsets.UTF_8);
        assertFalse(stderr.contains("\tat ") || stderr.contains("Exception in"), "stack trace printed: " + stderr);
        return new Run(code, out.toByteArray(), out.toString(StandardCharsets.UTF_8), stderr);
    }
}
