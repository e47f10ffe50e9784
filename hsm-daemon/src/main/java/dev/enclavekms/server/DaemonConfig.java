package dev.enclavekms.server;

import dev.enclavekms.server.varlink.ServerLimits;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Properties;
import java.util.Set;

/**
 * The daemon's configuration: which PKCS#11 module and token (or which Java Card, see
 * {@link Card}), where the PIN, registry and socket are, and the server's limits. Read from a properties file
 * ({@code key = value}, documented in docs/operations.md); unknown keys are refused so
 * that a typo never silently falls back to a default.
 */
public record DaemonConfig(Path pkcs11Module, String tokenLabel, Path pinFile, Path registry, Path socket,
                           ServerLimits limits, Lifecycle lifecycle, Path policy, String socketGroup, Audit audit,
                           dev.enclavekms.service.KeySessions.Limits sessions, Duration caMaxTtl, Card card,
                           boolean accessLog) {

    /** Longest {@code ca.max-ttl-seconds}: a CA of short-lived certificates, not a public one. */
    public static final Duration MAX_CA_TTL = Duration.ofDays(90);

    public DaemonConfig {
        if (caMaxTtl.isNegative() || caMaxTtl.isZero() || caMaxTtl.compareTo(MAX_CA_TTL) > 0) {
            throw new IllegalArgumentException("ca.max-ttl-seconds: 1 to " + MAX_CA_TTL.toSeconds());
        }
    }

    /** Without the access log (it is opt-in: {@code log.access}, {@code --access-log}). */
    public DaemonConfig(Path pkcs11Module, String tokenLabel, Path pinFile, Path registry, Path socket,
                        ServerLimits limits, Lifecycle lifecycle, Path policy, String socketGroup, Audit audit,
                        dev.enclavekms.service.KeySessions.Limits sessions, Duration caMaxTtl, Card card) {
        this(pkcs11Module, tokenLabel, pinFile, registry, socket, limits, lifecycle, policy, socketGroup, audit,
                sessions, caMaxTtl, card, false);
    }

    /** On a PKCS#11 token ({@code card} null). */
    public DaemonConfig(Path pkcs11Module, String tokenLabel, Path pinFile, Path registry, Path socket,
                        ServerLimits limits, Lifecycle lifecycle, Path policy, String socketGroup, Audit audit,
                        dev.enclavekms.service.KeySessions.Limits sessions, Duration caMaxTtl) {
        this(pkcs11Module, tokenLabel, pinFile, registry, socket, limits, lifecycle, policy, socketGroup, audit,
                sessions, caMaxTtl, null);
    }

    /**
     * The Java Card backend (docs/card-operations.md): the KeyVault applet on a card in a
     * PC/SC reader. With it, the {@code pkcs11.*} settings are absent and {@code pinFile}
     * is the card's PIN.
     *
     * @param reader   the PC/SC reader's name as pcscd lists it ({@code pcsc_scan}, {@code opensc-tool -l});
     *                 {@link #SIMULATOR} is jcardsim inside the daemon, allowed only with {@code --dev}
     * @param aid      the applet's AID
     * @param identity the SHA-256 fingerprint of the card's identity key that
     *                 {@code kmsctl provision --card} recorded (64 hex digits): the secure
     *                 channel opens only to the card holding that key
     */
    public record Card(String reader, byte[] aid, String identity) {
        /** The reader name of the in-process simulated card (dev mode only). */
        public static final String SIMULATOR = "jcardsim";

        public Card {
            aid = aid.clone();
        }

        public boolean simulator() {
            return SIMULATOR.equals(reader);
        }

        @Override
        public byte[] aid() {
            return aid.clone();
        }
    }

    /** With the default longest certificate TTL (24 h). */
    public DaemonConfig(Path pkcs11Module, String tokenLabel, Path pinFile, Path registry, Path socket,
                        ServerLimits limits, Lifecycle lifecycle, Path policy, String socketGroup, Audit audit,
                        dev.enclavekms.service.KeySessions.Limits sessions) {
        this(pkcs11Module, tokenLabel, pinFile, registry, socket, limits, lifecycle, policy, socketGroup, audit,
                sessions, dev.enclavekms.service.CertificateAuthority.DEFAULT_MAX_TTL);
    }

    /** With the default session limits. */
    public DaemonConfig(Path pkcs11Module, String tokenLabel, Path pinFile, Path registry, Path socket,
                        ServerLimits limits, Lifecycle lifecycle, Path policy, String socketGroup, Audit audit) {
        this(pkcs11Module, tokenLabel, pinFile, registry, socket, limits, lifecycle, policy, socketGroup, audit,
                dev.enclavekms.service.KeySessions.Limits.DEFAULT);
    }

    /** Where CA certificates live (docs/tls.md): {@code ca/} beside the registry. */
    public Path caDir() {
        return registry.toAbsolutePath().getParent().resolve("ca");
    }

    /** Where session keys and material live (docs/sessions.md): {@code sessions/} beside the registry. */
    public Path sessionsDir() {
        return registry.toAbsolutePath().getParent().resolve("sessions");
    }

    public DaemonConfig withSessions(dev.enclavekms.service.KeySessions.Limits l) {
        return new DaemonConfig(pkcs11Module, tokenLabel, pinFile, registry, socket, limits, lifecycle, policy,
                socketGroup, audit, l, caMaxTtl, card, accessLog);
    }

    /**
     * Without a policy file (the built-in policy, docs/policy.md) and with the socket in the
     * daemon's primary group.
     */
    public DaemonConfig(Path pkcs11Module, String tokenLabel, Path pinFile, Path registry, Path socket,
                        ServerLimits limits, Lifecycle lifecycle) {
        this(pkcs11Module, tokenLabel, pinFile, registry, socket, limits, lifecycle, null, null, Audit.beside(registry));
    }

    /**
     * The audit log (docs/audit.md).
     *
     * @param dir                where its files are; default {@code audit/} beside the registry
     * @param maxFileBytes       a file is closed and the next begun at this size
     * @param checkpointRecords  a signed checkpoint after this many records
     * @param checkpointInterval or this long after the first record not yet covered
     * @param durability         {@code FSYNC}; {@code NONE} only in --dev mode, for the benchmark
     */
    public record Audit(Path dir, long maxFileBytes, int checkpointRecords, Duration checkpointInterval,
                        dev.enclavekms.audit.AuditLog.Durability durability) {
        public Audit(Path dir, long maxFileBytes, int checkpointRecords, Duration checkpointInterval) {
            this(dir, maxFileBytes, checkpointRecords, checkpointInterval, dev.enclavekms.audit.AuditLog.Durability.FSYNC);
        }

        public Audit withDurability(dev.enclavekms.audit.AuditLog.Durability d) {
            return new Audit(dir, maxFileBytes, checkpointRecords, checkpointInterval, d);
        }

        public static Audit beside(Path registry) {
            Path parent = registry.toAbsolutePath().getParent();
            return new Audit(parent.resolve("audit"), dev.enclavekms.audit.AuditLog.Options.DEFAULT_MAX_FILE_BYTES,
                    dev.enclavekms.audit.AuditLog.Options.DEFAULT_CHECKPOINT_RECORDS,
                    dev.enclavekms.audit.AuditLog.Options.DEFAULT_CHECKPOINT_INTERVAL);
        }

        public dev.enclavekms.audit.AuditLog.Options options() {
            return dev.enclavekms.audit.AuditLog.Options.defaults(dir).withMaxFileBytes(maxFileBytes)
                    .withCheckpoints(checkpointRecords, checkpointInterval).withDurability(durability);
        }
    }

    public DaemonConfig withAudit(Audit a) {
        return new DaemonConfig(pkcs11Module, tokenLabel, pinFile, registry, socket, limits, lifecycle, policy,
                socketGroup, a, sessions, caMaxTtl, card, accessLog);
    }

    /**
     * With or without the access log: one line per call on the {@code dev.enclavekms.access}
     * logger. Off by default since the audit log records every call; the line costs a
     * formatted log record and a write to stderr per call.
     */
    public DaemonConfig withAccessLog(boolean on) {
        return new DaemonConfig(pkcs11Module, tokenLabel, pinFile, registry, socket, limits, lifecycle, policy,
                socketGroup, audit, sessions, caMaxTtl, card, on);
    }

    public DaemonConfig withLimits(ServerLimits l) {
        return new DaemonConfig(pkcs11Module, tokenLabel, pinFile, registry, socket, l, lifecycle, policy, socketGroup,
                audit, sessions, caMaxTtl, card, accessLog);
    }

    public DaemonConfig withLifecycle(Lifecycle l) {
        return new DaemonConfig(pkcs11Module, tokenLabel, pinFile, registry, socket, limits, l, policy, socketGroup, audit,
                sessions, caMaxTtl, card, accessLog);
    }

    /**
     * Background lifecycle work.
     *
     * @param rotationLimit encryptions after which a version is rotated (2³⁰; lower only for tests)
     * @param sweepInterval how often rotations, destructions and orphans are checked
     * @param orphanGrace   how long an unreferenced object of ours stays before it is removed
     */
    public record Lifecycle(long rotationLimit, Duration sweepInterval, Duration orphanGrace) {
        public static final Lifecycle DEFAULT = new Lifecycle(dev.enclavekms.service.UsageMeter.DEFAULT_ROTATION_LIMIT,
                Duration.ofMinutes(1), dev.enclavekms.service.KeyLifecycle.DEFAULT_ORPHAN_GRACE);
    }

    public static final Path DEFAULT_SOCKET = Path.of("/run/enclave-kms/kms.sock");
    private static final Set<String> KEYS = Set.of("pkcs11.module", "pkcs11.token-label", "pkcs11.pin-file",
            "pkcs11.pin-credential",
            "registry", "socket", "socket.group", "policy", "limits.max-message-bytes", "limits.max-connections", "limits.max-connections-per-user", "limits.idle-timeout-seconds",
            "lifecycle.sweep-interval-seconds", "lifecycle.orphan-grace-seconds",
            "audit.dir", "audit.max-file-bytes", "audit.checkpoint-records", "audit.checkpoint-seconds",
            "sessions.max-ttl-seconds", "sessions.max-session-bytes", "ca.max-ttl-seconds",
            "card.reader", "card.aid", "card.identity", "card.pin-file", "card.pin-credential", "log.access");

    public static DaemonConfig load(Path file) throws IOException {
        return load(file, System.getenv("CREDENTIALS_DIRECTORY"));
    }

    /** As {@link #load(Path)}, with systemd's {@code $CREDENTIALS_DIRECTORY} given (null: not under systemd). */
    static DaemonConfig load(Path file, String credentialsDirectory) throws IOException {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file)) {
            p.load(r);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new IOException("configuration file " + file + " does not exist");
        }
        for (String k : p.stringPropertyNames()) {
            if (!KEYS.contains(k)) {
                throw new IOException(file + ": unknown setting '" + k + "' (known: " + KEYS + ")");
            }
        }
        ServerLimits limits = ServerLimits.DEFAULT;
        try {
            if (p.containsKey("limits.max-message-bytes")) {
                limits = limits.withMaxMessageBytes(Integer.parseInt(p.getProperty("limits.max-message-bytes").trim()));
            }
            if (p.containsKey("limits.max-connections")) {
                limits = limits.withMaxConnections(Integer.parseInt(p.getProperty("limits.max-connections").trim()));
            }
            if (p.containsKey("limits.max-connections-per-user")) {
                limits = limits.withMaxConnectionsPerUser(
                        Integer.parseInt(p.getProperty("limits.max-connections-per-user").trim()));
            }
            if (p.containsKey("limits.idle-timeout-seconds")) {
                limits = limits.withIdleTimeout(Duration.ofSeconds(Long.parseLong(p.getProperty("limits.idle-timeout-seconds").trim())));
            }
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": invalid limit: " + e.getMessage());
        }
        Lifecycle lifecycle = Lifecycle.DEFAULT;
        try {
            if (p.containsKey("lifecycle.sweep-interval-seconds")) {
                lifecycle = new Lifecycle(lifecycle.rotationLimit(),
                        Duration.ofSeconds(Long.parseLong(p.getProperty("lifecycle.sweep-interval-seconds").trim())),
                        lifecycle.orphanGrace());
            }
            if (p.containsKey("lifecycle.orphan-grace-seconds")) {
                lifecycle = new Lifecycle(lifecycle.rotationLimit(), lifecycle.sweepInterval(),
                        Duration.ofSeconds(Long.parseLong(p.getProperty("lifecycle.orphan-grace-seconds").trim())));
            }
        } catch (NumberFormatException e) {
            throw new IOException(file + ": invalid lifecycle setting: " + e.getMessage());
        }
        Path registry = Path.of(p.getProperty("registry", "/var/lib/enclave-kms/registry.db").trim());
        Audit audit = Audit.beside(registry);
        try {
            audit = new Audit(
                    p.containsKey("audit.dir") ? Path.of(p.getProperty("audit.dir").trim()) : audit.dir(),
                    p.containsKey("audit.max-file-bytes")
                            ? Long.parseLong(p.getProperty("audit.max-file-bytes").trim()) : audit.maxFileBytes(),
                    p.containsKey("audit.checkpoint-records")
                            ? Integer.parseInt(p.getProperty("audit.checkpoint-records").trim()) : audit.checkpointRecords(),
                    p.containsKey("audit.checkpoint-seconds")
                            ? Duration.ofSeconds(Long.parseLong(p.getProperty("audit.checkpoint-seconds").trim()))
                            : audit.checkpointInterval());
            audit.options(); // checks the values
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": invalid audit setting: " + e.getMessage());
        }
        dev.enclavekms.service.KeySessions.Limits sessions = dev.enclavekms.service.KeySessions.Limits.DEFAULT;
        try {
            if (p.containsKey("sessions.max-ttl-seconds")) {
                sessions = sessions.withMaxTtl(Duration.ofSeconds(
                        Long.parseLong(p.getProperty("sessions.max-ttl-seconds").trim())));
            }
            if (p.containsKey("sessions.max-session-bytes")) {
                sessions = sessions.withMaxSessionBytes(Long.parseLong(p.getProperty("sessions.max-session-bytes").trim()));
            }
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": invalid sessions setting: " + e.getMessage());
        }
        Duration caMaxTtl = dev.enclavekms.service.CertificateAuthority.DEFAULT_MAX_TTL;
        try {
            if (p.containsKey("ca.max-ttl-seconds")) {
                caMaxTtl = Duration.ofSeconds(Long.parseLong(p.getProperty("ca.max-ttl-seconds").trim()));
                if (caMaxTtl.isNegative() || caMaxTtl.isZero() || caMaxTtl.compareTo(MAX_CA_TTL) > 0) {
                    throw new IllegalArgumentException("1 to " + MAX_CA_TTL.toSeconds() + " seconds");
                }
            }
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": invalid ca.max-ttl-seconds: " + e.getMessage());
        }
        Card card = card(p, file);
        boolean accessLog = false;
        if (p.containsKey("log.access")) {
            String v = p.getProperty("log.access").trim();
            if (!v.equals("true") && !v.equals("false")) {
                throw new IOException(file + ": 'log.access' must be true or false, not '" + v + "'");
            }
            accessLog = v.equals("true");
        }
        return new DaemonConfig(
                card == null ? Path.of(required(p, file, "pkcs11.module")) : null,
                card == null ? required(p, file, "pkcs11.token-label") : null,
                pinFile(p, file, credentialsDirectory, card == null ? "pkcs11" : "card"),
                registry,
                Path.of(p.getProperty("socket", DEFAULT_SOCKET.toString()).trim()),
                limits, lifecycle,
                p.containsKey("policy") ? Path.of(required(p, file, "policy")) : null,
                p.containsKey("socket.group") ? required(p, file, "socket.group") : null,
                audit, sessions, caMaxTtl, card, accessLog);
    }

    /**
     * The {@code card.*} settings, or null when there are none (the PKCS#11 backend). The two
     * backends exclude each other, so that a half-edited file never runs on the wrong one.
     */
    private static Card card(Properties p, Path file) throws IOException {
        boolean card = p.stringPropertyNames().stream().anyMatch(k -> k.startsWith("card."));
        if (!card) {
            return null;
        }
        for (String k : p.stringPropertyNames()) {
            if (k.startsWith("pkcs11.")) {
                throw new IOException(file + ": '" + k + "' and the card.* settings exclude each other: the daemon"
                        + " keeps its keys either on a PKCS#11 token or on a Java Card");
            }
        }
        String reader = required(p, file, "card.reader");
        if (reader.equals(Card.SIMULATOR)) {
            throw new IOException(file + ": 'card.reader = " + Card.SIMULATOR + "' is the simulated card, which only"
                    + " dev mode uses (enclave-kmsd --dev --card); name a PC/SC reader");
        }
        byte[] aid = dev.enclavekms.enclave.javacard.JavaCardEnclave.defaultAid();
        if (p.containsKey("card.aid")) {
            String hex = p.getProperty("card.aid").trim().replace(" ", "").replace(":", "");
            try {
                aid = java.util.HexFormat.of().parseHex(hex);
            } catch (IllegalArgumentException e) {
                aid = new byte[0];
            }
            if (aid.length < 5 || aid.length > 16) {
                throw new IOException(file + ": 'card.aid' must be 5 to 16 bytes in hex, e.g. F0454E434B4D5301");
            }
        }
        String identity = required(p, file, "card.identity").toLowerCase(java.util.Locale.ROOT);
        if (!identity.matches("[0-9a-f]{64}")) {
            throw new IOException(file + ": 'card.identity' must be the 64 hex digits 'kmsctl provision --card'"
                    + " printed (the SHA-256 fingerprint of the card's identity key)");
        }
        return new Card(reader, aid, identity);
    }

    /**
     * {@code pkcs11.pin-file = PATH}, or {@code pkcs11.pin-credential = NAME}: the file
     * systemd's {@code LoadCredential=NAME:SOURCE} puts in {@code $CREDENTIALS_DIRECTORY}.
     * Exactly one of them.
     */
    private static Path pinFile(Properties p, Path file, String credentialsDirectory, String prefix)
            throws IOException {
        String pinFile = p.getProperty(prefix + ".pin-file");
        String credential = p.getProperty(prefix + ".pin-credential");
        boolean hasFile = pinFile != null && !pinFile.isBlank();
        boolean hasCredential = credential != null && !credential.isBlank();
        if (hasFile == hasCredential) {
            throw new IOException(file + ": give exactly one of '" + prefix + ".pin-file' (a PIN file) and"
                    + " '" + prefix + ".pin-credential' (the name of a systemd credential, LoadCredential=NAME:FILE)");
        }
        if (hasFile) {
            return Path.of(pinFile.trim());
        }
        String name = credential.trim();
        if (!name.matches("[A-Za-z0-9_.@-]+") || name.equals(".") || name.equals("..")) {
            throw new IOException(file + ": '" + prefix + ".pin-credential' must be a credential name (letters, digits,"
                    + " '_', '.', '-', '@'), not a path: '" + name + "'");
        }
        if (credentialsDirectory == null || credentialsDirectory.isBlank()) {
            throw new IOException(file + ": '" + prefix + ".pin-credential = " + name + "' needs $CREDENTIALS_DIRECTORY,"
                    + " which systemd sets for a service with LoadCredential=" + name + ":FILE; started another"
                    + " way, use '" + prefix + ".pin-file'");
        }
        return Path.of(credentialsDirectory).resolve(name);
    }

    private static String required(Properties p, Path file, String key) throws IOException {
        String v = p.getProperty(key);
        if (v == null || v.isBlank()) {
            throw new IOException(file + ": missing required setting '" + key + "'");
        }
        return v.trim();
    }
}
