package dev.enclavekms.cli;

import java.io.InputStream;
import java.io.PrintStream;
import java.util.Map;

/**
 * What kmsctl reads and writes besides files: standard streams, environment variables
 * and whether the streams are terminals. Tests pass their own, so kmsctl runs in-process
 * exactly as from a shell.
 *
 * @param variables      environment variables (for {@code $ENCLAVE_KMS_SOCKET})
 * @param stdinTerminal  standard input is a terminal: a person can be asked to confirm
 * @param stderrTerminal standard error is a terminal: progress can be a redrawn bar
 */
public record Environment(InputStream in, PrintStream out, PrintStream err, Map<String, String> variables,
                          boolean stdinTerminal, boolean stderrTerminal) {

    /** Streams that are not terminals (pipes, files, tests). */
    public Environment(InputStream in, PrintStream out, PrintStream err, Map<String, String> variables) {
        this(in, out, err, variables, false, false);
    }

    /** This process's standard streams and environment. */
    public static Environment system() {
        return new Environment(System.in, System.out, System.err, System.getenv(),
                Terminal.isTerminal(0), Terminal.isTerminal(2));
    }
}
