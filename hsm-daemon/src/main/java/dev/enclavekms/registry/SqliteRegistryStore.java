package dev.enclavekms.registry;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.json.Json;
import dev.enclavekms.json.JsonException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The registry in one SQLite file (WAL, synchronous=FULL: a key version the daemon has
 * reported must survive a power cut). The whole registry is small — keys and versions,
 * never data keys — so reads are served from an in-memory copy that is replaced only
 * after a command has committed; writers are serialised.
 */
public final class SqliteRegistryStore implements RegistryStore {
    private static final int SCHEMA_VERSION = 5;

    private final Connection db;
    private final Map<String, KeyRecord> cache = new ConcurrentHashMap<>();
    private final Map<String, TokenRecord> tokens = new ConcurrentHashMap<>();

    private SqliteRegistryStore(Connection db) {
        this.db = db;
    }

    public static SqliteRegistryStore open(Path file) throws RegistryException {
        try {
            Path parent = file.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            if (!Files.exists(file)) {
                Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            }
            Connection c = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
            try (Statement s = c.createStatement()) {
                s.execute("PRAGMA journal_mode=WAL");
                s.execute("PRAGMA synchronous=FULL");
                s.execute("PRAGMA foreign_keys=ON");
                s.execute("PRAGMA busy_timeout=5000");
            }
            SqliteRegistryStore store = new SqliteRegistryStore(c);
            store.migrate();
            store.reload();
            return store;
        } catch (SQLException | java.io.IOException e) {
            throw new RegistryException("cannot open registry " + file + ": " + e.getMessage(), e);
        }
    }

    private void migrate() throws SQLException, RegistryException {
        try (Statement s = db.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
            int current = 0;
            try (ResultSet rs = s.executeQuery("SELECT max(version) FROM schema_version")) {
                if (rs.next()) current = rs.getInt(1);
            }
            if (current > SCHEMA_VERSION) {
                throw new RegistryException("registry schema version " + current
                        + " is newer than this daemon understands (" + SCHEMA_VERSION + ")");
            }
            if (current < 1) {
                db.setAutoCommit(false);
                s.execute("""
                        CREATE TABLE keys (
                          name TEXT PRIMARY KEY,
                          purpose INTEGER NOT NULL,
                          algorithm INTEGER NOT NULL,
                          description TEXT NOT NULL,
                          created TEXT NOT NULL,
                          primary_version INTEGER NOT NULL,
                          required_context TEXT NOT NULL
                        )""");
                s.execute("""
                        CREATE TABLE key_versions (
                          key_name TEXT NOT NULL REFERENCES keys(name),
                          version INTEGER NOT NULL,
                          object_id TEXT NOT NULL UNIQUE,
                          state INTEGER NOT NULL,
                          created TEXT NOT NULL,
                          state_changed TEXT NOT NULL,
                          PRIMARY KEY (key_name, version)
                        )""");
                s.execute("INSERT INTO schema_version VALUES (1)");
                db.commit();
                db.setAutoCommit(true);
            }
            if (current < 2) {
                // Lifecycle: rotation and destruction policy per key, destruction time and
                // reserved usage per version, and the node-local record of orphan objects.
                db.setAutoCommit(false);
                s.execute("ALTER TABLE keys ADD COLUMN rotation_period_seconds INTEGER");
                s.execute("ALTER TABLE keys ADD COLUMN destroy_wait_days INTEGER NOT NULL DEFAULT "
                        + KeyRecord.DEFAULT_DESTROY_WAIT_DAYS);
                s.execute("ALTER TABLE key_versions ADD COLUMN destroy_at TEXT");
                s.execute("ALTER TABLE key_versions ADD COLUMN encryptions_reserved INTEGER NOT NULL DEFAULT 0");
                s.execute("""
                        CREATE TABLE orphans (
                          object_id TEXT PRIMARY KEY,
                          first_seen TEXT NOT NULL
                        )""");
                s.execute("INSERT INTO schema_version VALUES (2)");
                db.commit();
                db.setAutoCommit(true);
            }
            if (current < 3) {
                // Tenants and tokens (docs/policy.md): every key belongs to a tenant, those made
                // before tenants existed to 'default'; bearer tokens are stored as hashes only.
                db.setAutoCommit(false);
                s.execute("ALTER TABLE keys ADD COLUMN tenant TEXT NOT NULL DEFAULT '" + KeyRecord.DEFAULT_TENANT + "'");
                s.execute("""
                        CREATE TABLE tokens (
                          id TEXT PRIMARY KEY,
                          identity TEXT NOT NULL,
                          tenant TEXT NOT NULL,
                          hash TEXT NOT NULL UNIQUE,
                          created TEXT NOT NULL,
                          expires TEXT NOT NULL,
                          revoked TEXT
                        )""");
                s.execute("INSERT INTO schema_version VALUES (3)");
                db.commit();
                db.setAutoCommit(true);
            }
            if (current < 4) {
                // Where a cancelled destruction returns a version (revoked stays revoked).
                db.setAutoCommit(false);
                s.execute("ALTER TABLE key_versions ADD COLUMN state_before_destruction INTEGER");
                s.execute("INSERT INTO schema_version VALUES (4)");
                db.commit();
                db.setAutoCommit(true);
            }
            if (current < 5) {
                // Certificates CA keys issued (serial, issuer version, expiry, revocation) and
                // each CA version's last CRL number (docs/tls.md, docs/decisions.md).
                db.setAutoCommit(false);
                s.execute("""
                        CREATE TABLE certificates (
                          serial TEXT PRIMARY KEY,
                          key_name TEXT NOT NULL,
                          version INTEGER NOT NULL,
                          not_after INTEGER NOT NULL,
                          issued TEXT NOT NULL,
                          revoked TEXT,
                          reason INTEGER,
                          FOREIGN KEY (key_name, version) REFERENCES key_versions(key_name, version)
                        )""");
                s.execute("CREATE INDEX certificates_revoked ON certificates(key_name, version, not_after)"
                        + " WHERE revoked IS NOT NULL");
                s.execute("""
                        CREATE TABLE crl_numbers (
                          key_name TEXT NOT NULL,
                          version INTEGER NOT NULL,
                          number INTEGER NOT NULL,
                          PRIMARY KEY (key_name, version),
                          FOREIGN KEY (key_name, version) REFERENCES key_versions(key_name, version)
                        )""");
                s.execute("INSERT INTO schema_version VALUES (5)");
                db.commit();
                db.setAutoCommit(true);
            }
        }
    }

