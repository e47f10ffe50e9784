package dev.enclavekms.enclave.pkcs11;

import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.Slot;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_PIN_EXPIRED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_PIN_INCORRECT;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_PIN_LEN_RANGE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_PIN_LOCKED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_USER_ALREADY_LOGGED_IN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_USER_PIN_NOT_INITIALIZED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKU_SO;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKU_USER;

/**
 * Makes a PKCS#11 token ready for the daemon: initialises a free token with a label and
 * the security officer's PIN, then sets the user PIN. Used by {@code kmsctl provision}, by
 * the daemon's dev mode and by the test fixtures.
 *
 * <p>Idempotent: when a token with the label exists, it only checks that the user PIN opens
 * it and reports it as existing. A token left half-provisioned (initialised, but the user
 * PIN never set, e.g. after a crash) is completed with the SO PIN.
 *
 * <p>PINs come from files only ({@link Pkcs11Pins}); no message contains one.
 */
public final class Pkcs11Provisioner {

    private static final System.Logger LOG = System.getLogger(Pkcs11Provisioner.class.getName());

    /** PKCS#11 token labels are 32 bytes, blank-padded. */
    static final int MAX_LABEL_BYTES = 32;

    private Pkcs11Provisioner() {
    }

    /**
     * What provisioning did.
     *
     * @param slotId      the slot the token is in now (SoftHSM moves a token to a slot derived
     *                    from its serial in later processes; name tokens by label or serial)
     * @param tokenSerial the token's serial number
     * @param created     true when this call initialised the token or completed its
     *                    provisioning; false when it was provisioned already
     */
    public record Result(long slotId, String tokenSerial, boolean created) {
    }

    /** Provisioning failed; the message says why and what to do, and never contains a PIN. */
    public static final class ProvisioningException extends Exception {
        public ProvisioningException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * Provisions the token labelled {@code tokenLabel} in {@code libraryPath}.
     *
     * @param soPinFile   the security officer's PIN; read only when a token must be
     *                    initialised or completed
     * @param userPinFile the user PIN the daemon will log in with
     */
    public static Result provision(Path libraryPath, String tokenLabel, Path soPinFile, Path userPinFile)
            throws ProvisioningException {
        Objects.requireNonNull(libraryPath, "libraryPath");
        Objects.requireNonNull(soPinFile, "soPinFile");
        Objects.requireNonNull(userPinFile, "userPinFile");
        checkLabel(tokenLabel);
        Pkcs11Library library;
        try {
            library = Pkcs11Library.load(libraryPath);
        } catch (IOException e) {
            throw new ProvisioningException("cannot load PKCS#11 library " + libraryPath + ": " + e.getMessage(), e);
        } catch (PKCS11Exception e) {
            throw new ProvisioningException("C_Initialize of " + libraryPath + " failed: " + e.getErrorName(), e);
        }
        char[] userPin = readPin("user", userPinFile);
        try {
            // One provisioning at a time per library in this process: two threads must not both
            // pick the same free slot.
            synchronized (library) {
                return provision(library, tokenLabel, soPinFile, userPinFile, userPin);
            }
        } catch (PKCS11Exception e) {
            throw new ProvisioningException("provisioning token '" + tokenLabel + "' failed: " + e.getErrorName(), e);
        } finally {
            Arrays.fill(userPin, '\0');
        }
    }

    private static Result provision(Pkcs11Library library, String label, Path soPinFile, Path userPinFile,
                                    char[] userPin) throws PKCS11Exception, ProvisioningException {
        List<Pkcs11Library.SlotToken> existing = library.find(label, null);
        if (existing.size() > 1) {
            throw new ProvisioningException(existing.size() + " tokens are labelled '" + label
                    + "'; remove the extra ones or use a different label", null);
        }
        if (existing.size() == 1) {
            Slot slot = existing.getFirst().slot();
            String serial = existing.getFirst().info().getSerialNumber().strip();
            if (checkUserPin(slot, label, userPinFile, userPin)) {
                return new Result(slot.getSlotID(), serial, false);
            }
            // Initialised, but no user PIN: an earlier run stopped half-way. Finish it.
            initUserPin(slot, label, soPinFile, userPin);
            LOG.log(System.Logger.Level.INFO, "completed provisioning of token ''{0}'' (serial {1})", label, serial);
            return new Result(slot.getSlotID(), serial, true);
        }

        Slot free = null;
        for (Pkcs11Library.SlotToken t : library.tokens()) {
            if (!t.info().isTokenInitialized()) {
                free = t.slot();
                break;
            }
        }
        if (free == null) {
            throw new ProvisioningException("no token labelled '" + label + "' and no uninitialised token in "
                    + library.path() + " to initialise", null);
        }
        char[] soPin = readPin("security officer", soPinFile);
        try {
            // C_InitToken takes exactly 32 bytes, blank-padded; the JNI layer passes what it gets.
            char[] padded = String.format("%-" + MAX_LABEL_BYTES + "s", label).toCharArray();
            try {
                library.module().getPKCS11Module().C_InitToken(free.getSlotID(), soPin, padded, true);
            } catch (iaik.pkcs.pkcs11.wrapper.PKCS11Exception e) {
                throw library.module().convertException(e);
            }
        } finally {
            Arrays.fill(soPin, '\0');
        }
        // SoftHSM may move a freshly initialised token to another slot: look it up again.
        List<Pkcs11Library.SlotToken> made = library.find(label, null);
        if (made.size() != 1) {
            throw new ProvisioningException("token '" + label + "' was initialised but cannot be found again", null);
        }
        Slot slot = made.getFirst().slot();
        String serial = made.getFirst().info().getSerialNumber().strip();
        initUserPin(slot, label, soPinFile, userPin);
        if (!checkUserPin(slot, label, userPinFile, userPin)) {
            throw new ProvisioningException("token '" + label + "' still has no user PIN after C_InitPIN", null);
        }
        LOG.log(System.Logger.Level.INFO, "provisioned token ''{0}'' (serial {1})", label, serial);
        return new Result(slot.getSlotID(), serial, true);
    }

