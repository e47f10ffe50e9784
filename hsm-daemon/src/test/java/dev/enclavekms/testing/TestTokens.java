package dev.enclavekms.testing;

import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.pkcs11.Pkcs11Config;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.enclave.pkcs11.Pkcs11Provisioner;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.stream.Stream;

/**
 * Real SoftHSM tokens for tests: one fresh token per test class, with random PINs in 0600
 * files.
 *
 * <p>SoftHSM reads its configuration from SOFTHSM2_CONF once, when the library is first
 * initialised in the process, so the path comes from the environment (the surefire
 * configuration of every module that uses this fixture sets it, e.g.
 * {@code ${project.build.directory}/softhsm/softhsm2.conf}). The fixture writes that file and
 * a token directory beside it on first use — which must come before anything in the JVM
 * loads the PKCS#11 library, so tests go through this class first.
 *
 * <p>Tokens of earlier runs are deleted on first use when no other JVM is using the same
 * directory (an exclusive lock on {@code .lock} beside the config, held for the life of the
 * JVM), so that the directory does not grow run after run: SoftHSM loads every token at
 * C_Initialize and slows down with many.
 *
 * <p>Thread-safe: every method is synchronized.
 */
public final class TestTokens {

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String PIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

    private static Path conf;
    private static Path pinDir;
    private static FileChannel lockChannel;
    private static FileLock lock;
    private static int counter;

    private TestTokens() {
    }

    /**
     * A provisioned token that belongs to one test class.
     *
     * @param label       its unique label
     * @param config      how to open it ({@link Pkcs11Enclave#open})
     * @param userPinFile the user PIN (0600 file); the PIN itself via {@link #userPin()}
     * @param soPinFile   the security officer PIN (0600 file)
     * @param softHsmConf the SoftHSM configuration this JVM uses (for child processes such as
     *                    pkcs11-tool, which need the same SOFTHSM2_CONF)
     */
    public record TestToken(String label, Pkcs11Config config, Path userPinFile, Path soPinFile, Path softHsmConf) {

        public Pkcs11Enclave open() throws EnclaveException {
            return Pkcs11Enclave.open(config);
        }

        /** The test user PIN. Only test tokens have PINs that may be handled like this. */
        public String userPin() {
            return readPin(userPinFile);
        }

        public String soPin() {
            return readPin(soPinFile);
        }
    }

    /** A new token labelled after {@code name} (made unique), provisioned with random PINs. */
    public static synchronized TestToken fresh(String name) {
        ensureConfigured();
        String label = uniqueLabel(name);
        Path userPin = pinFile(label + ".user");
        Path soPin = pinFile(label + ".so");
        try {
            Pkcs11Provisioner.provision(Pkcs11Config.DEFAULT_LIBRARY, label, soPin, userPin);
        } catch (Pkcs11Provisioner.ProvisioningException e) {
            throw new IllegalStateException("cannot provision test token " + label + ": " + e.getMessage(), e);
        }
        return new TestToken(label, Pkcs11Config.forLabel(label, userPin), userPin, soPin, conf);
    }

    /** A new 0600 file with a random PIN, for tests that provision tokens themselves. */
    public static synchronized Path pinFile(String name) {
        ensureConfigured();
        StringBuilder pin = new StringBuilder(20);
        for (int i = 0; i < 20; i++) {
            pin.append(PIN_ALPHABET.charAt(RANDOM.nextInt(PIN_ALPHABET.length())));
        }
        return writePinFile(name, pin + "\n");
    }

    /** A 0600 file with the given PIN content, for tests of wrong and malformed PINs. */
    public static synchronized Path writePinFile(String name, String content) {
        ensureConfigured();
        Path file = pinDir.resolve(name.replaceAll("[^A-Za-z0-9._-]", "_") + "-" + HexFormat.of().toHexDigits(RANDOM.nextInt()) + ".pin");
        try {
            // Created with its final mode: the PIN is never readable by others, not even briefly.
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.writeString(file, content, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return file;
    }

    /** The SoftHSM configuration file of this JVM, written if absent. */
    public static synchronized Path softHsmConf() {
        ensureConfigured();
        return conf;
    }

    /** A label unique in this JVM and across runs: name, counter, random suffix; at most 32 chars. */
    public static synchronized String uniqueLabel(String name) {
        ensureConfigured();
        String base = name.replaceAll("[^A-Za-z0-9-]", "-");
        String suffix = "-" + (++counter) + "-" + HexFormat.of().toHexDigits((short) RANDOM.nextInt());
        if (base.length() + suffix.length() > 32) {
            base = base.substring(0, 32 - suffix.length());
        }
        return base + suffix;
    }

    private static void ensureConfigured() {
        if (conf != null) {
            return;
        }
        String env = System.getenv("SOFTHSM2_CONF");
        if (env == null || env.isBlank()) {
            // Without it SoftHSM would use /etc/softhsm/softhsm2.conf: the system's tokens.
            throw new IllegalStateException("SOFTHSM2_CONF is not set; run the tests through Maven (surefire sets"
                    + " it to target/softhsm/softhsm2.conf) or set it to a file under target/");
        }
        Path confFile = Path.of(env).toAbsolutePath();
        Path dir = confFile.getParent();
        Path tokens = dir.resolve("tokens");
        try {
            Files.createDirectories(dir);
            lockChannel = FileChannel.open(dir.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            try {
                lock = lockChannel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;
            }
            pinDir = dir.resolve("pins");
            if (lock != null) {
                // Nobody else uses this directory: what is in it is left over from earlier runs.
                if (Files.isDirectory(tokens)) {
                    deleteContents(tokens);
                }
                if (Files.isDirectory(pinDir)) {
                    deleteContents(pinDir);
                }
            }
            if (!Files.exists(confFile) || !Files.isDirectory(tokens)) {
                Pkcs11Provisioner.writeSoftHsmConfig(confFile, tokens);
            }
            Files.createDirectories(pinDir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot set up SoftHSM under " + dir, e);
        }
        conf = confFile;
    }

    private static void deleteContents(Path dir) throws IOException {
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                if (!p.equals(dir)) {
                    Files.delete(p);
                }
            }
        }
    }

    private static String readPin(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