    private void reload() throws SQLException, RegistryException {
        cache.clear();
        try (Statement s = db.createStatement();
             ResultSet rs = s.executeQuery("SELECT name FROM keys")) {
            List<String> names = new ArrayList<>();
            while (rs.next()) names.add(rs.getString(1));
            for (String n : names) {
                cache.put(n, load(n).orElseThrow());
            }
        }
        tokens.clear();
        try (Statement s = db.createStatement();
             ResultSet rs = s.executeQuery("SELECT id FROM tokens")) {
            List<String> ids = new ArrayList<>();
            while (rs.next()) ids.add(rs.getString(1));
            for (String id : ids) {
                tokens.put(id, loadToken(id).orElseThrow());
            }
        }
    }

    private Optional<TokenRecord> loadToken(String id) throws SQLException {
        try (PreparedStatement p = db.prepareStatement(
                "SELECT identity, tenant, hash, created, expires, revoked FROM tokens WHERE id = ?")) {
            p.setString(1, id);
            try (ResultSet rs = p.executeQuery()) {
                if (!rs.next()) return Optional.empty();
                String revoked = rs.getString(6);
                return Optional.of(new TokenRecord(id, rs.getString(1), rs.getString(2), rs.getString(3),
                        Instant.parse(rs.getString(4)), Instant.parse(rs.getString(5)),
                        revoked == null ? null : Instant.parse(revoked)));
            }
        }
    }

