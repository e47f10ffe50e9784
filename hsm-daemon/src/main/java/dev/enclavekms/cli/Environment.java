package dev.enclavekms.cli;

import java.io.InputStream;
import java.io.PrintStream;
import java.util.Map;

/**
 * What kmsctl reads and writes besides files: standard streams, environment variables
 * and whether the streams are terminals. Tests pass their own, so kmsctl runs in-process
 * exactly as from a shell.
 *
 * @param variables environment variables (for {@code $ENCLAVE_KMS_SOCKET})
 * @param terminals which of the standard streams are terminals
 */
public record Environment(InputStream in, PrintStream out, PrintStream err, Map<String, String> variables,
                          Terminals terminals) {

    /** Which standard streams are terminals: asked only by the commands that care. */
    public interface Terminals {
        /** A person can be asked to confirm on standard input. */
        boolean stdin();

        /** Progress can be a bar redrawn in place on standard error. */
        boolean stderr();

        static Terminals fixed(boolean stdin, boolean stderr) {
            return new Terminals() {
                @Override
                public boolean stdin() {
                    return stdin;
                }

                @Override
                public boolean stderr() {
                    return stderr;
                }
            };
        }
    }

    /** Streams that are not terminals (pipes, files, tests). */
    public Environment(InputStream in, PrintStream out, PrintStream err, Map<String, String> variables) {
        this(in, out, err, variables, Terminals.fixed(false, false));
    }

    public Environment(InputStream in, PrintStream out, PrintStream err, Map<String, String> variables,
                       boolean stdinTerminal, boolean stderrTerminal) {
        this(in, out, err, variables, Terminals.fixed(stdinTerminal, stderrTerminal));
    }

    /** This process's standard streams and environment. */
    public static Environment system() {
        return new Environment(System.in, System.out, System.err, System.getenv(), new Terminal.Process());
    }

    boolean stdinTerminal() {
        return terminals.stdin();
    }

    boolean stderrTerminal() {
        return terminals.stderr();
    }
}
