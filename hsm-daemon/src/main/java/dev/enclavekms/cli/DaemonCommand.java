package dev.enclavekms.cli;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.KmsException;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * A kmsctl command that talks to the daemon. {@link #kms()} connects on first use — so a
 * command reads and checks its inputs first, and a usage error or an unreadable file is
 * reported as such even when the daemon is down — and the connection is closed when the
 * command ends.
 *
 * <p>An IOException from the connection becomes exit code 3, a {@link KmsException}
 * exit code 4 (see {@link Kmsctl}). Local files are read and written through
 * {@link Inputs} and {@link Output}, which never throw IOException, so the two cannot be
 * confused.
 *
 * <p>Commands that do not talk to the daemon (e.g. {@code provision}, which talks to the
 * hardware) implement {@code Callable<Integer>} directly and use {@link Kmsctl#of}.
 */
abstract class DaemonCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    private KmsClient kms;

    /** Runs the command and returns the exit code. */
    abstract int run(Output out) throws KmsException, IOException;

    /** The connection to the daemon, opened on first use. */
    final KmsClient kms() {
        if (kms == null) {
            Path socket = root().socket();
            try {
                kms = KmsClient.connect(socket);
            } catch (IOException e) {
                throw CliFailure.unreachable(e.getMessage() + " (is enclave-kmsd running? the socket comes from "
                        + "--socket, else $ENCLAVE_KMS_SOCKET, else /run/enclave-kms/kms.sock)");
            }
            authenticate();
        }
        return kms;
    }

    /** Presents the token of {@code --token-file} / {@code $ENCLAVE_KMS_TOKEN_FILE}, if any, first. */
    private void authenticate() {
        Path file = root().tokenFile();
        if (file == null) {
            return;
        }
        String token = new String(Inputs.read(env(), file), java.nio.charset.StandardCharsets.US_ASCII).strip();
        try {
            kms.authenticate(token);
        } catch (IOException e) {
            throw CliFailure.unreachable("connection to the daemon at " + root().socket() + " failed: " + e.getMessage());
        } catch (KmsException e) {
            throw new CliFailure(Kmsctl.EXIT_KMS_ERROR, "the token in " + file + " was refused: " + e.getMessage());
        }
    }

    final Kmsctl root() {
        return Kmsctl.of(spec);
    }

    final Environment env() {
        return root().environment();
    }

    final CommandLine commandLine() {
        return spec.commandLine();
    }

    @Override
    public final Integer call() throws KmsException {
        try {
            return run(root().output());
        } catch (IOException e) {
            throw CliFailure.unreachable("connection to the daemon at " + root().socket() + " failed: " + e.getMessage());
        } finally {
            if (kms != null) {
                try {
                    kms.close();
                } catch (IOException ignored) {
                    // the answer is already printed; a failing close changes nothing for the user
                }
                kms = null;
            }
        }
    }
}