    private Optional<KeyRecord> load(String name) throws SQLException, RegistryException {
        try (PreparedStatement k = db.prepareStatement(
                "SELECT purpose, algorithm, description, created, primary_version, required_context,"
                        + " rotation_period_seconds, destroy_wait_days, tenant FROM keys WHERE name = ?")) {
            k.setString(1, name);
            try (ResultSet rs = k.executeQuery()) {
                if (!rs.next()) return Optional.empty();
                List<KeyVersion> versions = new ArrayList<>();
                try (PreparedStatement v = db.prepareStatement(
                        "SELECT version, object_id, state, created, state_changed, destroy_at, encryptions_reserved,"
                                + " state_before_destruction"
                                + " FROM key_versions WHERE key_name = ? ORDER BY version")) {
                    v.setString(1, name);
                    try (ResultSet vr = v.executeQuery()) {
                        while (vr.next()) {
                            String destroyAt = vr.getString(6);
                            versions.add(new KeyVersion(vr.getInt(1), ObjectId.ofHex(vr.getString(2)),
                                    VersionState.ofCode(vr.getInt(3)), Instant.parse(vr.getString(4)),
                                    Instant.parse(vr.getString(5)), destroyAt == null ? null : Instant.parse(destroyAt),
                                    vr.getLong(7), vr.getObject(8) == null ? null : VersionState.ofCode(vr.getInt(8))));
                        }
                    }
                }
                long period = rs.getLong(7);
                Duration rotation = rs.wasNull() ? null : Duration.ofSeconds(period);
                return Optional.of(new KeyRecord(name, Purpose.ofCode(rs.getInt(1)), KeyAlgorithm.ofCode(rs.getInt(2)),
                        rs.getString(3), Instant.parse(rs.getString(4)), rs.getInt(5),
                        parseStringList(rs.getString(6)), rotation, rs.getInt(8), versions, rs.getString(9)));
            }
        }
    }

    private static List<String> parseStringList(String json) throws RegistryException {
        try {
            List<String> out = new ArrayList<>();
            for (Object o : (List<?>) Json.parse(json)) out.add((String) o);
            return out;
        } catch (JsonException | ClassCastException e) {
            throw new RegistryException("corrupt required_context in registry: " + e.getMessage());
        }
    }

    @Override
    public synchronized void apply(RegistryCommand command) throws RegistryException {
        // Key commands name their key, token commands their token: the cached copy to refresh.
        String tokenId = switch (command) {
            case RegistryCommand.CreateToken c -> c.id();
            case RegistryCommand.RevokeToken c -> c.id();
            default -> null;
        };
        String name = switch (command) {
            case RegistryCommand.CreateToken c -> null;
            case RegistryCommand.RevokeToken c -> null;
            case RegistryCommand.CreateKey c -> c.name();
            case RegistryCommand.UpdateKeyPolicy c -> c.name();
            case RegistryCommand.AddVersion c -> c.name();
            case RegistryCommand.PromoteVersion c -> c.name();
            case RegistryCommand.SetPrimaryVersion c -> c.name();
            case RegistryCommand.SetVersionState c -> c.name();
            case RegistryCommand.ReserveEncryptions c -> c.name();
            // Certificates are not part of the cached key records.
            case RegistryCommand.RecordCertificate c -> null;
            case RegistryCommand.RevokeCertificate c -> null;
            case RegistryCommand.AdvanceCrlNumber c -> null;
        };
        try {
            db.setAutoCommit(false);
            execute(command, name == null ? null : cache.get(name));
            db.commit();
        } catch (SQLException e) {
            rollbackQuietly();
            throw new RegistryException("registry write failed: " + e.getMessage(), e);
        } catch (RegistryException | RuntimeException e) {
            rollbackQuietly();
            throw e;
        } finally {
            try {
                db.setAutoCommit(true);
            } catch (SQLException e) {
                System.getLogger(SqliteRegistryStore.class.getName()).log(System.Logger.Level.WARNING,
                        "could not restore autocommit: " + e.getMessage());
            }
        }
        // Committed: from here on nothing may report failure, or a caller would undo the
        // hardware side of a change the registry has made durable.
        if (name != null) {
            refresh(name);
        } else if (tokenId != null) {
            refreshToken(tokenId);
        }
    }

