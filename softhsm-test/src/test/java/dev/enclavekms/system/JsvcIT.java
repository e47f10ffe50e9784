package dev.enclavekms.system;

import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.audit.CanonicalJson;
import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.KmsClient;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The daemon under Apache Commons Daemon: systemd/enclave-kms-jsvc starts jsvc as root
 * with {@code -user nobody} (init() as root, start() after the switch), the daemon serves,
 * SIGUSR2 reloads the policy, and stop drains: every call answered is in the access log
 * ({@code log.access = true}) when
 * jsvc returns, and the audit log — in {@code audit/} beside the registry, created by the
 * service user — verifies intact with {@code bin/kmsctl audit verify} against the public key
 * exported from the running daemon, ends with the signed {@code stop} checkpoint and holds
 * one {@code ok} record for each call served.
 */
class JsvcIT {
    /** The jsvc daemon this test started, so that a failed assertion cannot leave it running. */
    private long startedPid = -1;

    @org.junit.jupiter.api.AfterEach
    void killLeftoverDaemon() throws Exception {
        if (startedPid > 0 && running(startedPid)) {
            Commands.run("kill", "-9", Long.toString(startedPid));
        }
    }

    @TempDir
    Path dir;

    @Test
    void jsvc_startServeReloadStop_asTheServiceUser_everyCallLoggedAndAudited() throws Exception {
        HostRoot.requireTool("jsvc");
        assertTrue(Files.exists(Path.of("/usr/share/java/commons-daemon.jar")),
                "install libcommons-daemon-java (bin/lib.sh ensure_packages does)");
        ProvisionedHost host = ProvisionedHost.create(dir, "jsvc-host", ProvisionedHost.NOBODY);
        // The access log is opt-in; this test reads it to see that stop drained every call.
        Files.writeString(host.config, "log.access = true\n", java.nio.file.StandardOpenOption.APPEND);
        Path lib = host.stageLibrary();
        Path logDir = Files.createDirectory(dir.resolve("log"));
        Commands.run("chown", ProvisionedHost.NOBODY, logDir.toString()).requireSuccess();
        Map<String, String> env = new HashMap<>(Map.of(
                "ENCLAVE_KMS_LIB", lib.toString(),
                "ENCLAVE_KMS_CONFIG", host.config.toString(),
                "ENCLAVE_KMS_PIN", host.pinFile.toString(),
                "ENCLAVE_KMS_USER", "nobody",
                "ENCLAVE_KMS_RUN_DIR", host.socket.getParent().toString(),
                "ENCLAVE_KMS_LOG_DIR", logDir.toString(),
                "SOFTHSM2_CONF", host.softhsmConf.toString()));
        env.put("ENCLAVE_KMS_JAVA_HOME", System.getProperty("java.home"));
        env.put("ENCLAVE_KMS_JAVA_OPTS", "-XX:+PrintFlagsFinal"); // to the -outfile: the JVM's options, read back below
        String script = Commands.repoFile("systemd/enclave-kms-jsvc").toString();
        Path log = logDir.resolve("enclave-kmsd.log");

        Commands.Result start = Commands.run(List.of(script, "start"), env, null);
        assertEquals(0, start.exit(), start.stderr() + "\n" + read(log));
        long pid = Long.parseLong(Files.readString(host.socket.resolveSibling("jsvc.pid")).trim());
        startedPid = pid;
        Path jvmOut = logDir.resolve("enclave-kmsd.out");
        await("the JVM's options in " + jvmOut, () -> read(jvmOut).contains("MaxTenuringThreshold"));
        LauncherJvmOptionsIT.assertTenuringThresholdFromLauncher(read(jvmOut));
        assertEquals(ProvisionedHost.NOBODY, Commands.run("ps", "-o", "uid=", "-p", Long.toString(pid)).stdout().trim());
        // The PIN reached the daemon as a credential the service user owns, never as its source file.
        Path creds = host.socket.resolveSibling("credentials");
        assertEquals(Integer.parseInt(ProvisionedHost.NOBODY), (int) Files.getAttribute(creds.resolve("pin"), "unix:uid"));

        Path pem = dir.resolve("audit-public.pem");
        Commands.run(List.of(Commands.repoFile("bin/kmsctl").toString(), "--socket", host.socket.toString(),
                "audit", "public-key", "--out", pem.toString()), Map.of(), null).requireSuccess();

        try (KmsClient kms = KmsClient.connect(host.socket)) {
            kms.createKey("weights", "ENCRYPT", null, null, null);
            DataKey dk = kms.generateDataKey("weights", Map.of());
            assertArrayEquals(dk.plaintext(), kms.decrypt(dk.ciphertext(), Map.of()).plaintext());
        }

        Commands.run(List.of(script, "reload"), env, null).requireSuccess();
        await("the reload in the log", () -> read(log).contains("policy reloaded from"));

        Commands.Result stop = Commands.run(List.of(script, "stop"), env, null);
        assertEquals(0, stop.exit(), stop.stderr());
        await("the daemon process to end", () -> !running(pid));
        String out = read(log);
        assertTrue(out.contains("stopping (jsvc): draining calls in flight"), out);
        assertTrue(out.contains("JsvcDaemon: stopped"), out);
        for (String method : List.of("Admin.CreateKey", "Kms.GenerateDataKey", "Kms.Decrypt")) {
            assertTrue(out.contains("access: dev.enclavekms." + method + " by user=root"), method + " not logged:\n" + out);
        }
        assertFalse(Files.exists(host.socket), "the daemon removes the socket it bound");
        assertFalse(Files.exists(creds), "stop removes the copy of the PIN");
        assertFalse(out.contains(host.userPin));

        // Audit flushed: the log the service user wrote verifies intact up to its stop checkpoint.
        Path auditDir = host.state.resolve("audit");
        assertEquals(Integer.parseInt(ProvisionedHost.NOBODY), (int) Files.getAttribute(auditDir, "unix:uid"),
                "the service user created its audit directory");
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(auditDir)));
        Commands.Result verify = Commands.run(List.of(Commands.repoFile("bin/kmsctl").toString(), "audit", "verify",
                "--public-key", pem.toString(), auditDir.toString()), Map.of(), null);
        assertEquals(0, verify.exit(), "audit verify (0 intact, 5 incomplete): " + verify.stdout() + verify.stderr());
        assertTrue(verify.stdout().lines().findFirst().orElseThrow().endsWith("INTACT"), verify.stdout());
        List<Map<String, Object>> records = new ArrayList<>();
        for (Path f : AuditLog.logFiles(auditDir)) {
            for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                records.add(CanonicalJson.parseCanonical(line));
            }
        }
        assertEquals("start", records.getFirst().get("type"));
        assertEquals(pid, ((Number) records.getFirst().get("pid")).longValue(), "the start record of this jsvc run");
        assertEquals("checkpoint", records.getLast().get("type"));
        assertEquals("stop", records.getLast().get("reason"), "jsvc stop closed the log with its stop checkpoint");
        for (String method : List.of("Admin.CreateKey", "Kms.GenerateDataKey", "Kms.Decrypt")) {
            List<Map<String, Object>> calls = records.stream()
                    .filter(r -> "call".equals(r.get("type")) && ("dev.enclavekms." + method).equals(r.get("method")))
                    .toList();
            assertEquals(1, calls.size(), method + " audited once: " + calls);
            assertEquals("ok", calls.getFirst().get("outcome"));
            assertEquals("weights", calls.getFirst().get("key"));
            assertEquals("root", calls.getFirst().get("user"));
        }
    }

    private static boolean running(long pid) {
        try {
            String stat = Commands.run("ps", "-o", "stat=", "-p", Long.toString(pid)).stdout().trim();
            return !stat.isEmpty() && !stat.startsWith("Z");
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            LockSupport.parkNanos(Duration.ofMillis(20).toNanos());
        }
    }

    private static String read(Path p) {
        try {
            return Files.exists(p) ? Files.readString(p) : "";
        } catch (java.io.IOException e) {
            return "(unreadable: " + e + ")";
        }
    }
}
