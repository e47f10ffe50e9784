package dev.enclavekms.system;

import dev.enclavekms.server.DaemonConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The systemd units, sysusers.d and tmpfiles.d files in systemd/, checked by systemd's
 * own tools (no PID 1 needed): {@code systemd-analyze verify} clean, {@code
 * systemd-analyze security --offline=true} at most 1.0, sysusers and tmpfiles applied to
 * a throw-away root. A host without these tools fails here, naming the package.
 */
class SystemdUnitsIT {
    /** Tenths: systemd-analyze's --threshold=10 is an exposure of 1.0. */
    static final int MAX_EXPOSURE_TENTHS = 10;
    static final List<String> SERVICES = List.of("enclave-kms.service", "enclave-kms-jsvc.service");
    private static final Pattern EXPOSURE = Pattern.compile("Overall exposure level for (\\S+): (\\d+\\.\\d)");

    @TempDir
    Path dir;

    /** The source tree's files, installed where the package puts them. */
    static HostRoot installFromSources(Path root) throws IOException {
        HostRoot r = HostRoot.create(root)
                .install("systemd/enclave-kms.socket", "/usr/lib/systemd/system/enclave-kms.socket", false)
                .install("systemd/enclave-kms.sysusers", "/usr/lib/sysusers.d/enclave-kms.conf", false)
                .install("systemd/enclave-kms.tmpfiles", "/usr/lib/tmpfiles.d/enclave-kms.conf", false)
                .install("systemd/enclave-kms.conf", "/etc/enclave-kms/enclave-kms.conf", false)
                .install("systemd/enclave-kmsd", "/usr/sbin/enclave-kmsd", true);
        for (String s : SERVICES) {
            if (Files.exists(Commands.repoFile("systemd/" + s))) {
                r.install("systemd/" + s, "/usr/lib/systemd/system/" + s, false);
            }
        }
        if (Files.exists(Commands.repoFile("systemd/enclave-kms-jsvc"))) {
            r.install("systemd/enclave-kms-jsvc", "/usr/sbin/enclave-kms-jsvc", true);
        }
        return r;
    }

