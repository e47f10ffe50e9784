package dev.enclavekms.system;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The .deb the build makes (packaging/, jdeb): lintian finds no error; installed with
 * dpkg into a throw-away root (maintainer scripts run chrootless with DPKG_ROOT), its
 * users, groups and directories exist, its units verify clean there — so every program
 * they name is in the package — and its launchers run the daemon and kmsctl it ships.
 * Removing it keeps the configuration and the state.
 */
class PackageIT {
    @TempDir
    Path dir;

    /** The package in packaging/target; the reactor builds packaging before softhsm-test. */
    static Path deb() throws Exception {
        Path target = Commands.repoFile("packaging/target");
        List<Path> debs;
        try (Stream<Path> s = Files.exists(target) ? Files.list(target) : Stream.empty()) {
            debs = s.filter(p -> p.getFileName().toString().matches("enclave-kms_.*_all\\.deb")).toList();
        }
        assertEquals(1, debs.size(), "expected one package in " + target + "; build it with"
                + " ./mvnw package -pl client,hsm-daemon,packaging: " + debs);
        return debs.getFirst();
    }

    @Test
    void deb_lintian_reportsNoErrors() throws Exception {
        HostRoot.requireTool("lintian");
        Commands.Result r = Commands.run("lintian", "--fail-on", "error", "--tag-display-limit", "0",
                deb().toString());
        assertEquals(0, r.exit(), r.stdout() + r.stderr());
        assertFalse(r.stdout().lines().anyMatch(l -> l.startsWith("E:")), r.stdout());
    }

