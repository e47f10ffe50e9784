package dev.enclavekms.server;

import dev.enclavekms.enclave.pkcs11.Pkcs11Config;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

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

    @Option(names = "--config", paramLabel = "FILE", description = "Configuration file (docs/operations.md).")
    Path config;

    @Option(names = {"-v", "--verbose"}, description = "Log debug messages.")
    boolean verbose;

    public static void main(String[] args) {
        int code = new CommandLine(new Main()).execute(args);
        if (code != 0) {
            System.exit(code);
        }
    }

    @Override
    public Integer call() throws Exception {
        LogSetup.configure(verbose);
        if (dev == (config != null)) {
            System.err.println("enclave-kmsd: give exactly one of --dev and --config FILE");
            return 2;
        }
        Daemon daemon;
        DevEnvironment env = null;
        try {
            DaemonConfig cfg;
            if (dev) {
                env = DevEnvironment.prepare(stateDir);
                cfg = env.config();
            } else {
                cfg = DaemonConfig.load(config);
            }
            Pkcs11Enclave enclave = Pkcs11Enclave.open(new Pkcs11Config(cfg.pkcs11Module(), cfg.tokenLabel(), null,
                    cfg.pinFile(), Pkcs11Config.DEFAULT_SESSION_POOL_SIZE));
            daemon = Daemon.start(enclave, cfg.registry(), cfg.socket(), cfg.limits());
        } catch (Exception e) {
            LOG.log(System.Logger.Level.ERROR, "cannot start: " + e.getMessage());
            return 1;
        }
        if (env != null) {
            env.printWelcome(System.out);
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().unstarted(() -> {
            LOG.log(System.Logger.Level.INFO, "stopping: draining calls in flight");
            daemon.stop(Duration.ofSeconds(10));
            LOG.log(System.Logger.Level.INFO, "stopped");
            stopped.countDown();
        }));
        stopped.await();
        return 0;
    }
}