    private void refreshToken(String id) {
        try {
            loadToken(id).ifPresent(t -> tokens.put(id, t));
        } catch (SQLException | RuntimeException e) {
            System.getLogger(SqliteRegistryStore.class.getName()).log(System.Logger.Level.ERROR,
                    "re-reading token " + id + " after a committed change failed: " + e.getMessage());
        }
    }

    private void rollbackQuietly() {
        try {
            db.rollback();
        } catch (SQLException e) {
            // nothing was committed; the connection reports the real failure
        }
    }

    /** Replaces the cached copy of one key after a commit; on a read failure, reloads lazily. */
    private void refresh(String name) {
        try {
            load(name).ifPresent(k -> cache.put(name, k));
        } catch (SQLException | RegistryException | RuntimeException e) {
            System.getLogger(SqliteRegistryStore.class.getName()).log(System.Logger.Level.ERROR,
                    "re-reading key " + name + " after a committed change failed; serving the old copy until"
                            + " the next change: " + e.getMessage());
        }
    }

    private void execute(RegistryCommand command, KeyRecord current) throws SQLException, RegistryException {
        switch (command) {
            case RegistryCommand.RecordCertificate c -> {
                KeyRecord key = cache.get(c.name());
                requireVersion(key, c.name(), c.version());
                if (key.purpose() != Purpose.CERT_AUTHORITY) {
                    throw new RegistryException.Conflict("key " + c.name() + " is not a CERT_AUTHORITY key");
                }
                if (findCertificateLocked(c.serial()).isPresent()) {
                    throw new RegistryException.Conflict("certificate " + c.serial() + " is recorded already");
                }
                update("INSERT INTO certificates (serial, key_name, version, not_after, issued) VALUES (?,?,?,?,?)",
                        c.serial(), c.name(), c.version(), c.notAfter().getEpochSecond(), c.at().toString());
            }
            case RegistryCommand.RevokeCertificate c -> {
                CertificateRecord r = findCertificateLocked(c.serial()).orElseThrow(
                        () -> new RegistryException.Conflict("no certificate " + c.serial()));
                if (r.isRevoked()) {
                    throw new RegistryException.Conflict("certificate " + c.serial() + " was revoked already at "
                            + r.revoked());
                }
                update("UPDATE certificates SET revoked = ?, reason = ? WHERE serial = ?", c.at().toString(),
                        c.reason().code(), c.serial());
            }
            case RegistryCommand.AdvanceCrlNumber c -> {
                requireVersion(cache.get(c.name()), c.name(), c.version());
                long last = crlNumberLocked(c.name(), c.version());
                if (c.number() <= last) {
                    throw new RegistryException.Conflict("CRL number " + c.number() + " of " + c.name() + " v"
                            + c.version() + " is not above the last one (" + last + ")");
                }
                update("INSERT INTO crl_numbers (key_name, version, number) VALUES (?,?,?)"
                        + " ON CONFLICT (key_name, version) DO UPDATE SET number = excluded.number",
                        c.name(), c.version(), c.number());
            }
            case RegistryCommand.CreateKey c -> {
                if (current != null) {
                    throw new RegistryException.Conflict("key " + c.name() + " already exists");
                }
                if (!c.purpose().allows(c.algorithm())) {
                    throw new RegistryException.Conflict(c.algorithm() + " is not allowed for purpose " + c.purpose());
                }
                checkPolicy(c.rotationPeriod(), c.destroyWaitDays());
                if (c.tenant() == null || c.tenant().isEmpty()) {
                    throw new RegistryException.Conflict("key " + c.name() + " needs a tenant");
                }
                update("INSERT INTO keys (name, purpose, algorithm, description, created, primary_version,"
                                + " required_context, rotation_period_seconds, destroy_wait_days, tenant)"
                                + " VALUES (?,?,?,?,?,?,?,?,?,?)",
                        c.name(), c.purpose().code(), c.algorithm().code(), c.description(), c.at().toString(), 1,
                        Json.write(c.requiredContext()), seconds(c.rotationPeriod()), c.destroyWaitDays(), c.tenant());
                insertVersion(c.name(), 1, c.firstVersionObject(), VersionState.ENABLED, c.at());
            }
            case RegistryCommand.UpdateKeyPolicy c -> {
                requireKey(current, c.name());
                checkPolicy(c.rotationPeriod(), c.destroyWaitDays());
                update("UPDATE keys SET rotation_period_seconds = ?, destroy_wait_days = ? WHERE name = ?",
                        seconds(c.rotationPeriod()), c.destroyWaitDays(), c.name());
            }
            case RegistryCommand.AddVersion c -> {
                requireKey(current, c.name());
                if (c.version() != current.latestVersion() + 1) {
                    throw new RegistryException.Conflict("version " + c.version() + " of " + c.name()
                            + " is not the next version (" + (current.latestVersion() + 1) + ")");
                }
                if (c.state() != VersionState.ENABLED && c.state() != VersionState.PENDING) {
                    throw new RegistryException.Conflict("a new version is ENABLED or PENDING, not " + c.state());
                }
                if (c.primary() && c.state() != VersionState.ENABLED) {
                    throw new RegistryException.Conflict("only an ENABLED version can be primary");
                }
                insertVersion(c.name(), c.version(), c.objectId(), c.state(), c.at());
                if (c.primary()) {
                    update("UPDATE keys SET primary_version = ? WHERE name = ?", c.version(), c.name());
                }
            }
            case RegistryCommand.PromoteVersion c -> {
                KeyVersion v = requireVersion(current, c.name(), c.version());
                if (v.state() != VersionState.PENDING) {
                    throw new RegistryException.IllegalTransition("version " + c.version() + " of " + c.name()
                            + " is " + v.state() + "; only a PENDING version can be promoted", v.state());
                }
                setState(c.name(), c.version(), VersionState.ENABLED, null, c.at());
                update("UPDATE keys SET primary_version = ? WHERE name = ?", c.version(), c.name());
            }
            case RegistryCommand.SetPrimaryVersion c -> {
                KeyVersion v = requireVersion(current, c.name(), c.version());
                if (v.state() != VersionState.ENABLED) {
                    throw new RegistryException.Conflict("version " + c.version() + " of " + c.name()
                            + " is " + v.state() + "; only an ENABLED version can be primary");
                }
                update("UPDATE keys SET primary_version = ? WHERE name = ?", c.version(), c.name());
            }
            case RegistryCommand.SetVersionState c -> {
                KeyVersion v = requireVersion(current, c.name(), c.version());
                if (!v.state().canBecome(c.state())) {
                    throw new RegistryException.IllegalTransition("version " + c.version() + " of " + c.name()
                            + " is " + v.state() + " and cannot become " + c.state(), v.state());
                }
                if (c.version() == current.primaryVersion()) {
                    throw new RegistryException.IllegalTransition("version " + c.version() + " of " + c.name()
                            + " is the primary version; rotate the key first", v.state());
                }
                if (v.state() == VersionState.DESTROY_SCHEDULED && c.state() != VersionState.DESTROYED
                        && c.state() != VersionState.afterCancelledDestruction(v.stateBeforeDestruction())) {
                    throw new RegistryException.IllegalTransition("cancelling the destruction of version " + c.version()
                            + " of " + c.name() + " returns it to "
                            + VersionState.afterCancelledDestruction(v.stateBeforeDestruction()) + ", not " + c.state(),
                            v.state());
                }
                boolean timed = c.state() == VersionState.DESTROY_SCHEDULED || c.state() == VersionState.DESTROYED;
                if (timed != (c.destroyAt() != null)) {
                    throw new RegistryException.Conflict(c.state() + (timed ? " needs" : " takes no") + " destruction time");
                }
                setState(c.name(), c.version(), c.state(), c.destroyAt(), c.at());
                // Remember what a scheduled destruction would return to if cancelled.
                update("UPDATE key_versions SET state_before_destruction = ? WHERE key_name = ? AND version = ?",
                        c.state() == VersionState.DESTROY_SCHEDULED ? v.state().code() : null, c.name(), c.version());
            }
            case RegistryCommand.ReserveEncryptions c -> {
                requireVersion(current, c.name(), c.version());
                update("UPDATE key_versions SET encryptions_reserved = max(encryptions_reserved, ?)"
                        + " WHERE key_name = ? AND version = ?", c.reservedUpTo(), c.name(), c.version());
            }
            case RegistryCommand.CreateToken c -> {
                if (tokens.containsKey(c.id())) {
                    throw new RegistryException.Conflict("token " + c.id() + " already exists");
                }
                if (!c.expires().isAfter(c.created())) {
                    throw new RegistryException.Conflict("token " + c.id() + " would expire before it is created");
                }
                update("INSERT INTO tokens (id, identity, tenant, hash, created, expires) VALUES (?,?,?,?,?,?)",
                        c.id(), c.identity(), c.tenant(), c.hash(), c.created().toString(), c.expires().toString());
            }
            case RegistryCommand.RevokeToken c -> {
                TokenRecord t = tokens.get(c.id());
                if (t == null) {
                    throw new RegistryException.Conflict("no token " + c.id());
                }
                if (t.revoked() != null) {
                    throw new RegistryException.Conflict("token " + c.id() + " was revoked already at " + t.revoked());
                }
                update("UPDATE tokens SET revoked = ? WHERE id = ?", c.at().toString(), c.id());
            }
        }
    }

