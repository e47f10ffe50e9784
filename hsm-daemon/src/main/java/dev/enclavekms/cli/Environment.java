package dev.enclavekms.cli;

import java.io.InputStream;
import java.io.PrintStream;
import java.util.Map;

/**
 * What kmsctl reads and writes besides files: standard streams and environment
 * variables. Tests pass their own, so kmsctl runs in-process exactly as from a shell.
 *
 * @param variables environment variables (for {@code $ENCLAVE_KMS_SOCKET})
 */
public record Environment(InputStream in, PrintStream out, PrintStream err, Map<String, String> variables) {
    /** This process's standard streams and environment. */
    public static Environment system() {
        return new Environment(System.in, System.out, System.err, System.getenv());
    }
}
