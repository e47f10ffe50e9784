package dev.enclavekms.cli;

/**
 * A failure kmsctl reports as {@code kmsctl: <message>} and ends with {@link #exitCode()}:
 * a local problem (unreadable file), or the daemon being unreachable.
 */
final class CliFailure extends RuntimeException {
    private final int exitCode;

    CliFailure(int exitCode, String message) {
        super(message, null, false, false);
        this.exitCode = exitCode;
    }

    int exitCode() {
        return exitCode;
    }

    /** The daemon could not be reached, or the connection broke mid-call. */
    static CliFailure unreachable(String message) {
        return new CliFailure(Kmsctl.EXIT_UNREACHABLE, message);
    }

    /** A local problem: a file that cannot be read or written, an input that is not what it must be. */
    static CliFailure local(String message) {
        return new CliFailure(Kmsctl.EXIT_FAILED, message);
    }
}