    private static void checkPolicy(Duration rotation, int destroyWaitDays) throws RegistryException {
        if (rotation != null && rotation.compareTo(KeyRecord.MIN_ROTATION_PERIOD) < 0) {
            throw new RegistryException.Conflict("rotation period must be at least " + KeyRecord.MIN_ROTATION_PERIOD);
        }
        if (destroyWaitDays < KeyRecord.MIN_DESTROY_WAIT_DAYS || destroyWaitDays > KeyRecord.MAX_DESTROY_WAIT_DAYS) {
            throw new RegistryException.Conflict("destruction waiting period must be " + KeyRecord.MIN_DESTROY_WAIT_DAYS
                    + " to " + KeyRecord.MAX_DESTROY_WAIT_DAYS + " days");
        }
    }

    private static Long seconds(Duration d) {
        return d == null ? null : d.toSeconds();
    }

    private static KeyVersion requireVersion(KeyRecord current, String name, int version) throws RegistryException {
        requireKey(current, name);
        return current.version(version).orElseThrow(
                () -> new RegistryException.Conflict("key " + name + " has no version " + version));
    }

    private void setState(String name, int version, VersionState state, Instant destroyAt, Instant at) throws SQLException {
        update("UPDATE key_versions SET state = ?, destroy_at = ?, state_changed = ? WHERE key_name = ? AND version = ?",
                state.code(), destroyAt == null ? null : destroyAt.toString(), at.toString(), name, version);
    }

