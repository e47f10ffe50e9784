package dev.enclavekms.server;

import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.pkcs11.Pkcs11Binding;
import dev.enclavekms.enclave.pkcs11.Pkcs11Config;
import dev.enclavekms.server.varlink.ServerLimits;
import dev.enclavekms.server.varlink.VarlinkServer;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import dev.enclavekms.service.PausePoints;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.Callable;

/** Entry point of {@code enclave-kmsd}. */
@Command(name = "enclave-kmsd", mixinStandardHelpOptions = true, version = "enclave-kmsd " + Daemon.VERSION,
        description = "Hardware-backed key management daemon for inference hosts.",
        footer = {"", "Exit codes: 0 stopped cleanly, 1 failed to start, 2 usage error."})
public final class Main implements Callable<Integer> {
    private static final System.Logger LOG = System.getLogger(Main.class.getName());

    @Option(names = "--dev", description = "Embedded default: a SoftHSM token, registry and socket under the state directory, created on first start.")
    boolean dev;

    @Option(names = "--state-dir", paramLabel = "DIR", description = "State directory for --dev (default: ./var).")
    Path stateDir = Path.of("var");

    @Option(names = "--card", description = "With --dev: the Java Card backend (the KeyVault applet) instead of SoftHSM,"
            + " on a simulated card inside the daemon (jcardsim; its keys live as long as the process).")
    boolean card;

    @Option(names = "--card-reader", paramLabel = "NAME", description = "With --dev --card: the card in this PC/SC"
            + " reader instead of the simulated one (personalised with the state directory's PINs at first start).")
    String cardReader;

    @Option(names = "--config", paramLabel = "FILE", description = "Configuration file (docs/operations.md).")
    Path config;

    @Option(names = {"-v", "--verbose"}, description = "Log debug messages.")
    boolean verbose;

    @Option(names = "--socket-activation", description = "Serve the listening Unix socket passed as standard input"
            + " (systemd: StandardInput=socket, Accept=no) instead of binding the configured socket.")
    boolean socketActivation;

    // Test hooks, honoured only with --dev (a production daemon refuses them).
    @Option(names = "--test-clock-file", hidden = true, paramLabel = "FILE",
            description = "Seconds to add to the system clock, read from FILE on every use.")
    Path testClockFile;

    @Option(names = "--test-pause-at", hidden = true, paramLabel = "POINT",
            description = "Stop for good at this step of a multi-step change (crash tests).")
    String testPauseAt;

    @Option(names = "--test-rotation-limit", hidden = true, paramLabel = "N",
            description = "Rotate a version after N encryptions instead of 2^30.")
    Long testRotationLimit;

    @Option(names = "--test-sweep-interval", hidden = true, paramLabel = "SECONDS",
            description = "Run the lifecycle sweep this often.")
    Long testSweepSeconds;

    /** How long SIGTERM waits for calls in flight; the unit's TimeoutStopSec= is longer. */
    static final Duration DRAIN = Duration.ofSeconds(10);

    @Option(names = "--test-audit-checkpoint-records", hidden = true, paramLabel = "N",
            description = "Write an audit checkpoint every N records instead of 1000.")
    Integer testAuditCheckpointRecords;

    @Option(names = "--test-audit-max-file-bytes", hidden = true, paramLabel = "BYTES",
            description = "Rotate audit files at this size instead of 64 MiB.")
    Long testAuditMaxFileBytes;

    @Option(names = "--audit-durability", paramLabel = "MODE",
            description = "fsync (default): every audit record is durable before its reply. none: never fsync the"
                    + " audit log, to measure what durability costs; only with --dev (docs/audit.md).")
    String auditDurability = "fsync";

    @Option(names = "--max-connections", paramLabel = "N",
            description = "With --dev: connections served at once (default 512; limits.max-connections in a configuration file).")
    Integer maxConnections;

    @Option(names = "--max-connections-per-user", paramLabel = "N",
            description = "With --dev: connections one user may hold (default 128; limits.max-connections-per-user).")
    Integer maxConnectionsPerUser;

    @Option(names = "--access-log", description = "Log one line per call (method, caller, outcome, time) on the"
            + " access logger; off by default, the audit log records every call (log.access in a configuration file).")
    boolean accessLog;

