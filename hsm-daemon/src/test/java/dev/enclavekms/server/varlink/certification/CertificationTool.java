package dev.enclavekms.server.varlink.certification;

import dev.enclavekms.server.varlink.Await;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The reference implementation, {@code varlink-go-certification} (Debian package
 * varlink-go), run as a child process. Its output goes to a file, not a pipe, so that
 * a chatty child can never block on a full pipe that nobody reads.
 */
final class CertificationTool implements AutoCloseable {
    static final Path BINARY = Path.of("/usr/bin/varlink-go-certification");

    private final Process process;
    private final Path output;

    private CertificationTool(Process process, Path output) {
        this.process = process;
        this.output = output;
    }

    /** Runs the reference client against our server at {@code socket}. */
    static CertificationTool client(Path socket, Path workDir) throws IOException {
        return start(List.of("--client", "--varlink", "unix:" + socket), workDir.resolve("go-client.out"));
    }

    /** Runs the reference server on {@code socket} and returns once it accepts connections. */
    static CertificationTool server(Path socket, Path workDir) throws IOException {
        CertificationTool tool = start(List.of("--varlink", "unix:" + socket), workDir.resolve("go-server.out"));
        try {
            Await.until("varlink-go-certification to listen on " + socket, Duration.ofSeconds(10),
                    () -> !tool.process.isAlive() || accepts(socket));
            if (!tool.process.isAlive()) {
                throw new IOException("varlink-go-certification exited with " + tool.process.exitValue()
                        + ": " + tool.output());
            }
            return tool;
        } catch (IOException | RuntimeException | Error e) {
            tool.close();
            throw e;
        }
    }

    private static CertificationTool start(List<String> args, Path output) throws IOException {
        if (!Files.isExecutable(BINARY)) {
            throw new IOException(BINARY + " is missing: install the Debian package varlink-go");
        }
        ProcessBuilder pb = new ProcessBuilder();
        pb.command().add(BINARY.toString());
        pb.command().addAll(args);
        pb.redirectErrorStream(true).redirectOutput(output.toFile()).redirectInput(ProcessBuilder.Redirect.from(
                Path.of("/dev/null").toFile()));
        return new CertificationTool(pb.start(), output);
    }

    private static boolean accepts(Path socket) {
        if (!Files.exists(socket)) {
            return false;
        }
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return true;
        } catch (IOException notYet) {
            return false;
        }
    }

    /** Waits for the process to exit and returns its exit code; kills it after {@code timeout}. */
    int awaitExit(Duration timeout) throws InterruptedException, IOException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            close();
            throw new AssertionError("varlink-go-certification did not finish within " + timeout
                    + "; its output: " + output());
        }
        return process.exitValue();
    }

    String output() throws IOException {
        return Files.exists(output) ? Files.readString(output, StandardCharsets.UTF_8) : "";
    }

    /** Kills the process (if still running) and waits for it to be gone. */
    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
