package dev.enclavekms.registry;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The registry on a real SQLite file. */
class SqliteRegistryStoreTest {
    @TempDir
    Path dir;

    private static final Instant T0 = Instant.parse("2026-11-22T10:00:00Z");

    private static RegistryCommand.CreateKey create(String name, ObjectId id) {
        return new RegistryCommand.CreateKey(name, Purpose.ENCRYPT, KeyAlgorithm.AES_256_GCM, "weights",
                List.of("model"), id, T0);
    }

    @Test
    void createKey_survivesReopen() throws Exception {
        Path file = dir.resolve("registry.db");
        ObjectId id = ObjectId.random();
        try (SqliteRegistryStore s = SqliteRegistryStore.open(file)) {
            s.apply(create("weights", id));
        }
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        try (SqliteRegistryStore s = SqliteRegistryStore.open(file)) {
            KeyRecord k = s.find("weights").orElseThrow();
            assertEquals(Purpose.ENCRYPT, k.purpose());
            assertEquals(KeyAlgorithm.AES_256_GCM, k.algorithm());
            assertEquals(List.of("model"), k.requiredContext());
            assertEquals(1, k.primaryVersion());
            assertEquals(id, k.primary().objectId());
            assertEquals(VersionState.ENABLED, k.primary().state());
            assertEquals(T0, k.created());
        }
    }

    @Test
    void duplicateKey_isRefusedAndChangesNothing() throws Exception {
        try (SqliteRegistryStore s = SqliteRegistryStore.open(dir.resolve("r.db"))) {
            ObjectId first = ObjectId.random();
            s.apply(create("k", first));
            assertThrows(RegistryException.Conflict.class, () -> s.apply(create("k", ObjectId.random())));
            assertEquals(first, s.find("k").orElseThrow().primary().objectId());
            assertEquals(1, s.list().size());
        }
    }

    @Test
    void addVersion_mustBeNextNumber() throws Exception {
        try (SqliteRegistryStore s = SqliteRegistryStore.open(dir.resolve("r.db"))) {
            s.apply(create("k", ObjectId.random()));
            assertThrows(RegistryException.Conflict.class,
                    () -> s.apply(new RegistryCommand.AddVersion("k", 3, ObjectId.random(), VersionState.ENABLED, false, T0)));
            s.apply(new RegistryCommand.AddVersion("k", 2, ObjectId.random(), VersionState.ENABLED, false, T0));
            s.apply(new RegistryCommand.SetPrimaryVersion("k", 2, T0));
            assertEquals(2, s.find("k").orElseThrow().primaryVersion());
            assertEquals(2, s.find("k").orElseThrow().latestVersion());
        }
    }

    @Test
    void illegalTransition_isRefusedNamingTheCurrentState() throws Exception {
        try (SqliteRegistryStore s = SqliteRegistryStore.open(dir.resolve("r.db"))) {
            s.apply(create("k", ObjectId.random()));
            s.apply(new RegistryCommand.AddVersion("k", 2, ObjectId.random(), VersionState.ENABLED, false, T0));
            s.apply(new RegistryCommand.SetVersionState("k", 2, VersionState.REVOKED, T0));
            RegistryException e = assertThrows(RegistryException.Conflict.class,
                    () -> s.apply(new RegistryCommand.SetVersionState("k", 2, VersionState.ENABLED, T0)));
            assertTrue(e.getMessage().contains("REVOKED"), e.getMessage());
            // The primary version cannot leave ENABLED while it is primary.
            assertThrows(RegistryException.Conflict.class,
                    () -> s.apply(new RegistryCommand.SetVersionState("k", 1, VersionState.DISABLED, T0)));
            assertEquals(VersionState.ENABLED, s.find("k").orElseThrow().primary().state());
        }
    }

    @Test
    void versionStateTransitions_matchDesign() {
        assertTrue(VersionState.PENDING.canBecome(VersionState.ENABLED));
        assertTrue(VersionState.ENABLED.canBecome(VersionState.DISABLED));
        assertTrue(VersionState.DISABLED.canBecome(VersionState.ENABLED));
        assertTrue(VersionState.DISABLED.canBecome(VersionState.REVOKED));
        assertTrue(VersionState.DESTROY_SCHEDULED.canBecome(VersionState.DISABLED));
        assertTrue(VersionState.DESTROY_SCHEDULED.canBecome(VersionState.DESTROYED));
        assertFalse(VersionState.REVOKED.canBecome(VersionState.ENABLED));
        assertFalse(VersionState.DESTROYED.canBecome(VersionState.DESTROY_SCHEDULED));
        assertFalse(VersionState.PENDING.canBecome(VersionState.DISABLED));
        for (VersionState s : VersionState.values()) {
            assertEquals(s != VersionState.DESTROYED, s.canBecome(VersionState.DESTROY_SCHEDULED) || s == VersionState.DESTROY_SCHEDULED,
                    "any but DESTROYED can be scheduled for destruction: " + s);
        }
    }

