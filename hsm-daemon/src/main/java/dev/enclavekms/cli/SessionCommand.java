package dev.enclavekms.cli;

import dev.enclavekms.client.KeySession;
import dev.enclavekms.client.KmsException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.FilterInputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code kmsctl session ...}: ephemeral key sessions (docs/sessions.md). Blobs are streamed
 * from and to files in 1 MiB chunks, so their size does not matter. Local file failures
 * are reported as such (exit 1), never as a broken connection.
 */
@Command(name = "session", description = "Ephemeral key sessions: open, put and get named blobs, close, revoke.",
        subcommands = {SessionCommand.Open.class, SessionCommand.Put.class, SessionCommand.Get.class,
                SessionCommand.Close.class, SessionCommand.Revoke.class})
final class SessionCommand extends CommandGroup {

    @Command(name = "open", description = {"Open a session of your tenant and print its id on standard output."})
    static final class Open extends DaemonCommand {
        @Option(names = "--ttl", paramLabel = "DURATION", converter = Durations.Converter.class,
                description = "How long it lives, e.g. 30m, 2h (default: the daemon's, 1h; at most 4h).")
        Duration ttl;

        @Override
        int run(Output out) throws KmsException, IOException {
            KeySession s = kms().openSession(ttl == null || ttl.isZero() ? null : ttl);
            if (out.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("session", s.id());
                m.put("tenant", s.tenant());
                m.put("expires", s.expires().toString());
                m.put("ttl_seconds", s.ttlSeconds());
                out.json(m);
            } else {
                out.line(s.id());
                env().err().println("kmsctl: session of tenant " + s.tenant() + ", expires " + s.expires());
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "put", description = "Upload FILE (or - for standard input) as blob NAME of the session, and seal it.")
    static final class Put extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "SESSION") String session;
        @Parameters(index = "1", paramLabel = "NAME") String name;
        @Parameters(index = "2", paramLabel = "FILE") Path file;

        @Override
        int run(Output out) throws KmsException, IOException {
            InputStream in;
            try {
                in = file.toString().equals("-") ? env().in() : Files.newInputStream(file);
            } catch (IOException e) {
                throw CliFailure.local("cannot read " + file + ": " + Inputs.reason(e));
            }
            long size;
            try (InputStream local = new FilterInputStream(in) {
                @Override
                public int read(byte[] b, int off, int len) {
                    try {
                        return super.read(b, off, len);
                    } catch (IOException e) {
                        throw CliFailure.local("cannot read " + file + ": " + Inputs.reason(e));
                    }
                }
            }) {
                size = kms().putSessionMaterial(session, name, local);
            }
            if (out.json()) {
                out.json(Map.of("name", name, "size", size));
            } else {
                out.line("stored " + name + ": " + size + " bytes");
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "get", description = "Download blob NAME of the session into FILE (written whole or not at all).")
    static final class Get extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "SESSION") String session;
        @Parameters(index = "1", paramLabel = "NAME") String name;
        @Parameters(index = "2", paramLabel = "FILE") Path file;

        @Override
        int run(Output out) throws KmsException, IOException {
            Path dir = file.toAbsolutePath().getParent();
            Path temp;
            OutputStream os;
            try {
                temp = Files.createTempFile(dir, "." + file.getFileName(), ".tmp");
                os = Files.newOutputStream(temp);
            } catch (IOException e) {
                throw CliFailure.local("cannot write " + file + ": " + Inputs.reason(e));
            }
            long size;
            boolean done = false;
            try (OutputStream local = new FilterOutputStream(os) {
                @Override
                public void write(byte[] b, int off, int len) {
                    try {
                        this.out.write(b, off, len);
                    } catch (IOException e) {
                        throw CliFailure.local("cannot write " + file + ": " + Inputs.reason(e));
                    }
                }
            }) {
                size = kms().getSessionMaterial(session, name, local);
                done = true;
            } finally {
                if (!done) Files.deleteIfExists(temp);
            }
            try {
                Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                Files.deleteIfExists(temp);
                throw CliFailure.local("cannot write " + file + ": " + Inputs.reason(e));
            }
            if (out.json()) {
                out.json(Map.of("name", name, "size", size));
            } else {
                out.line("wrote " + name + " to " + file + ": " + size + " bytes");
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "close", description = "End the session: its key is destroyed, then its material.")
    static final class Close extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "SESSION") String session;

        @Override
        int run(Output out) throws KmsException, IOException {
            kms().closeSession(session);
            if (out.json()) {
                out.json(Map.of("session", session, "closed", true));
            } else {
                out.line("closed session " + session);
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "revoke", description = {"End every session of TENANT at once (the emergency procedure).",
            "Another tenant than your own needs a grant with all_tenants."})
    static final class Revoke extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "TENANT") String tenant;

        @Override
        int run(Output out) throws KmsException, IOException {
            long n = kms().revokeSessions(tenant);
            if (out.json()) {
                out.json(Map.of("tenant", tenant, "revoked", n));
            } else {
                out.line("revoked " + n + " session" + (n == 1 ? "" : "s") + " of tenant " + tenant);
            }
            return Kmsctl.EXIT_OK;
        }
    }
}
