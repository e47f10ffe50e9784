package dev.enclavekms.server;

import dev.enclavekms.enclave.pkcs11.Pkcs11Provisioner;
import dev.enclavekms.json.Json;
import dev.enclavekms.server.varlink.ServerLimits;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The embedded default ({@code enclave-kmsd --dev}): everything under one state
 * directory, created on first start and reused afterwards —
 * a SoftHSM configuration and token directory, random SO and user PINs in 0600 files,
 * the token itself, the registry and the socket. {@code dev.json} names them so that
 * scripts and tests can find them.
 */
public record DevEnvironment(Path stateDir, Path softhsmConf, Path tokenDir, Path soPinFile, Path pinFile,
                             String tokenLabel, Path module, Path registry, Path socket, Path policy) {
    private static final System.Logger LOG = System.getLogger(DevEnvironment.class.getName());
    public static final String TOKEN_LABEL = "enclave-kms-dev";

    public static DevEnvironment prepare(Path dir) throws Exception {
        Path stateDir = dir.toAbsolutePath().normalize();
        Path conf = stateDir.resolve("softhsm2.conf");
        String env = System.getenv("SOFTHSM2_CONF");
        if (env == null || !Path.of(env).toAbsolutePath().normalize().equals(conf)) {
            throw new IOException("--dev needs SOFTHSM2_CONF=" + conf + " in the environment before the JVM starts"
                    + " (bin/enclave-kmsd sets it)");
        }
        Path module = findSoftHsmModule().orElseThrow(() -> new IOException(
                "SoftHSM2 is not installed (libsofthsm2.so not found); install it with: apt-get install softhsm2"));
        DevEnvironment e = new DevEnvironment(stateDir, conf, stateDir.resolve("tokens"),
                stateDir.resolve("so-pin"), stateDir.resolve("user-pin"), TOKEN_LABEL, module,
                stateDir.resolve("registry.db"), stateDir.resolve("kms.sock"), stateDir.resolve("policy.yaml"));
        boolean first = !Files.exists(stateDir.resolve("dev.json"));
        Files.createDirectories(stateDir);
        Files.setPosixFilePermissions(stateDir, PosixFilePermissions.fromString("rwx------"));
        Files.createDirectories(e.tokenDir);
        Pkcs11Provisioner.writeSoftHsmConfig(conf, e.tokenDir);
        writePinIfAbsent(e.soPinFile);
        writePinIfAbsent(e.pinFile);
        writePolicyIfAbsent(e.policy);
        Pkcs11Provisioner.Result r = Pkcs11Provisioner.provision(module, TOKEN_LABEL, e.soPinFile, e.pinFile);
        if (r.created()) {
            LOG.log(System.Logger.Level.INFO, "created SoftHSM token '" + TOKEN_LABEL + "' in " + e.tokenDir);
        }
        e.writeDescriptor();
        if (first) {
            LOG.log(System.Logger.Level.INFO, "dev state directory ready: " + stateDir);
        }
        return e;
    }

    /** Where Debian, Ubuntu and Fedora put SoftHSM's PKCS#11 module. */
    static java.util.Optional<Path> findSoftHsmModule() {
        for (String p : List.of("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib64/pkcs11/libsofthsm2.so",
                "/usr/local/lib/softhsm/libsofthsm2.so")) {
            if (Files.isReadable(Path.of(p))) {
                return java.util.Optional.of(Path.of(p));
            }
        }
        return java.util.Optional.empty();
    }

    private static void writePinIfAbsent(Path file) throws IOException {
        if (Files.exists(file)) {
            return;
        }
        byte[] b = new byte[16];
        new SecureRandom().nextBytes(b);
        Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(file, HexFormat.of().formatHex(b) + "\n", StandardCharsets.US_ASCII);
    }

    /**
     * The dev policy: the built-in rules written out (docs/policy.md), so that a developer
     * can edit it and try {@code kmsctl policy reload}. An edited file is never replaced.
     */
    static void writePolicyIfAbsent(Path file) throws IOException {
        if (Files.exists(file)) {
            return;
        }
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(tmp, dev.enclavekms.policy.Policy.builtInText(Daemon.daemonUser()), StandardCharsets.UTF_8);
        Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    private void writeDescriptor() throws IOException {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("socket", socket.toString());
        d.put("softhsm_conf", softhsmConf.toString());
        d.put("pin_file", pinFile.toString());
        d.put("so_pin_file", soPinFile.toString());
        d.put("token_label", tokenLabel);
        d.put("pkcs11_module", module.toString());
        d.put("registry", registry.toString());
        d.put("policy", policy.toString());
        Path tmp = stateDir.resolve("dev.json.tmp");
        Files.writeString(tmp, Json.write(d) + "\n");
        Files.move(tmp, stateDir.resolve("dev.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    public DaemonConfig config() {
        return new DaemonConfig(module, tokenLabel, pinFile, registry, socket, ServerLimits.DEFAULT,
                DaemonConfig.Lifecycle.DEFAULT, policy, null, DaemonConfig.Audit.beside(registry));
    }

    public void printWelcome(PrintStream out) {
        printWelcome(out, socket, List.of(
                "  (token '" + tokenLabel + "', state in " + stateDir + ", details in " + stateDir.resolve("dev.json") + ")"));
    }

    /** What a dev daemon prints once it serves: where, {@code about} it, and what to try. */
    static void printWelcome(PrintStream out, Path socket, List<String> about) {
        String kmsctl = "bin/kmsctl --socket " + socket;
        out.println("enclave-kms is serving on " + socket);
        about.forEach(out::println);
        for (String line : List.of(
                "",
                "Try, in another terminal:",
                "  " + kmsctl + " key create demo --purpose ENCRYPT",
                "  " + kmsctl + " datakey generate demo --context model=llama-3-8b",
                "  " + kmsctl + " status",
                "",
                "Or: export ENCLAVE_KMS_SOCKET=" + socket + " and drop --socket. Stop with Ctrl-C.")) {
            out.println(line);
        }
        out.flush();
    }
}
