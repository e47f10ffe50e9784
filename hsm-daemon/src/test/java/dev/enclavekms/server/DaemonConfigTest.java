package dev.enclavekms.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DaemonConfigTest {
    @TempDir
    Path dir;

    private Path config(String pinLines) throws IOException {
        return Files.writeString(dir.resolve("enclave-kms.conf"), """
                pkcs11.module = /usr/lib/softhsm/libsofthsm2.so
                pkcs11.token-label = enclave-kms
                """ + pinLines);
    }

    @Test
    void pinCredential_underSystemd_isTheFileInCredentialsDirectory() throws IOException {
        DaemonConfig c = DaemonConfig.load(config("pkcs11.pin-credential = pin\n"), "/run/credentials/enclave-kms.service");
        assertEquals(Path.of("/run/credentials/enclave-kms.service/pin"), c.pinFile());
    }

    @Test
    void pinCredential_withoutCredentialsDirectory_isRefusedNamingLoadCredential() throws IOException {
        IOException e = assertThrows(IOException.class, () -> DaemonConfig.load(config("pkcs11.pin-credential = pin\n"), null));
        assertTrue(e.getMessage().contains("LoadCredential=pin:FILE"), e.getMessage());
    }

    @Test
    void pinFileAndPinCredential_bothOrNeither_isRefused() throws IOException {
        Path both = config("pkcs11.pin-credential = pin\npkcs11.pin-file = /etc/enclave-kms/pin\n");
        assertThrows(IOException.class, () -> DaemonConfig.load(both, "/run/credentials/x"));
        Path neither = config("");
        IOException e = assertThrows(IOException.class, () -> DaemonConfig.load(neither, "/run/credentials/x"));
        assertTrue(e.getMessage().contains("exactly one of 'pkcs11.pin-file'"), e.getMessage());
    }

    @Test
    void pinCredential_thatIsAPath_isRefused() throws IOException {
        for (String bad : new String[] {"../pin", "/etc/pin", "a/b", ".."}) {
            Path c = config("pkcs11.pin-credential = " + bad + "\n");
            assertThrows(IOException.class, () -> DaemonConfig.load(c, "/run/credentials/x"), bad);
        }
    }

    @Test
    void caMaxTtl_defaultsTo24h_isReadAndBounded() throws IOException {
        assertEquals(java.time.Duration.ofHours(24),
                DaemonConfig.load(config("pkcs11.pin-file = /p\n"), null).caMaxTtl());
        assertEquals(java.time.Duration.ofDays(7),
                DaemonConfig.load(config("pkcs11.pin-file = /p\nca.max-ttl-seconds = 604800\n"), null).caMaxTtl());
        IOException e = assertThrows(IOException.class,
                () -> DaemonConfig.load(config("pkcs11.pin-file = /p\nca.max-ttl-seconds = 0\n"), null));
        assertTrue(e.getMessage().contains("ca.max-ttl-seconds"), e.getMessage());
        assertThrows(IOException.class,
                () -> DaemonConfig.load(config("pkcs11.pin-file = /p\nca.max-ttl-seconds = 99999999\n"), null));
    }

    @Test
    void pinFile_isUsedAsGiven() throws IOException {
        assertEquals(Path.of("/etc/enclave-kms/pin"),
                DaemonConfig.load(config("pkcs11.pin-file = /etc/enclave-kms/pin\n"), null).pinFile());
    }

    @Test
    void connectionLimits_totalAndPerUser_readForTenThousandIdleConnections() throws IOException {
        DaemonConfig c = DaemonConfig.load(config("pkcs11.pin-file = /p\nlimits.max-connections = 12000\n"
                + "limits.max-connections-per-user = 11000\n"), null);
        assertEquals(12000, c.limits().maxConnections());
        assertEquals(11000, c.limits().maxConnectionsPerUser());
        DaemonConfig d = DaemonConfig.load(config("pkcs11.pin-file = /p\n"), null);
        assertEquals(512, d.limits().maxConnections());
        assertEquals(128, d.limits().maxConnectionsPerUser());
        assertEquals(dev.enclavekms.audit.AuditLog.Durability.FSYNC, d.audit().durability(),
                "a configuration file cannot turn audit durability off");
    }

    @Test
    void accessLog_offByDefault_onWithLogAccess_otherValuesRefused() throws IOException {
        assertEquals(false, DaemonConfig.load(config("pkcs11.pin-file = /p\n"), null).accessLog());
        assertEquals(true, DaemonConfig.load(config("pkcs11.pin-file = /p\nlog.access = true\n"), null).accessLog());
        assertEquals(false, DaemonConfig.load(config("pkcs11.pin-file = /p\nlog.access = false\n"), null).accessLog());
        IOException e = assertThrows(IOException.class,
                () -> DaemonConfig.load(config("pkcs11.pin-file = /p\nlog.access = yes\n"), null));
        assertTrue(e.getMessage().contains("'log.access' must be true or false"), e.getMessage());
        DaemonConfig on = DaemonConfig.load(config("pkcs11.pin-file = /p\n"), null).withAccessLog(true);
        assertEquals(true, on.withLimits(on.limits()).withAudit(on.audit()).withLifecycle(on.lifecycle()).accessLog(),
                "kept by the other with* copies");
    }
}