    private static void requireKey(KeyRecord current, String name) throws RegistryException {
        if (current == null) {
            throw new RegistryException.Conflict("no key named " + name);
        }
    }

    private void insertVersion(String name, int version, ObjectId id, VersionState state, Instant at) throws SQLException {
        update("INSERT INTO key_versions (key_name, version, object_id, state, created, state_changed) VALUES (?,?,?,?,?,?)",
                name, version, id.hex(), state.code(), at.toString(), at.toString());
    }

    private void update(String sql, Object... args) throws SQLException {
        try (PreparedStatement p = db.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) {
                p.setObject(i + 1, args[i]);
            }
            p.executeUpdate();
        }
    }

    @Override
    public synchronized Map<ObjectId, Instant> trackOrphans(java.util.Set<ObjectId> present, Instant now)
            throws RegistryException {
        try {
            Map<ObjectId, Instant> known = new java.util.HashMap<>();
            try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery("SELECT object_id, first_seen FROM orphans")) {
                while (rs.next()) known.put(ObjectId.ofHex(rs.getString(1)), Instant.parse(rs.getString(2)));
            }
            db.setAutoCommit(false);
            try {
                for (ObjectId gone : known.keySet()) {
                    if (!present.contains(gone)) update("DELETE FROM orphans WHERE object_id = ?", gone.hex());
                }
                for (ObjectId p : present) {
                    if (!known.containsKey(p)) update("INSERT INTO orphans (object_id, first_seen) VALUES (?,?)", p.hex(), now.toString());
                }
                db.commit();
            } catch (SQLException e) {
                db.rollback();
                throw e;
            } finally {
                db.setAutoCommit(true);
            }
            Map<ObjectId, Instant> out = new java.util.HashMap<>();
            for (ObjectId p : present) out.put(p, known.getOrDefault(p, now));
            return out;
        } catch (SQLException e) {
            throw new RegistryException("orphan bookkeeping failed: " + e.getMessage(), e);
        }
    }

    @Override
    public synchronized Optional<CertificateRecord> findCertificate(String serial) throws RegistryException {
        try {
            return findCertificateLocked(serial);
        } catch (SQLException e) {
            throw new RegistryException("certificate lookup failed: " + e.getMessage(), e);
        }
    }

    private static final String CERTIFICATE_COLUMNS = "serial, key_name, version, not_after, issued, revoked, reason";

    private Optional<CertificateRecord> findCertificateLocked(String serial) throws SQLException {
        try (PreparedStatement p = db.prepareStatement("SELECT " + CERTIFICATE_COLUMNS
                + " FROM certificates WHERE serial = ?")) {
            p.setString(1, serial);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? Optional.of(certificate(rs)) : Optional.empty();
            }
        }
    }

    private static CertificateRecord certificate(ResultSet rs) throws SQLException {
        String revoked = rs.getString(6);
        return new CertificateRecord(rs.getString(1), rs.getString(2), rs.getInt(3),
                Instant.ofEpochSecond(rs.getLong(4)), Instant.parse(rs.getString(5)),
                revoked == null ? null : Instant.parse(revoked),
                revoked == null ? null : RevocationReason.ofCode(rs.getInt(7)));
    }

    @Override
    public synchronized List<CertificateRecord> revokedCertificates(String name, int version, Instant now)
            throws RegistryException {
        try (PreparedStatement p = db.prepareStatement("SELECT " + CERTIFICATE_COLUMNS + " FROM certificates"
                + " WHERE key_name = ? AND version = ? AND revoked IS NOT NULL AND not_after > ? ORDER BY serial")) {
            p.setString(1, name);
            p.setInt(2, version);
            p.setLong(3, now.getEpochSecond());
            List<CertificateRecord> out = new ArrayList<>();
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) out.add(certificate(rs));
            }
            return out;
        } catch (SQLException e) {
            throw new RegistryException("revoked certificate lookup failed: " + e.getMessage(), e);
        }
    }

    @Override
    public synchronized long crlNumber(String name, int version) throws RegistryException {
        try {
            return crlNumberLocked(name, version);
        } catch (SQLException e) {
            throw new RegistryException("CRL number lookup failed: " + e.getMessage(), e);
        }
    }

    private long crlNumberLocked(String name, int version) throws SQLException {
        try (PreparedStatement p = db.prepareStatement(
                "SELECT number FROM crl_numbers WHERE key_name = ? AND version = ?")) {
            p.setString(1, name);
            p.setInt(2, version);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? rs.getLong(1) : 0;
            }
        }
    }

    @Override
    public Optional<KeyRecord> find(String name) {
        return Optional.ofNullable(cache.get(name));
    }

    @Override
    public List<KeyRecord> list() {
        List<KeyRecord> all = new ArrayList<>(cache.values());
        all.sort(Comparator.comparing(KeyRecord::name));
        return all;
    }

    @Override
    public Optional<TokenRecord> findToken(String id) {
        return Optional.ofNullable(tokens.get(id));
    }

    @Override
    public List<TokenRecord> tokens() {
        List<TokenRecord> all = new ArrayList<>(tokens.values());
        all.sort(Comparator.comparing(TokenRecord::created).thenComparing(TokenRecord::id));
        return all;
    }

    @Override
    public synchronized void close() {
        try {
            db.close();
        } catch (SQLException ignored) {
            // closing at shutdown: the WAL is already durable
        }
    }
}
