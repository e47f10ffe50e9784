package dev.enclavekms.server;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The daemon's measuring options: audit durability off and connection limits only with --dev. */
class MainOptionsTest {
    private static String usage(String... args) {
        Main m = new Main();
        new CommandLine(m).parseArgs(args);
        return m.usageError();
    }

    @Test
    void auditDurabilityNone_onlyWithDev() {
        assertNull(usage("--dev", "--audit-durability", "none"));
        assertNull(usage("--config", "/etc/enclave-kms/enclave-kms.conf", "--audit-durability", "fsync"));
        String e = usage("--config", "/etc/enclave-kms/enclave-kms.conf", "--audit-durability", "none");
        assertTrue(e.contains("--dev only") && e.contains("always durable"), e);
        assertEquals("--audit-durability must be fsync or none", usage("--dev", "--audit-durability", "off"));
    }

    @Test
    void connectionLimits_onlyWithDev_elseTheConfigurationFile() {
        assertNull(usage("--dev", "--max-connections", "20000", "--max-connections-per-user", "20000"));
        String e = usage("--config", "/etc/enclave-kms/enclave-kms.conf", "--max-connections", "20000");
        assertTrue(e.contains("limits.max-connections"), e);
    }

    @Test
    void accessLog_inBothModes() {
        assertNull(usage("--dev", "--access-log"));
        assertNull(usage("--config", "/etc/enclave-kms/enclave-kms.conf", "--access-log"));
    }

    @Test
    void pkcs11Binding_ffmOrWrapper_inBothModes() {
        assertNull(usage("--dev"));
        assertNull(usage("--dev", "--pkcs11-binding", "wrapper"));
        assertNull(usage("--config", "/etc/enclave-kms/enclave-kms.conf", "--pkcs11-binding=ffm"));
        assertEquals("--pkcs11-binding must be ffm or wrapper", usage("--dev", "--pkcs11-binding", "jni"));
    }

    @Test
    void jdkPoller_theServersChoiceWhenDurable_theJdksDefaultWithAuditDurabilityNone() {
        Main durable = new Main();
        new CommandLine(durable).parseArgs("--dev");
        assertNull(durable.jdkPollerMode(), "VarlinkServer's platform poller");
        Main configured = new Main();
        new CommandLine(configured).parseArgs("--config", "/etc/enclave-kms/enclave-kms.conf");
        assertNull(configured.jdkPollerMode());
        Main none = new Main();
        new CommandLine(none).parseArgs("--dev", "--audit-durability", "none");
        assertEquals("2", none.jdkPollerMode(), "the JDK's virtual-thread pollers");
    }
}