    @Test
    void storedCodes_areStable() {
        // These numbers are in registry files on disk; changing one corrupts them.
        assertEquals(List.of(1, 2, 3, 4, 5, 6), java.util.Arrays.stream(VersionState.values()).map(VersionState::code).toList());
        assertEquals(List.of(1, 2, 3, 4, 5, 6), java.util.Arrays.stream(Purpose.values()).map(Purpose::code).toList());
        assertEquals(List.of(1, 2, 3, 4, 5, 6), java.util.Arrays.stream(KeyAlgorithm.values()).map(KeyAlgorithm::code).toList());
    }

    @Test
    void revocationReasonCodes_areRfc5280sAndStable() {
        // Stored in the registry and written into CRLs: RFC 5280 5.3.1 CRLReason values.
        assertEquals(List.of(0, 1, 2, 3, 4, 5, 9, 10),
                java.util.Arrays.stream(RevocationReason.values()).map(RevocationReason::code).toList());
        assertEquals(RevocationReason.KEY_COMPROMISE, RevocationReason.parse("keyCompromise"));
        assertEquals(RevocationReason.KEY_COMPROMISE, RevocationReason.parse("KEY_COMPROMISE"));
        assertEquals(null, RevocationReason.parse("certificateHold"));
    }

    @Test
    void certificates_recordedOnce_revokedOnce_survivingReopen_andExpiredOnesLeaveTheRevokedList() throws Exception {
        Path file = dir.resolve("certs.db");
        Instant day = T0.plusSeconds(86400);
        try (SqliteRegistryStore s = SqliteRegistryStore.open(file)) {
            s.apply(new RegistryCommand.CreateKey("ca", Purpose.CERT_AUTHORITY, KeyAlgorithm.EC_P256_SHA256, "",
                    List.of(), ObjectId.random(), T0));
            s.apply(create("plain", ObjectId.random()));
            s.apply(new RegistryCommand.RecordCertificate("a1", "ca", 1, day, T0));
            s.apply(new RegistryCommand.RecordCertificate("b2", "ca", 1, T0.plusSeconds(60), T0));
            assertThrows(RegistryException.Conflict.class,
                    () -> s.apply(new RegistryCommand.RecordCertificate("a1", "ca", 1, day, T0)));
            assertThrows(RegistryException.Conflict.class,
                    () -> s.apply(new RegistryCommand.RecordCertificate("c3", "ca", 2, day, T0)), "no version 2");
            assertThrows(RegistryException.Conflict.class,
                    () -> s.apply(new RegistryCommand.RecordCertificate("c3", "plain", 1, day, T0)), "not a CA");
            s.apply(new RegistryCommand.RevokeCertificate("a1", RevocationReason.KEY_COMPROMISE, T0.plusSeconds(5)));
            s.apply(new RegistryCommand.RevokeCertificate("b2", RevocationReason.UNSPECIFIED, T0.plusSeconds(5)));
            assertThrows(RegistryException.Conflict.class, () -> s.apply(
                    new RegistryCommand.RevokeCertificate("a1", RevocationReason.SUPERSEDED, T0.plusSeconds(6))));
            assertThrows(RegistryException.Conflict.class, () -> s.apply(
                    new RegistryCommand.RevokeCertificate("ff", RevocationReason.SUPERSEDED, T0)));
            s.apply(new RegistryCommand.AdvanceCrlNumber("ca", 1, 1));
            s.apply(new RegistryCommand.AdvanceCrlNumber("ca", 1, 3));
            assertThrows(RegistryException.Conflict.class, () -> s.apply(new RegistryCommand.AdvanceCrlNumber("ca", 1, 3)),
                    "CRL numbers only rise");
        }
        try (SqliteRegistryStore s = SqliteRegistryStore.open(file)) {
            CertificateRecord a = s.findCertificate("a1").orElseThrow();
            assertEquals(new CertificateRecord("a1", "ca", 1, day, T0, T0.plusSeconds(5),
                    RevocationReason.KEY_COMPROMISE), a);
            assertTrue(s.findCertificate("ff").isEmpty());
            assertEquals(List.of("a1", "b2"), s.revokedCertificates("ca", 1, T0.plusSeconds(10)).stream()
                    .map(CertificateRecord::serial).toList());
            assertEquals(List.of("a1"), s.revokedCertificates("ca", 1, T0.plusSeconds(60)).stream()
                    .map(CertificateRecord::serial).toList(), "b2 expired: it leaves the CRL");
            assertEquals(3, s.crlNumber("ca", 1));
            assertEquals(0, s.crlNumber("ca", 2));
        }
    }
}
