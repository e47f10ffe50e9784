package dev.enclavekms.system;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A host set up the way docs/operations.md says, inside a test directory: a SoftHSM token
 * provisioned by {@code kmsctl provision}, its files handed to the service user, a PIN file
 * only root can read, a state directory and a daemon configuration that takes the PIN as
 * the credential {@code pin}. The test directory is opened for traversal (0711) so that
 * the service user can reach what it owns inside it.
 */
final class ProvisionedHost {
    static final String NOBODY = "65534";

    final Path dir;
    final Path softhsmConf;
    final Path pinFile;
    final Path state;
    final Path socket;
    final Path config;
    final String userPin;

    private ProvisionedHost(Path dir, Path softhsmConf, Path pinFile, Path state, Path socket, Path config,
                            String userPin) {
        this.dir = dir;
        this.softhsmConf = softhsmConf;
        this.pinFile = pinFile;
        this.state = state;
        this.socket = socket;
        this.config = config;
        this.userPin = userPin;
    }

    static ProvisionedHost create(Path dir, String tokenLabel, String serviceUid) throws Exception {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        Path tokens = Files.createDirectories(dir.resolve("tokens"));
        Path softhsmConf = Files.writeString(dir.resolve("softhsm2.conf"),
                Files.readString(Commands.repoFile("pkcs11-config/softhsm2.conf.template"))
                        .replace("@TOKEN_DIR@", tokens.toString()));
        Files.setPosixFilePermissions(softhsmConf, PosixFilePermissions.fromString("rw-r--r--"));
        String userPin = "user-pin-" + Long.toHexString(System.nanoTime());
        Path so = secret(dir.resolve("so-pin"), "so-pin-" + Long.toHexString(System.nanoTime()));
        Path pin = secret(dir.resolve("pin"), userPin);
        Commands.run(List.of(Commands.repoFile("bin/kmsctl").toString(), "provision", "--token-label", tokenLabel,
                "--so-pin-file", so.toString(), "--pin-file", pin.toString()),
                Map.of("SOFTHSM2_CONF", softhsmConf.toString()), null).requireSuccess();
        Commands.run("chown", "-R", serviceUid, tokens.toString()).requireSuccess();
        Path state = Files.createDirectory(dir.resolve("state"));
        Commands.run("chown", serviceUid, state.toString()).requireSuccess();
        Path run = Files.createDirectory(dir.resolve("run"));
        Commands.run("chown", serviceUid, run.toString()).requireSuccess();
        Path socket = run.resolve("kms.sock");
        Path config = Files.writeString(dir.resolve("enclave-kms.conf"), String.join("\n",
                "pkcs11.module = /usr/lib/softhsm/libsofthsm2.so",
                "pkcs11.token-label = " + tokenLabel,
                "pkcs11.pin-credential = pin",
                "registry = " + state.resolve("registry.db"),
                "socket = " + socket, ""));
        Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rw-r--r--"));
        return new ProvisionedHost(dir, softhsmConf, pin, state, socket, config, userPin);
    }

    /**
     * The daemon jar and its libraries in the layout the package installs under
     * /usr/share/enclave-kms ({@code enclave-kmsd.jar}, {@code lib/*.jar}), from hsm-daemon/target.
     */
    Path stageLibrary() throws IOException {
        Path lib = Files.createDirectories(dir.resolve("share/lib"));
        Path target = Commands.repoFile("hsm-daemon/target");
        try (Stream<Path> jars = Files.list(target)) {
            Path jar = jars.filter(p -> p.getFileName().toString().matches("enclave-kmsd-[^-]+(-SNAPSHOT)?\\.jar"))
                    .findFirst().orElseThrow(() -> new AssertionError("no daemon jar in " + target));
            Files.copy(jar, lib.getParent().resolve("enclave-kmsd.jar"));
        }
        try (Stream<Path> deps = Files.list(target.resolve("lib"))) {
            for (Path p : deps.toList()) {
                Files.copy(p, lib.resolve(p.getFileName()), StandardCopyOption.COPY_ATTRIBUTES);
            }
        }
        return lib.getParent();
    }

    private static Path secret(Path p, String value) throws IOException {
        Files.createFile(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        return Files.writeString(p, value + "\n");
    }
}
