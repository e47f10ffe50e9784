package dev.enclavekms.server;

import org.apache.commons.daemon.Daemon;
import org.apache.commons.daemon.DaemonContext;
import org.apache.commons.daemon.DaemonInitException;
import org.apache.commons.daemon.DaemonUserSignal;
import picocli.CommandLine;

/**
 * enclave-kmsd under Apache Commons Daemon, for hosts without systemd:
 * {@code jsvc … dev.enclavekms.server.JsvcDaemon --config FILE} (systemd/enclave-kms-jsvc
 * runs it). Same options, same start-up and the same drain-and-flush shutdown as
 * {@link Main}; jsvc owns the process: it detaches, writes the pid file, switches to the
 * service user between {@link #init} and {@link #start}, and calls {@link #stop} and
 * {@link #destroy} on SIGTERM. SIGUSR2 ({@link #signal}) reloads — jsvc keeps SIGHUP for
 * itself. There is no socket activation and no sd_notify here: the daemon binds the
 * configured socket.
 *
 * <p>{@link #init} runs as root when jsvc is given {@code -user}: it only parses the
 * options and reads the configuration file; the token, PIN, registry and socket are opened
 * in {@link #start}, as the service user.
 */
public final class JsvcDaemon implements Daemon, DaemonUserSignal {
    private static final System.Logger LOG = System.getLogger(JsvcDaemon.class.getName());

    private Main options;
    private volatile dev.enclavekms.server.Daemon daemon;

    @Override
    public void init(DaemonContext context) throws DaemonInitException {
        Main m = new Main();
        try {
            new CommandLine(m).parseArgs(context.getArguments());
        } catch (CommandLine.ParameterException e) {
            throw new DaemonInitException("enclave-kmsd: " + e.getMessage());
        }
        LogSetup.configure(m.verbose);
        String usage = m.usageError();
        if (usage == null && m.socketActivation) {
            usage = "--socket-activation needs systemd; under jsvc the daemon binds the configured socket";
        }
        if (usage != null) {
            throw new DaemonInitException("enclave-kmsd: " + usage);
        }
        if (m.config != null) {
            try {
                DaemonConfig.load(m.config); // fail now, with jsvc's -wait reporting it, not after detaching
            } catch (java.io.IOException e) {
                throw new DaemonInitException("enclave-kmsd: " + e.getMessage());
            }
        }
        options = m;
    }

    @Override
    public void start() throws Exception {
        try {
            Main.Started started = options.start(null);
            daemon = started.daemon();
        } catch (Exception e) {
            LOG.log(System.Logger.Level.ERROR, "cannot start: " + e.getMessage());
            throw e;
        }
        LOG.log(System.Logger.Level.INFO, "started under jsvc (pid " + ProcessHandle.current().pid() + ")");
    }

    @Override
    public void stop() {
        dev.enclavekms.server.Daemon d = daemon;
        if (d == null) {
            return;
        }
        LOG.log(System.Logger.Level.INFO, "stopping (jsvc): draining calls in flight (at most "
                + Main.DRAIN.toSeconds() + " s)");
        d.stop(Main.DRAIN);
        LOG.log(System.Logger.Level.INFO, "stopped");
    }

    @Override
    public void destroy() {
        daemon = null;
    }

    @Override
    public void signal() {
        dev.enclavekms.server.Daemon d = daemon;
        if (d != null) {
            d.reload();
        }
    }
}