    @Test
    void deb_installedIntoAThrowAwayRoot_providesWhatTheUnitsReference_andRuns() throws Exception {
        Path deb = deb();
        HostRoot root = HostRoot.create(dir.resolve("root"));
        for (String d : List.of("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers")) {
            Files.createDirectories(root.path().resolve(d));
        }
        Files.createFile(root.path().resolve("var/lib/dpkg/status"));
        Files.createFile(root.path().resolve("var/lib/dpkg/available"));
        Commands.Result install = Commands.run("dpkg", "--root=" + root.path(), "--force-script-chrootless",
                "--force-depends", "-i", deb.toString());
        assertEquals(0, install.exit(), install.stdout() + install.stderr());

        // postinst: sysusers.d and tmpfiles.d applied to the root.
        SystemdUnitsIT.assertHostLayout(root);
        // The units as installed: clean, and every ExecStart=/ExecStop=/ExecReload= program present.
        assertEquals(List.of("enclave-kms-jsvc.service", "enclave-kms.service", "enclave-kms.socket"), root.ourUnits());
        SystemdUnitsIT.assertVerifyClean(root);
        for (Path unit : root.ourUnitFiles()) {
            for (String line : Files.readAllLines(unit)) {
                if (line.matches("Exec(Start|Stop|Reload)=.*")) {
                    String program = line.substring(line.indexOf('=') + 1).split(" ")[0];
                    assertTrue(Files.isExecutable(root.resolve(program)), unit.getFileName() + ": " + program);
                }
            }
            if (unit.getFileName().toString().endsWith(".service")) {
                SystemdUnitsIT.assertExposureAtMostOne(unit);
            }
        }
        assertTrue(Files.exists(root.resolve("/etc/enclave-kms/enclave-kms.conf")));
        assertTrue(Files.exists(root.resolve("/usr/share/doc/enclave-kms/copyright")));
        Commands.Result status = Commands.run("dpkg", "--root=" + root.path(), "-s", "enclave-kms");
        assertTrue(status.stdout().contains("Conffiles:\n /etc/enclave-kms/enclave-kms.conf "), status.stdout());

        // The package carries the daemon this build made, and its launchers run it.
        assertArrayEquals(Files.readAllBytes(daemonJar()),
                Files.readAllBytes(root.resolve("/usr/share/enclave-kms/enclave-kmsd.jar")),
                "the package is older than hsm-daemon/target: rebuild it with -pl ...,packaging");
        Map<String, String> env = Map.of("ENCLAVE_KMS_LIB", root.resolve("/usr/share/enclave-kms").toString(),
                "ENCLAVE_KMS_JAVA_HOME", System.getProperty("java.home"));
        Commands.Result version = Commands.run(List.of(root.resolve("/usr/sbin/enclave-kmsd").toString(), "--version"),
                env, null);
        assertEquals(0, version.exit(), version.stderr());
        assertTrue(version.stdout().startsWith("enclave-kmsd "), version.stdout());
        // The simulated card is a development aid: its jars stay out of the package, and
        // asking the packaged daemon for one says why instead of failing to load a class.
        try (Stream<Path> lib = Files.list(root.resolve("/usr/share/enclave-kms/lib"))) {
            List<String> jars = lib.map(p -> p.getFileName().toString()).toList();
            assertTrue(jars.stream().anyMatch(j -> j.startsWith("picocli-")), jars.toString());
            assertFalse(jars.stream().anyMatch(j -> j.startsWith("jcardsim-") || j.startsWith("enclave-kms-applet-")),
                    jars.toString());
            // Every bundled library has its own stanza in the copyright file.
            String copyright = Files.readString(root.resolve("/usr/share/doc/enclave-kms/copyright"));
            List<String> patterns = copyright.lines()
                    .flatMap(l -> java.util.Arrays.stream(l.replaceFirst("^Files:", "").trim().split("\\s+")))
                    .filter(w -> w.startsWith("usr/share/enclave-kms/lib/"))
                    .map(w -> w.substring("usr/share/enclave-kms/lib/".length()))
                    .filter(w -> !w.equals("*"))
                    .toList();
            for (String jar : jars) {
                assertTrue(patterns.stream().anyMatch(g -> jar.matches(g.replace(".", "\\.").replace("*", ".*"))),
                        jar + " has no Files: stanza in the package's copyright file " + patterns);
            }
        }
        Path devState = root.resolve("/tmp/dev-card");
        Commands.Result devCard = Commands.run(List.of(root.resolve("/usr/sbin/enclave-kmsd").toString(), "--dev",
                "--card", "--state-dir", devState.toString()), env, null);
        assertEquals(1, devCard.exit(), devCard.stdout() + devCard.stderr());
        assertTrue(devCard.stderr().contains("this installation does not include"), devCard.stderr());
        assertFalse(Files.exists(devState.resolve("card-pin")), "nothing written before the refusal");
        Commands.Result help = Commands.run(List.of(root.resolve("/usr/bin/kmsctl").toString(), "--help"), env, null);
        assertEquals(0, help.exit(), help.stderr());
        assertTrue(help.stdout().contains("provision"), help.stdout());
        Commands.Result provisionHelp = Commands.run(root.resolve("/usr/sbin/enclave-kms-provision").toString(), "--help");
        assertEquals(0, provisionHelp.exit(), provisionHelp.stderr());

        // Removal keeps the operator's configuration and the state (keys live in the HSM; the
        // registry names them).
        Commands.Result remove = Commands.run("dpkg", "--root=" + root.path(), "--force-script-chrootless", "-r",
                "enclave-kms");
        assertEquals(0, remove.exit(), remove.stdout() + remove.stderr());
        assertFalse(Files.exists(root.resolve("/usr/sbin/enclave-kmsd")));
        assertTrue(Files.exists(root.resolve("/etc/enclave-kms/enclave-kms.conf")));
        assertTrue(Files.isDirectory(root.resolve("/var/lib/enclave-kms")));
    }

    private static Path daemonJar() throws Exception {
        Path target = Commands.repoFile("hsm-daemon/target");
        try (Stream<Path> s = Files.list(target)) {
            List<Path> jars = new ArrayList<>(s.filter(p -> p.getFileName().toString()
                    .matches("enclave-kmsd-[^-]+(-SNAPSHOT)?\\.jar")).toList());
            assertEquals(1, jars.size(), jars.toString());
            return jars.getFirst();
        }
    }
}
