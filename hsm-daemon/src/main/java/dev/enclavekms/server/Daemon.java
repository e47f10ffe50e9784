package dev.enclavekms.server;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.EnclaveInfo;
import dev.enclavekms.registry.RegistryException;
import dev.enclavekms.registry.RegistryStore;
import dev.enclavekms.registry.SqliteRegistryStore;
import dev.enclavekms.server.varlink.VarlinkServer;
import dev.enclavekms.service.CryptoService;
import dev.enclavekms.service.KeyAdmin;
import dev.enclavekms.service.KeyHealth;
import dev.enclavekms.service.KeyLifecycle;
import dev.enclavekms.service.PausePoints;
import dev.enclavekms.service.UsageMeter;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * A running daemon: enclave, registry and varlink server wired together. Start order
 * matters: the enclave and registry are opened and reconciled before the socket
 * exists, so a client that can connect can be served.
 */
public final class Daemon implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Daemon.class.getName());
    public static final String VERSION = "0.1.0";

    private final Enclave enclave;
    private final RegistryStore registry;
    private final VarlinkServer server;
    private final KeyHealth health;
    private final LifecycleScheduler scheduler;

    private Daemon(Enclave enclave, RegistryStore registry, VarlinkServer server, KeyHealth health,
                   LifecycleScheduler scheduler) {
        this.enclave = enclave;
        this.registry = registry;
        this.server = server;
        this.health = health;
        this.scheduler = scheduler;
    }

    /**
     * Takes ownership of {@code enclave}; binds the configured socket. {@code clock} and
     * {@code pause} are the system clock and {@link PausePoints#NONE} except in tests.
     */
    public static Daemon start(Enclave enclave, DaemonConfig config, Clock clock, PausePoints pause)
            throws EnclaveException, RegistryException, IOException {
        RegistryStore registry = null;
        LifecycleScheduler scheduler = null;
        try {
            EnclaveInfo info = enclave.info();
            registry = SqliteRegistryStore.open(config.registry());
            KeyHealth health = KeyHealth.reconcile(enclave, registry.list());
            scheduler = new LifecycleScheduler(config.lifecycle().sweepInterval());
            UsageMeter usage = new UsageMeter(registry, config.lifecycle().rotationLimit(), scheduler::wake);
            KeyLifecycle lifecycle = new KeyLifecycle(enclave, registry, clock, usage, config.lifecycle().orphanGrace(),
                    pause);
            CryptoService crypto = new CryptoService(enclave, registry, health, usage);
            KeyAdmin admin = new KeyAdmin(enclave, registry, clock);
            KmsApi api = new KmsApi(crypto, admin, lifecycle, health, () -> info, System.getProperty("user.name"),
                    Instant.now(), VERSION);
            VarlinkServer server = new VarlinkServer(
                    new VarlinkServer.ServiceInfo("enclave-kms", "enclave-kmsd", VERSION, "https://enclave-kms.dev"),
                    List.of(api.kmsInterface(), api.adminInterface()), config.limits(), KmsApi.KMS, Daemon::logCall);
            // Due work (overdue destructions, leftovers of an interrupted one) first, then serve.
            lifecycle.sweep();
            server.bind(config.socket());
            scheduler.start(lifecycle::sweep);
            LOG.log(System.Logger.Level.INFO, "serving " + registry.list().size() + " keys from " + info.kind()
                    + " token '" + info.label() + "' (serial " + info.serial() + ") on " + config.socket());
            return new Daemon(enclave, registry, server, health, scheduler);
        } catch (EnclaveException | RegistryException | IOException | RuntimeException e) {
            if (scheduler != null) scheduler.close();
            if (registry != null) registry.close();
            enclave.close();
            throw e;
        }
    }

    /** Every call with its caller's identity (SO_PEERCRED), at debug level; the audit log comes later. */
    private static void logCall(dev.enclavekms.server.varlink.Peer peer, String method, String error, long nanos) {
        LOG.log(System.Logger.Level.DEBUG, () -> method + " by user=" + peer.user() + " group=" + peer.group()
                + " conn=" + peer.connectionId() + " -> " + (error == null ? "ok" : error) + " in "
                + nanos / 1000 + " us");
    }

    public KeyHealth health() {
        return health;
    }

    public Path socket() {
        return server.boundPath();
    }

    /** Stops accepting, answers calls in flight within {@code drain}, then releases the hardware. */
    public void stop(Duration drain) {
        server.shutdown(drain);
        scheduler.close();
        registry.close();
        enclave.close();
    }

    @Override
    public void close() {
        stop(Duration.ofSeconds(10));
    }
}