    @Option(names = "--pkcs11-binding", paramLabel = "BINDING",
            description = "ffm (default): the hot PKCS#11 calls (encrypt, decrypt, sign, HMAC) go straight into the"
                    + " module through java.lang.foreign; wrapper: through the IAIK JNI wrapper, like every other call"
                    + " (docs/operations.md). Where FFM cannot be used the daemon logs why and uses the wrapper.")
    String pkcs11Binding = "ffm";

    public static void main(String[] args) {
        System.exit(new CommandLine(new Main()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        LogSetup.configure(verbose);
        String usage = usageError();
        if (usage != null) {
            System.err.println("enclave-kmsd: " + usage);
            return 2;
        }
        SystemdNotifier notifier = SystemdNotifier.fromEnvironment();
        ProcessLifecycle process = ProcessLifecycle.install(notifier);
        Started started;
        try {
            started = start(socketActivation ? inheritedListener() : null);
        } catch (Exception e) {
            LOG.log(System.Logger.Level.ERROR, "cannot start: " + e.getMessage());
            process.startFailed(String.valueOf(e.getMessage()));
            return 1;
        }
        if (started.welcome() != null) {
            started.welcome().accept(System.out);
        }
        return process.serveUntilStopped(started.daemon(), DRAIN);
    }

    /** What is wrong with the options (for exit status 2), or null. */
    String usageError() {
        if (dev == (config != null)) {
            return "give exactly one of --dev and --config FILE";
        }
        if (card && !dev) {
            return "--card is for dev mode; a production daemon names its card in the configuration file"
                    + " (card.reader, card.identity, card.pin-file: docs/card-operations.md)";
        }
        if (cardReader != null && !card) {
            return "--card-reader needs --dev --card";
        }
        if (testHooks() && !dev) {
            return "the --test-* options exist for tests of --dev mode only";
        }
        if (!auditDurability.equals("fsync") && !auditDurability.equals("none")) {
            return "--audit-durability must be fsync or none";
        }
        if (auditDurability.equals("none") && !dev) {
            return "--audit-durability=none is for measuring with --dev only: a production audit log is always durable";
        }
        if (binding() == null) {
            return "--pkcs11-binding must be ffm or wrapper";
        }
        if ((maxConnections != null || maxConnectionsPerUser != null) && !dev) {
            return "--max-connections and --max-connections-per-user are for --dev; in a configuration file use"
                    + " limits.max-connections and limits.max-connections-per-user";
        }
        return null;
    }

    /**
     * The JDK poller mode this daemon's readers should wait in, where it is not VarlinkServer's
     * own choice (a platform poller thread, mode 1), else null. With the audit log's flush on
     * every lone call, mode 1 answers a lone durable unwrap ≈ 100 µs sooner (p50 196–200 against
     * 305–313 µs); without the flush (--audit-durability=none, for measuring) the JDK's
     * default (virtual-thread pollers, mode 2) answers a lone unwrap in 32–34 µs against
     * 123–127 (docs/performance.md "Calls arriving one by one (session 6)"), so each
     * durability measures with the poller that serves it best.
     */
    String jdkPollerMode() {
        return auditDurability.equals("none") ? "2" : null;
    }

    private boolean testHooks() {
        return testClockFile != null || testPauseAt != null || testRotationLimit != null || testSweepSeconds != null
                || testAuditCheckpointRecords != null || testAuditMaxFileBytes != null;
    }

    /** A started daemon, and what dev mode prints once it serves (null with --config). */
    record Started(Daemon daemon, java.util.function.Consumer<java.io.PrintStream> welcome) { }

    /** Opens the token and starts the daemon as the options say; {@code inherited} as for Daemon.start. */
    Started start(java.nio.channels.ServerSocketChannel inherited) throws Exception {
        String poller = jdkPollerMode();
        if (poller != null && System.getProperty(VarlinkServer.POLLER_MODE) == null) {
            System.setProperty(VarlinkServer.POLLER_MODE, poller); // before any reader waits (VarlinkServer)
        }
        java.util.function.Consumer<java.io.PrintStream> welcome = null;
        javax.smartcardio.CardTerminal simulator = null;
        DaemonConfig cfg;
        Clock clock = Clock.systemUTC();
        PausePoints pause = PausePoints.NONE;
        if (dev) {
            if (card) {
                DevCard env = DevCard.prepare(stateDir, cardReader);
                cfg = env.config();
                simulator = env.simulatorTerminal();
                welcome = env::printWelcome;
            } else {
                DevEnvironment env = DevEnvironment.prepare(stateDir);
                cfg = env.config();
                welcome = env::printWelcome;
            }
            if (testHooks()) {
                LOG.log(System.Logger.Level.WARNING, "test hooks are active: this daemon is for tests only");
                DaemonConfig.Lifecycle l = cfg.lifecycle();
                cfg = cfg.withLifecycle(new DaemonConfig.Lifecycle(
                        testRotationLimit != null ? testRotationLimit : l.rotationLimit(),
                        testSweepSeconds != null ? Duration.ofSeconds(testSweepSeconds) : l.sweepInterval(),
                        l.orphanGrace()));
                DaemonConfig.Audit a = cfg.audit();
                cfg = cfg.withAudit(new DaemonConfig.Audit(a.dir(),
                        testAuditMaxFileBytes != null ? testAuditMaxFileBytes : a.maxFileBytes(),
                        testAuditCheckpointRecords != null ? testAuditCheckpointRecords : a.checkpointRecords(),
                        a.checkpointInterval(), a.durability()));
                if (testClockFile != null) clock = new OffsetFileClock(testClockFile);
                pause = PausePoints.armed(testPauseAt, System.out);
            }
            if (auditDurability.equals("none")) {
                LOG.log(System.Logger.Level.WARNING, "AUDIT DURABILITY IS OFF (--audit-durability=none): audit records"
                        + " are written but never fsynced; a host crash may lose them. For benchmarks only.");
                cfg = cfg.withAudit(cfg.audit().withDurability(AuditLog.Durability.NONE));
            }
            if (maxConnections != null || maxConnectionsPerUser != null) {
                try {
                    ServerLimits l = cfg.limits();
                    if (maxConnections != null) l = l.withMaxConnections(maxConnections);
                    if (maxConnectionsPerUser != null) l = l.withMaxConnectionsPerUser(maxConnectionsPerUser);
                    cfg = cfg.withLimits(l);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("--max-connections: " + e.getMessage());
                }
            }
        } else {
            cfg = DaemonConfig.load(config);
        }
        if (accessLog) {
            cfg = cfg.withAccessLog(true);
        }
        Enclave enclave = cfg.card() != null
                ? CardBackend.open(cfg.card(), cfg.pinFile(), simulator, dev)
                : Pkcs11Enclave.open(new Pkcs11Config(cfg.pkcs11Module(), cfg.tokenLabel(), null,
                        cfg.pinFile(), Pkcs11Config.DEFAULT_SESSION_POOL_SIZE).withBinding(binding()));
        if (enclave instanceof Pkcs11Enclave p11) {
            LOG.log(System.Logger.Level.INFO, "PKCS#11 hot calls (encrypt, decrypt, sign, HMAC) through the "
                    + (p11.binding() == Pkcs11Binding.FFM ? "FFM binding" : "IAIK wrapper"));
        }
        return new Started(Daemon.start(enclave, cfg, clock, pause, inherited), welcome);
    }

    /** The --pkcs11-binding value, or null when it names none. */
    private Pkcs11Binding binding() {
        return switch (pkcs11Binding) {
            case "ffm" -> Pkcs11Binding.FFM;
            case "wrapper" -> Pkcs11Binding.WRAPPER;
            default -> null;
        };
    }

    /** The listening AF_UNIX socket systemd passes as standard input. */
    private static java.nio.channels.ServerSocketChannel inheritedListener() throws java.io.IOException {
        java.nio.channels.Channel ch = System.inheritedChannel();
        if (ch instanceof java.nio.channels.ServerSocketChannel ssc
                && ssc.getLocalAddress() instanceof java.net.UnixDomainSocketAddress) {
            return ssc;
        }
        throw new java.io.IOException("--socket-activation: standard input is not a listening Unix socket ("
                + (ch == null ? "not a socket" : ch.getClass().getSimpleName()) + "); in the service unit set"
                + " StandardInput=socket, and in the socket unit ListenStream=PATH with Accept=no");
    }
}
