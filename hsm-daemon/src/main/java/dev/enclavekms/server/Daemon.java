package dev.enclavekms.server;

import dev.enclavekms.audit.AuditKeys;
import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.audit.CallAuditor;
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
import dev.enclavekms.service.KeySessions;
import dev.enclavekms.service.PausePoints;
import dev.enclavekms.service.TokenAdmin;
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
    private final AuditLog audit;
    private final java.nio.channels.FileChannel lock;
    private final String summary;
    private final ActivePolicy policy;
    private KeySessions sessions;
    private final java.util.concurrent.atomic.AtomicBoolean stopped = new java.util.concurrent.atomic.AtomicBoolean();

    private Daemon(Enclave enclave, RegistryStore registry, VarlinkServer server, KeyHealth health,
                   LifecycleScheduler scheduler, AuditLog audit, java.nio.channels.FileChannel lock, String summary,
                   ActivePolicy policy) {
        this.audit = audit;
        this.lock = lock;
        this.summary = summary;
        this.policy = policy;
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
        return start(enclave, config, clock, pause, null);
    }

    /**
     * As {@link #start(Enclave, DaemonConfig, Clock, PausePoints)}, but serves
     * {@code inherited} — the listening socket systemd passed (socket activation) — instead
     * of binding {@code config.socket()}, when it is not null. The daemon never closes or
     * unlinks an inherited socket: it belongs to the service manager, and connections
     * queued on it while the daemon restarts are served by the next process.
     */
    public static Daemon start(Enclave enclave, DaemonConfig config, Clock clock, PausePoints pause,
                               java.nio.channels.ServerSocketChannel inherited)
            throws EnclaveException, RegistryException, IOException {
        RegistryStore registry = null;
        LifecycleScheduler scheduler = null;
        AuditLog audit = null;
        java.nio.channels.FileChannel lock = null;
        try {
            lock = lockRegistry(config.registry());
            EnclaveInfo info = enclave.info();
            registry = SqliteRegistryStore.open(config.registry());
            KeyHealth health = KeyHealth.reconcile(enclave, registry.list());
            scheduler = new LifecycleScheduler(config.lifecycle().sweepInterval());
            UsageMeter usage = new UsageMeter(registry, config.lifecycle().rotationLimit(), scheduler::wake);
            KeyLifecycle lifecycle = new KeyLifecycle(enclave, registry, clock, usage, config.lifecycle().orphanGrace(),
                    pause);
            CryptoService crypto = new CryptoService(enclave, registry, health, usage);
            KeyAdmin admin = new KeyAdmin(enclave, registry, clock);
            ActivePolicy policy;
            try {
                policy = new ActivePolicy(config.policy(), daemonUser(), registry);
            } catch (dev.enclavekms.policy.PolicyException e) {
                throw new IOException("the policy cannot be used:\n" + e.getMessage());
            }
            // The audit log before anything is served: no call is answered unrecorded.
            AuditKeys auditKeys = auditKeys(enclave, admin, health);
            audit = AuditLog.open(config.audit().options(), auditKeys, clock,
                    java.util.Map.of("daemon_version", VERSION, "pid", ProcessHandle.current().pid()));
            CallAuditor auditor = new CallAuditor(auditKeys);
            lifecycle.onEvents(lifecycleAudit(audit, auditor));
            // Sessions after the audit log: an expiry found at start is recorded.
            KeySessions sessions = sessions(enclave, admin, health, config, clock, audit, auditor);
            KmsApi api = new KmsApi(crypto, admin, lifecycle, health, new TokenAdmin(registry, clock), policy,
                    () -> info, Instant.now(), VERSION).withAudit(audit, auditKeys).withSessions(sessions)
                    .withCertificateAuthority(new dev.enclavekms.service.CertificateAuthority(enclave, registry, health,
                            new dev.enclavekms.service.CaCertificates(config.caDir()), clock, config.caMaxTtl()))
                    .withTlsCertificates(new dev.enclavekms.service.TlsCertificates(enclave, registry, health));
            VarlinkServer server = new VarlinkServer(
                    new VarlinkServer.ServiceInfo("enclave-kms", "enclave-kmsd", VERSION, "https://enclave-kms.dev"),
                    List.of(api.kmsInterface(), api.adminInterface()), config.limits(), KmsApi.KMS,
                    config.accessLog() ? Daemon::logCall : null,
                    new AuditInterceptor(audit, auditor));
            // Due work (overdue destructions, leftovers of an interrupted one) first, then serve.
            lifecycle.sweep();
            String where;
            if (inherited != null) {
                where = inheritedSocketName(inherited, config.socket());
                server.serve(inherited); // the socket unit sets its owner, group and mode
            } else {
                server.bind(config.socket());
                if (config.socketGroup() != null) {
                    giveSocketToGroup(config.socket(), config.socketGroup());
                }
                where = config.socket().toString();
            }
            scheduler.start(() -> {
                lifecycle.sweep();
                sessions.sweep();
            });
            String summary = "serving " + registry.list().size() + " keys from " + info.kind()
                    + " token '" + info.label() + "' (serial " + info.serial() + ") on " + where
                    + "; audit log in " + config.audit().dir();
            LOG.log(System.Logger.Level.INFO, summary);
            Daemon d = new Daemon(enclave, registry, server, health, scheduler, audit, lock, summary, policy);
            d.sessions = sessions;
            return d;
        } catch (EnclaveException | RegistryException | IOException | RuntimeException e) {
            if (scheduler != null) scheduler.close();
            if (audit != null) audit.close();
            if (registry != null) registry.close();
            if (lock != null) lock.close();
            enclave.close();
            throw e;
        }
    }

    /** "PATH (socket activation)"; warns when the inherited socket is not the configured one. */
    private static String inheritedSocketName(java.nio.channels.ServerSocketChannel ch, Path configured) {
        String path;
        try {
            java.net.SocketAddress a = ch.getLocalAddress();
            path = a instanceof java.net.UnixDomainSocketAddress u ? u.getPath().toString() : String.valueOf(a);
        } catch (IOException e) {
            path = "?";
        }
        if (configured != null && !Path.of(path).equals(configured)) {
            LOG.log(System.Logger.Level.WARNING, "the inherited socket is " + path + " but the configuration says "
                    + configured + "; clients that use the configured path will not reach this daemon");
        }
        return path + " (socket activation)";
    }

    /**
     * Lets the members of {@code group} connect (the socket is 0660). Changed after the
     * bind: until then the socket is the daemon's group's only, which is narrower, never
     * wider. The policy still decides what each member may do.
     */
    private static void giveSocketToGroup(Path socket, String group) throws IOException {
        try {
            var lookup = socket.getFileSystem().getUserPrincipalLookupService();
            java.nio.file.Files.getFileAttributeView(socket, java.nio.file.attribute.PosixFileAttributeView.class)
                    .setGroup(lookup.lookupPrincipalByGroupName(group));
        } catch (java.nio.file.attribute.UserPrincipalNotFoundException e) {
            throw new IOException("socket.group: no group named '" + group + "'");
        } catch (IOException e) {
            throw new IOException("cannot give the socket " + socket + " to group '" + group + "': " + e.getMessage());
        }
    }

    /**
     * Reads the policy file again and puts it in force if it has no problem; otherwise the
     * policy in force stays and the result says why (every problem with its line). For
     * Admin.ReloadPolicy and SIGHUP.
     */
    public ActivePolicy.Reload reloadPolicy() {
        return policy.reload();
    }

    /**
     * The audit log's keys, created inside the enclave on first start (internal keys, see
     * KeyNames). A key that is missing or weaker than its template stops the start: the
     * daemon does not serve without an audit log it can sign and HMAC with.
     */
    private static AuditKeys auditKeys(Enclave enclave, KeyAdmin admin, KeyHealth health)
            throws IOException, EnclaveException {
        dev.enclavekms.registry.KeyRecord hmac;
        dev.enclavekms.registry.KeyRecord signing;
        try {
            hmac = admin.ensureInternalKey(AuditKeys.HMAC_KEY, dev.enclavekms.registry.Purpose.AUDIT,
                    AuditKeys.HMAC_ALGORITHM, "audit log: HMAC of sensitive strings");
            signing = admin.ensureInternalKey(AuditKeys.SIGNING_KEY, dev.enclavekms.registry.Purpose.AUDIT,
                    AuditKeys.SIGNING_ALGORITHM, "audit log: checkpoint signatures");
        } catch (dev.enclavekms.service.KmsError e) {
            throw new IOException("cannot set up the audit log's keys: " + e.getMessage(), e);
        }
        for (dev.enclavekms.registry.KeyRecord k : List.of(hmac, signing)) {
            var refusal = health.refusal(k.primary().objectId());
            if (refusal.isPresent()) {
                throw new IOException("the audit key " + k.name() + " cannot be used: " + refusal.get());
            }
        }
        return new AuditKeys(enclave, hmac.primary().objectId(), signing.primary().objectId(),
                signing.primaryVersion());
    }

    /**
     * The session store (docs/sessions.md) with its wrapping key, created in the enclave on
     * first start like the audit keys. Sessions that expired while the daemon was down are
     * shredded here, before anything is served, and each end is recorded in the audit log.
     */
    private static KeySessions sessions(Enclave enclave, KeyAdmin admin, KeyHealth health, DaemonConfig config,
                                        Clock clock, AuditLog audit, CallAuditor auditor) throws IOException {
        dev.enclavekms.registry.KeyRecord wrap;
        try {
            wrap = admin.ensureInternalKey(KeySessions.WRAP_KEY, dev.enclavekms.registry.Purpose.ENCRYPT,
                    dev.enclavekms.enclave.KeyAlgorithm.AES_256_GCM, "ephemeral sessions: wraps their data keys");
        } catch (dev.enclavekms.service.KmsError e) {
            throw new IOException("cannot set up the session key: " + e.getMessage(), e);
        }
        var refusal = health.refusal(wrap.primary().objectId());
        if (refusal.isPresent()) {
            throw new IOException("the session key " + wrap.name() + " cannot be used: " + refusal.get());
        }
        return KeySessions.open(enclave, wrap.primary().objectId(), config.sessionsDir(), clock, config.sessions(),
                ended -> {
                    try {
                        audit.append(auditor.sessionEnded(ended.id(), ended.tenant(), ended.reason()));
                    } catch (dev.enclavekms.audit.AuditUnavailableException e) {
                        // The key is already gone: the end happened, only its record is missing.
                        LOG.log(System.Logger.Level.ERROR, "session " + ended.id() + " " + ended.reason()
                                + " but the audit log cannot record it: " + e.getMessage());
                    }
                });
    }

    /** Records what the sweep does by itself; the act stands even when its record cannot be written. */
    private static dev.enclavekms.service.LifecycleEvents lifecycleAudit(AuditLog audit, CallAuditor auditor) {
        return (event, key, version, detail) -> {
            try {
                audit.append(auditor.lifecycleEvent(event, key, version, detail));
            } catch (dev.enclavekms.audit.AuditUnavailableException e) {
                LOG.log(System.Logger.Level.ERROR, "lifecycle " + event + " of " + (key == null ? detail : key + " v" + version)
                        + " happened but the audit log cannot record it: " + e.getMessage());
            }
        };
    }

    /**
     * One daemon per registry: two would each serve from their own in-memory copy and
     * overwrite each other's socket. The lock lives as long as the process holds the
     * channel, and the kernel drops it if the process dies.
     */
    private static java.nio.channels.FileChannel lockRegistry(Path registry) throws IOException {
        Path lockFile = registry.resolveSibling(registry.getFileName() + ".lock");
        java.nio.file.Files.createDirectories(lockFile.toAbsolutePath().getParent());
        java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(lockFile,
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE);
        try {
            if (ch.tryLock() == null) {
                throw new IOException("another enclave-kmsd is running on " + registry + " (" + lockFile + " is locked)");
            }
        } catch (java.nio.channels.OverlappingFileLockException e) {
            ch.close();
            throw new IOException("this process already runs a daemon on " + registry);
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        return ch;
    }

    /**
     * The daemon's own user as SO_PEERCRED names it for peers: the account name, or — when
     * the uid has no account (containers) and the JDK reports "?" — the uid as a number,
     * which is how the JDK names such peers too.
     */
    static String daemonUser() {
        String name = System.getProperty("user.name");
        if (name != null && !name.isBlank() && !name.equals("?")) {
            return name;
        }
        try {
            for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:")) {
                    return line.substring(4).trim().split("\\s+")[1]; // effective uid
                }
            }
        } catch (IOException e) {
            // fall through: no admin identity at all is the safe outcome
        }
        return "\u0000no-admin"; // matches no peer name
    }

    /**
     * Every call with its caller's identity (SO_PEERCRED) and duration, for operators, when
     * the access log is on ({@code log.access}, {@code --access-log}); the record that counts
     * is the audit log's (docs/audit.md).
     */
    private static void logCall(dev.enclavekms.server.varlink.Peer peer, String method, String error, long nanos) {
        ACCESS.log(System.Logger.Level.INFO, () -> method + " by user=" + peer.user() + " group=" + peer.group()
                + " conn=" + peer.connectionId() + " -> " + (error == null ? "ok" : error) + " in "
                + nanos / 1000 + " us");
    }

    /** One line per call, with the caller's identity: the access log (the audit log is separate). */
    private static final System.Logger ACCESS = System.getLogger("dev.enclavekms.access");

    public KeyHealth health() {
        return health;
    }

    public Path socket() {
        return server.boundPath();
    }

    /** What the daemon serves, in one line (for the log and {@code systemctl status}). */
    public String summary() {
        return summary;
    }

    /**
     * SIGHUP: reloads what can change without a restart — the policy. A broken file is
     * refused (its problems are logged with their lines) and the policy in force stays.
     */
    public void reload() {
        reloadPolicy();
    }

    /**
     * Stops accepting, answers calls in flight within {@code drain}, closes the audit log with
     * its signed stop checkpoint, then releases the hardware. Only the first call does anything.
     */
    public void stop(Duration drain) {
        if (!stopped.compareAndSet(false, true)) {
            return;
        }
        server.shutdown(drain);
        audit.close(); // needs the enclave for the stop checkpoint
        scheduler.close();
        if (sessions != null) sessions.close(); // zeroes the data keys held in memory
        registry.close();
        enclave.close();
        try {
            lock.close();
        } catch (IOException ignored) {
            // the kernel releases the lock with the process anyway
        }
    }

    @Override
    public void close() {
        stop(Duration.ofSeconds(10));
    }
}
