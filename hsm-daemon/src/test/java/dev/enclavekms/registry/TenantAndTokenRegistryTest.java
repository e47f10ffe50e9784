package dev.enclavekms.registry;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Schema version 3: keys carry their tenant, tokens are stored as hashes; both survive a reopen and the migration. */
class TenantAndTokenRegistryTest {
    @TempDir
    Path dir;

    private static final Instant T0 = Instant.parse("2026-11-22T10:00:00Z");

    @Test
    void createKey_recordsItsTenant_acrossReopen() throws Exception {
        Path file = dir.resolve("r.db");
        try (SqliteRegistryStore s = SqliteRegistryStore.open(file)) {
            s.apply(new RegistryCommand.CreateKey("acme/w", Purpose.ENCRYPT, KeyAlgorithm.AES_256_GCM, "", List.of(),
                    null, 30, ObjectId.random(), T0, "acme"));
            s.apply(new RegistryCommand.CreateKey("plain", Purpose.ENCRYPT, KeyAlgorithm.AES_256_GCM, "", List.of(),
                    ObjectId.random(), T0));
        }
        try (SqliteRegistryStore s = SqliteRegistryStore.open(file)) {
            assertEquals("acme", s.find("acme/w").orElseThrow().tenant());
            assertEquals(KeyRecord.DEFAULT_TENANT, s.find("plain").orElseThrow().tenant());
        }
    }

    @Test
    void tokens_createAndRevoke_acrossReopen() throws Exception {
        Path file = dir.resolve("r.db");
        String hash = "ab".repeat(32);
        try (SqliteRegistryStore s = SqliteRegistryStore.open(file)) {
            s.apply(new RegistryCommand.CreateToken("0123456789abcdef", "ci", "acme", hash, T0, T0.plusSeconds(60)));
            assertThrows(RegistryException.Conflict.class, () -> s.apply(
                    new RegistryCommand.CreateToken("0123456789abcdef", "ci", "acme", "cd".repeat(32), T0, T0.plusSeconds(60))));
            assertThrows(RegistryException.Conflict.class, () -> s.apply(
                    new RegistryCommand.CreateToken("1123456789abcdef", "ci", "acme", "ef".repeat(32), T0, T0)));
            assertNull(s.findToken("0123456789abcdef").orElseThrow().revoked());
            s.apply(new RegistryCommand.RevokeToken("0123456789abcdef", T0.plusSeconds(5)));
            assertThrows(RegistryException.Conflict.class,
                    () -> s.apply(new RegistryCommand.RevokeToken("0123456789abcdef", T0.plusSeconds(6))));
            assertThrows(RegistryException.Conflict.class,
                    () -> s.apply(new RegistryCommand.RevokeToken("ffffffffffffffff", T0)));
        }
        try (SqliteRegistryStore s = SqliteRegistryStore.open(file)) {
            TokenRecord t = s.findToken("0123456789abcdef").orElseThrow();
            assertEquals(new TokenRecord("0123456789abcdef", "ci", "acme", hash, T0, T0.plusSeconds(60),
                    T0.plusSeconds(5)), t);
            assertEquals(List.of(t), s.tokens());
        }
    }

    @Test
    void migrationFromVersion2_putsExistingKeysInTheDefaultTenant() throws Exception {
        Path file = dir.resolve("v2.db");
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file); Statement s = c.createStatement()) {
            // The version 2 schema as the lifecycle release wrote it, with one key.
            s.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)");
            s.execute("CREATE TABLE keys (name TEXT PRIMARY KEY, purpose INTEGER NOT NULL, algorithm INTEGER NOT NULL,"
                    + " description TEXT NOT NULL, created TEXT NOT NULL, primary_version INTEGER NOT NULL,"
                    + " required_context TEXT NOT NULL, rotation_period_seconds INTEGER,"
                    + " destroy_wait_days INTEGER NOT NULL DEFAULT 30)");
            s.execute("CREATE TABLE key_versions (key_name TEXT NOT NULL REFERENCES keys(name), version INTEGER NOT NULL,"
                    + " object_id TEXT NOT NULL UNIQUE, state INTEGER NOT NULL, created TEXT NOT NULL,"
                    + " state_changed TEXT NOT NULL, destroy_at TEXT, encryptions_reserved INTEGER NOT NULL DEFAULT 0,"
                    + " PRIMARY KEY (key_name, version))");
            s.execute("CREATE TABLE orphans (object_id TEXT PRIMARY KEY, first_seen TEXT NOT NULL)");
            s.execute("INSERT INTO schema_version VALUES (1)");
            s.execute("INSERT INTO schema_version VALUES (2)");
            s.execute("INSERT INTO keys (name, purpose, algorithm, description, created, primary_version, required_context)"
                    + " VALUES ('old', 1, 1, '', '" + T0 + "', 1, '[]')");
            s.execute("INSERT INTO key_versions (key_name, version, object_id, state, created, state_changed)"
                    + " VALUES ('old', 1, '" + ObjectId.random().hex() + "', 2, '" + T0 + "', '" + T0 + "')");
        }
        try (SqliteRegistryStore s = SqliteRegistryStore.open(file)) {
            assertEquals(KeyRecord.DEFAULT_TENANT, s.find("old").orElseThrow().tenant());
            assertEquals(List.of(), s.tokens());
        }
    }
}