    /** verify: exit 0 and not a word of output (unknown keys are only warnings, exit 0). */
    static void assertVerifyClean(HostRoot root) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("systemd-analyze", "verify", "--man=no",
                "--root=" + root.path()));
        cmd.addAll(root.ourUnits());
        Commands.Result r = HostRoot.systemdTool(cmd.toArray(String[]::new));
        assertEquals(0, r.exit(), r.stdout() + r.stderr());
        assertEquals("", (r.stdout() + r.stderr()).strip(), "systemd-analyze verify is not clean");
    }

    static double assertExposureAtMostOne(Path unitFile) throws Exception {
        Commands.Result r = HostRoot.systemdTool("systemd-analyze", "security", "--offline=true",
                "--threshold=" + MAX_EXPOSURE_TENTHS, "--no-pager", unitFile.toString());
        String out = r.stdout() + r.stderr();
        Matcher m = EXPOSURE.matcher(out);
        assertTrue(m.find(), "no exposure level in:\n" + out);
        double exposure = Double.parseDouble(m.group(2));
        assertEquals(0, r.exit(), unitFile.getFileName() + " is rated " + exposure + ":\n" + out);
        assertTrue(exposure <= 1.0, unitFile.getFileName() + " is rated " + exposure);
        return exposure;
    }

    @Test
    void units_systemdAnalyzeVerify_isClean() throws Exception {
        HostRoot root = installFromSources(dir.resolve("root"));
        assertTrue(root.ourUnits().containsAll(List.of("enclave-kms.service", "enclave-kms.socket")),
                root.ourUnits().toString());
        assertVerifyClean(root);
    }

    @Test
    void services_securityExposure_isAtMostOne() throws Exception {
        for (String s : SERVICES) {
            Path unit = Commands.repoFile("systemd/" + s);
            if (s.equals("enclave-kms.service") || Files.exists(unit)) {
                assertExposureAtMostOne(unit);
            }
        }
    }

    @Test
    void verify_unknownSettingOrMissingExecutable_isReported() throws Exception {
        // The check above would be worthless if these passed.
        HostRoot root = installFromSources(dir.resolve("broken"));
        Path unit = root.resolve("/usr/lib/systemd/system/enclave-kms.service");
        Files.writeString(unit, Files.readString(unit).replace("UMask=0077", "UMask=0077\nProtectSytem=strict"));
        Files.delete(root.resolve("/usr/sbin/enclave-kmsd"));
        List<String> cmd = new ArrayList<>(List.of("systemd-analyze", "verify", "--man=no", "--root=" + root.path()));
        cmd.addAll(root.ourUnits());
        Commands.Result r = HostRoot.systemdTool(cmd.toArray(String[]::new));
        String out = r.stdout() + r.stderr();
        assertTrue(out.contains("Unknown key 'ProtectSytem'"), out);
        assertTrue(out.contains("/usr/sbin/enclave-kmsd is not executable"), out);
    }

    @Test
    void service_socketActivationNotifyAndCredential_matchTheDaemonAndItsConfig() throws Exception {
        String service = Files.readString(Commands.repoFile("systemd/enclave-kms.service"));
        String socket = Files.readString(Commands.repoFile("systemd/enclave-kms.socket"));
        Properties conf = new Properties();
        try (var r = Files.newBufferedReader(Commands.repoFile("systemd/enclave-kms.conf"))) {
            conf.load(r);
        }
        assertTrue(service.contains("\nType=notify\n"));
        assertTrue(service.contains("\nStandardInput=socket\n"));
        assertTrue(service.contains("\nStandardOutput=journal\n"), "stdout would inherit the listening socket");
        assertTrue(service.lines().anyMatch(l -> l.startsWith("ExecStart=/usr/sbin/enclave-kmsd ")
                && l.contains(" --socket-activation") && l.contains("--config /etc/enclave-kms/enclave-kms.conf")));
        assertTrue(socket.contains("\nAccept=no\n"));
        String listen = socket.lines().filter(l -> l.startsWith("ListenStream=")).findFirst().orElseThrow()
                .substring("ListenStream=".length());
        assertEquals(listen, conf.getProperty("socket").trim(), "clients use the configured path");
        assertEquals(DaemonConfig.DEFAULT_SOCKET.toString(), listen);
        String credential = conf.getProperty("pkcs11.pin-credential").trim();
        assertTrue(service.contains("\nLoadCredential=" + credential + ":/etc/enclave-kms/pin\n"));
        assertFalse(service.lines().anyMatch(l -> l.startsWith("MemoryDenyWriteExecute=")),
                "the JIT needs writable-then-executable memory");
        assertTrue(service.contains("\nLimitCORE=0\n"));
        assertTrue(service.contains("\nCapabilityBoundingSet=\n"));
        assertTrue(service.contains("\nRestrictAddressFamilies=AF_UNIX\n"));
        assertTrue(service.contains("\nPrivateNetwork=yes\n"));
        int allow = service.indexOf("\nSystemCallFilter=@system-service\n");
        int deny = service.indexOf("\nSystemCallFilter=~");
        assertTrue(allow >= 0 && deny > allow, "the allow-list filter must come before any deny list");
        // The sample configuration parses (every key known) and asks for the credential, which
        // only systemd (or the jsvc launcher) provides.
        java.io.IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                () -> DaemonConfig.load(Commands.repoFile("systemd/enclave-kms.conf")));
        assertTrue(e.getMessage().contains("needs $CREDENTIALS_DIRECTORY"), e.getMessage());
    }

    @Test
    void sysusersAndTmpfiles_appliedToARoot_createTheUsersGroupsAndDirectories() throws Exception {
        HostRoot root = installFromSources(dir.resolve("root"));
        Commands.Result u = HostRoot.systemdTool("systemd-sysusers", "--root=" + root.path(), "enclave-kms.conf");
        assertEquals(0, u.exit(), u.stderr());
        Commands.Result t = HostRoot.systemdTool("systemd-tmpfiles", "--root=" + root.path(), "--create",
                "enclave-kms.conf");
        assertEquals(0, t.exit(), t.stderr());
        assertHostLayout(root);
    }

    /** Users, groups and directories as the units expect them. */
    static void assertHostLayout(HostRoot root) throws IOException {
        List<String> passwd = Files.readAllLines(root.resolve("/etc/passwd"));
        List<String> group = Files.readAllLines(root.resolve("/etc/group"));
        String user = passwd.stream().filter(l -> l.startsWith("enclave-kms:")).findFirst().orElseThrow();
        assertTrue(user.endsWith(":/var/lib/enclave-kms:/usr/sbin/nologin"), user);
        int uid = Integer.parseInt(user.split(":")[2]);
        assertTrue(uid < 1000, "a system user: " + user);
        assertTrue(group.stream().anyMatch(l -> l.startsWith("enclave-kms-clients:")), group.toString());
        assertTrue(group.stream().anyMatch(l -> l.startsWith("softhsm:") && l.endsWith(":enclave-kms")), group.toString());
        assertDir(root.resolve("/var/lib/enclave-kms"), "rwx------", uid);
        assertDir(root.resolve("/var/log/enclave-kms"), "rwxr-x---", uid);
        assertDir(root.resolve("/run/enclave-kms"), "rwxr-xr-x", uid);
        assertDir(root.resolve("/etc/enclave-kms"), "rwxr-x---", 0);
    }

    private static void assertDir(Path p, String mode, int uid) throws IOException {
        assertTrue(Files.isDirectory(p), p + " missing");
        assertEquals(mode, PosixFilePermissions.toString(Files.getPosixFilePermissions(p)), p.toString());
        assertEquals(uid, (int) Files.getAttribute(p, "unix:uid"), p.toString());
    }
}
