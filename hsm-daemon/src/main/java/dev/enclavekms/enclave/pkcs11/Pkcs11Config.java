package dev.enclavekms.enclave.pkcs11;

import java.nio.file.Path;
import java.util.Objects;

/**
 * Where the PKCS#11 token is and how to log in to it. Not secret: the PIN itself is only
 * ever read from {@link #userPinFile()} (see {@link Pkcs11Pins}), never carried here.
 *
 * @param library         the vendor's PKCS#11 module (a shared library)
 * @param tokenLabel      the token's CKA label, or null when the token is chosen by serial
 * @param tokenSerial     the token's serial number, or null when chosen by label
 * @param userPinFile     file holding the user PIN (mode 0600 or 0400, owned by this user)
 * @param sessionPoolSize how many logged-in sessions the enclave keeps at most
 * @param binding         how the hot calls reach the module ({@link Pkcs11Binding#FFM} by default)
 */
public record Pkcs11Config(Path library, String tokenLabel, String tokenSerial, Path userPinFile,
                           int sessionPoolSize, Pkcs11Binding binding) {

    /** Debian's SoftHSM 2 module: dev mode and tests. Production names its vendor module. */
    public static final Path DEFAULT_LIBRARY = Path.of("/usr/lib/softhsm/libsofthsm2.so");
    public static final int DEFAULT_SESSION_POOL_SIZE = 4;
    /** More sessions than this buy nothing: tokens serialise their work internally. */
    public static final int MAX_SESSION_POOL_SIZE = 64;
    public static final Pkcs11Binding DEFAULT_BINDING = Pkcs11Binding.FFM;

    public Pkcs11Config {
        Objects.requireNonNull(library, "library");
        Objects.requireNonNull(userPinFile, "userPinFile");
        Objects.requireNonNull(binding, "binding");
        boolean byLabel = tokenLabel != null && !tokenLabel.isBlank();
        boolean bySerial = tokenSerial != null && !tokenSerial.isBlank();
        if (byLabel == bySerial) {
            throw new IllegalArgumentException("name the token by exactly one of label or serial");
        }
        if (sessionPoolSize < 1 || sessionPoolSize > MAX_SESSION_POOL_SIZE) {
            throw new IllegalArgumentException("session pool size must be 1.." + MAX_SESSION_POOL_SIZE);
        }
        tokenLabel = byLabel ? tokenLabel : null;
        tokenSerial = bySerial ? tokenSerial : null;
    }

    /** With the default binding. */
    public Pkcs11Config(Path library, String tokenLabel, String tokenSerial, Path userPinFile, int sessionPoolSize) {
        this(library, tokenLabel, tokenSerial, userPinFile, sessionPoolSize, DEFAULT_BINDING);
    }

    /** The token with this label in the default library, default pool size. */
    public static Pkcs11Config forLabel(String tokenLabel, Path userPinFile) {
        return new Pkcs11Config(DEFAULT_LIBRARY, tokenLabel, null, userPinFile, DEFAULT_SESSION_POOL_SIZE);
    }

    /** The token with this serial number in the default library, default pool size. */
    public static Pkcs11Config forSerial(String tokenSerial, Path userPinFile) {
        return new Pkcs11Config(DEFAULT_LIBRARY, null, tokenSerial, userPinFile, DEFAULT_SESSION_POOL_SIZE);
    }

    public Pkcs11Config withLibrary(Path newLibrary) {
        return new Pkcs11Config(newLibrary, tokenLabel, tokenSerial, userPinFile, sessionPoolSize, binding);
    }

    public Pkcs11Config withSessionPoolSize(int size) {
        return new Pkcs11Config(library, tokenLabel, tokenSerial, userPinFile, size, binding);
    }

    public Pkcs11Config withBinding(Pkcs11Binding newBinding) {
        return new Pkcs11Config(library, tokenLabel, tokenSerial, userPinFile, sessionPoolSize, newBinding);
    }

    /** "label 'x'" or "serial 1234", for messages. */
    public String tokenDescription() {
        return tokenLabel != null ? "label '" + tokenLabel + "'" : "serial " + tokenSerial;
    }
}