    /**
     * Logs in as user to check the PIN. Returns false when the token has no user PIN yet.
     * CKR_USER_ALREADY_LOGGED_IN counts as success: this process is logged in on the token
     * already (an open enclave), and PKCS#11 offers no way to check a PIN then.
     */
    private static boolean checkUserPin(Slot slot, String label, Path userPinFile, char[] userPin)
            throws PKCS11Exception, ProvisioningException {
        Session session = slot.getToken().openSession(false);
        try {
            try {
                session.login(CKU_USER, userPin);
            } catch (PKCS11Exception e) {
                long code = e.getErrorCode();
                if (code == CKR_USER_ALREADY_LOGGED_IN) {
                    LOG.log(System.Logger.Level.INFO, "this process is logged in to token ''{0}'' already;"
                            + " the user PIN was not checked again", label);
                    return true;
                }
                if (code == CKR_USER_PIN_NOT_INITIALIZED) {
                    return false;
                }
                if (code == CKR_PIN_INCORRECT) {
                    throw new ProvisioningException("token '" + label + "' is already provisioned, but the user PIN"
                            + " in " + userPinFile + " does not open it (CKR_PIN_INCORRECT)", e);
                }
                if (code == CKR_PIN_LOCKED) {
                    throw new ProvisioningException("token '" + label + "' is already provisioned, but its user PIN"
                            + " is locked (CKR_PIN_LOCKED); the security officer must reset it", e);
                }
                if (code == CKR_PIN_EXPIRED) {
                    throw new ProvisioningException("token '" + label + "' is already provisioned, but its user PIN"
                            + " has expired (CKR_PIN_EXPIRED)", e);
                }
                throw e;
            }
            // Our own login, so nobody else in this process was logged in: logging out is safe.
            session.logout();
            return true;
        } finally {
            closeQuietly(session);
        }
    }

    private static void initUserPin(Slot slot, String label, Path soPinFile, char[] userPin)
            throws PKCS11Exception, ProvisioningException {
        char[] soPin = readPin("security officer", soPinFile);
        Session session = slot.getToken().openSession(true);
        try {
            try {
                session.login(CKU_SO, soPin);
            } catch (PKCS11Exception e) {
                if (e.getErrorCode() == CKR_PIN_INCORRECT) {
                    throw new ProvisioningException("the security officer PIN in " + soPinFile
                            + " does not open token '" + label + "' (CKR_PIN_INCORRECT)", e);
                }
                throw e;
            }
            try {
                session.initPIN(userPin);
            } catch (PKCS11Exception e) {
                if (e.getErrorCode() == CKR_PIN_LEN_RANGE) {
                    throw new ProvisioningException("the token refuses the user PIN's length (CKR_PIN_LEN_RANGE)", e);
                }
                throw e;
            } finally {
                session.logout();
            }
        } finally {
            closeQuietly(session);
            Arrays.fill(soPin, '\0');
        }
    }

    /**
     * Writes a SoftHSM 2 configuration that keeps its tokens in {@code tokenDir} (created,
     * mode 0700: it holds the token files) and logs errors only. SoftHSM reads the file named
     * by SOFTHSM2_CONF once, in C_Initialize: one configuration per process, set in the
     * environment before the library is first used.
     */
    public static void writeSoftHsmConfig(Path confFile, Path tokenDir) throws IOException {
        Path dir = tokenDir.toAbsolutePath();
        if (!Files.isDirectory(dir)) {
            Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        }
        // pkcs11-config/softhsm2.conf.template, packaged into the jar by the build.
        String conf;
        try (var in = Pkcs11Provisioner.class.getResourceAsStream("/pkcs11-config/softhsm2.conf.template")) {
            if (in == null) {
                throw new IOException("pkcs11-config/softhsm2.conf.template is missing from the class path");
            }
            conf = new String(in.readAllBytes(), StandardCharsets.UTF_8).replace("@TOKEN_DIR@", dir.toString());
        }
        Path target = confFile.toAbsolutePath();
        Files.createDirectories(target.getParent());
        // Written whole, then renamed: a library starting up never reads half a file.
        Path tmp = Files.createTempFile(target.getParent(), ".softhsm2-", ".conf");
        try {
            Files.writeString(tmp, conf, StandardCharsets.UTF_8);
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    static void checkLabel(String label) {
        Objects.requireNonNull(label, "tokenLabel");
        if (label.isEmpty() || label.length() > MAX_LABEL_BYTES || !label.equals(label.strip())) {
            throw new IllegalArgumentException("a token label has 1.." + MAX_LABEL_BYTES
                    + " characters and no leading or trailing blanks");
        }
        for (int i = 0; i < label.length(); i++) {
            char c = label.charAt(i);
            if (c < 0x20 || c > 0x7e) {
                throw new IllegalArgumentException("a token label is printable ASCII only");
            }
        }
    }

    private static char[] readPin(String whose, Path file) throws ProvisioningException {
        try {
            return Pkcs11Pins.read(file);
        } catch (IOException e) {
            throw new ProvisioningException("cannot use the " + whose + " PIN file: " + e.getMessage(), e);
        }
    }

    private static void closeQuietly(Session s) {
        try {
            s.closeSession();
        } catch (PKCS11Exception e) {
            LOG.log(System.Logger.Level.DEBUG, "closing a PKCS#11 session failed: {0}", e.getErrorName());
        }
    }
}
