package dev.enclavekms.system;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The daemon's JVM options as its launchers set them, read back from the JVM each one starts
 * ({@code -XX:+PrintFlagsFinal} through {@code ENCLAVE_KMS_JAVA_OPTS}, which the launchers put
 * after their own options). {@code -XX:MaxTenuringThreshold=2} keeps the daemon's young
 * collections short (docs/decisions.md, "The daemon's young collections promote after two").
 * The jsvc launcher is checked by {@link JsvcIT}; the package installs {@code systemd/enclave-kmsd},
 * checked here, as {@code /usr/sbin/enclave-kmsd} ({@link PackageIT}).
 */
class LauncherJvmOptionsIT {
    /** The flag as -XX:+PrintFlagsFinal lists it when it came from the command line. */
    private static final Pattern TENURING_FROM_LAUNCHER =
            Pattern.compile("(?m)^\\s*\\w+ MaxTenuringThreshold\\s+= 2\\s.*\\{command line\\}");

    @TempDir
    Path dir;

    /** Fails with the flag's actual line when a JVM's flag listing lacks the launcher's threshold. */
    static void assertTenuringThresholdFromLauncher(String printFlagsFinal) {
        assertTrue(TENURING_FROM_LAUNCHER.matcher(printFlagsFinal).find(), "MaxTenuringThreshold as the JVM has it: "
                + printFlagsFinal.lines().filter(l -> l.contains("MaxTenuringThreshold")).toList());
    }

    @Test
    void devLauncher_startsTheDaemonsJvmWithTheTenuringThreshold() throws Exception {
        Commands.Result r = Commands.run(List.of(Commands.repoFile("bin/enclave-kmsd").toString(), "--version"),
                Map.of("ENCLAVE_KMS_JAVA_OPTS", "-XX:+PrintFlagsFinal"), null);
        assertEquals(0, r.exit(), r.stderr());
        assertTrue(r.stdout().contains("enclave-kmsd "), "the daemon itself ran: " + r.stdout().lines().toList().getLast());
        assertTenuringThresholdFromLauncher(r.stdout());
    }

    @Test
    void serviceLauncher_startsTheDaemonsJvmWithTheTenuringThreshold() throws Exception {
        // The layout the package installs under /usr/share/enclave-kms: the daemon's jar and lib/.
        Path target = Commands.repoFile("hsm-daemon/target");
        Path jar;
        try (Stream<Path> jars = Files.list(target)) {
            jar = jars.filter(p -> p.getFileName().toString().matches("enclave-kmsd-[^-]+(-SNAPSHOT)?\\.jar"))
                    .findFirst().orElseThrow(() -> new AssertionError("no daemon jar in " + target));
        }
        Files.createSymbolicLink(dir.resolve("enclave-kmsd.jar"), jar);
        Files.createSymbolicLink(dir.resolve("lib"), target.resolve("lib"));
        Commands.Result r = Commands.run(List.of(Commands.repoFile("systemd/enclave-kmsd").toString(), "--version"),
                Map.of("ENCLAVE_KMS_LIB", dir.toString(), "ENCLAVE_KMS_JAVA_HOME", System.getProperty("java.home"),
                        "ENCLAVE_KMS_JAVA_OPTS", "-XX:+PrintFlagsFinal"), null);
        assertEquals(0, r.exit(), r.stderr());
        assertTrue(r.stdout().contains("enclave-kmsd "), "the daemon itself ran: " + r.stdout().lines().toList().getLast());
        assertTenuringThresholdFromLauncher(r.stdout());
    }
}
