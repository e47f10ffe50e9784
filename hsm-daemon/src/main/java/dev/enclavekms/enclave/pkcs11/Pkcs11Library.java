package dev.enclavekms.enclave.pkcs11;

import org.xipki.pkcs11.wrapper.Logger;
import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.PKCS11Module;
import org.xipki.pkcs11.wrapper.Slot;
import org.xipki.pkcs11.wrapper.StaticLogger;
import org.xipki.pkcs11.wrapper.TokenInfo;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One loaded and initialised PKCS#11 library, shared by everything in the process that uses
 * that library.
 *
 * <p>Why shared and process-lifetime: C_Initialize may be called once per process per
 * library (a second call gives CKR_CRYPTOKI_ALREADY_INITIALIZED; the dynamic loader hands
 * back the same library however often it is opened), and C_Finalize would invalidate the
 * sessions of every other user of the library in the process — several enclaves on
 * different tokens of one library, the provisioner, tests. SoftHSM also reads SOFTHSM2_CONF
 * only in C_Initialize, so there is exactly one SoftHSM configuration per process. The
 * library is therefore initialised on first use and never finalised; the OS unloads it at
 * exit.
 *
 * <p>The wrapper initialises with CKF_OS_LOCKING_OK, so the library uses its own mutexes
 * and may be called from many threads (passing no locking flags makes SoftHSM drop them).
 *
 * <p>Package-private: nothing outside the enclave package may hold a module, a session or
 * an object handle.
 */
final class Pkcs11Library {

    private static final System.Logger LOG = System.getLogger(Pkcs11Library.class.getName());
    private static final Map<Path, Pkcs11Library> LOADED = new HashMap<>();

    static {
        // Before the first PKCS11Module exists: without a logger the wrapper prints its
        // licence banner and a line per session to stdout.
        StaticLogger.setLogger(new WrapperLog());
    }

    private final Path path;
    private final PKCS11Module module;
    /** The hot functions through FFM, or why not; read once, on first use (guarded by this). */
    private CryptokiFunctions ffm;
    private String ffmUnavailable;

    private Pkcs11Library(Path path, PKCS11Module module) {
        this.path = path;
        this.module = module;
    }

    /**
     * The initialised library at {@code library}, loading it on first use. Paths that name
     * the same file (symbolic links) share one instance.
     */
    static Pkcs11Library load(Path library) throws IOException, PKCS11Exception {
        Path real;
        try {
            real = library.toRealPath();
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(library.toString(), null, "PKCS#11 library not found");
        }
        synchronized (LOADED) {
            Pkcs11Library loaded = LOADED.get(real);
            if (loaded != null) {
                return loaded;
            }
            if (!Files.isRegularFile(real)) {
                throw new IOException("PKCS#11 library " + library + " is not a regular file");
            }
            PKCS11Module module = PKCS11Module.getInstance(real.toString());
            try {
                module.initialize();
            } catch (PKCS11Exception e) {
                if (e.getErrorCode() != PKCS11Constants.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
                    throw e;
                }
                // Someone else in the process (e.g. SunPKCS11) initialised it first. It works,
                // but we do not know which locking flags they chose.
                LOG.log(System.Logger.Level.WARNING, "PKCS#11 library {0} was already initialised by another"
                        + " component of this process; using it as it is", real);
            }
            Pkcs11Library lib = new Pkcs11Library(real, module);
            LOADED.put(real, lib);
            LOG.log(System.Logger.Level.DEBUG, "PKCS#11 library {0} initialised", real);
            return lib;
        }
    }

    Path path() {
        return path;
    }

    PKCS11Module module() {
        return module;
    }

    /**
     * The hot functions of this library through FFM, from its function list, made on first
     * use; null when FFM cannot be used with it here, logged once with the reason.
     */
    synchronized CryptokiFunctions ffm() {
        if (ffm == null && ffmUnavailable == null) {
            try {
                ffm = CryptokiFunctions.load(path);
            } catch (CryptokiFunctions.Unavailable e) {
                ffmUnavailable = e.getMessage();
                LOG.log(System.Logger.Level.WARNING, "PKCS#11 library {0}: the FFM binding cannot be used ({1});"
                        + " the hot calls go through the wrapper", path, ffmUnavailable);
            }
        }
        return ffm;
    }

    /** Slots that hold a token, with the token's description, in the library's order. */
    List<SlotToken> tokens() throws PKCS11Exception {
        List<SlotToken> out = new ArrayList<>();
        for (Slot slot : module.getSlotList(true)) {
            TokenInfo info;
            try {
                info = slot.getToken().getTokenInfo();
            } catch (PKCS11Exception e) {
                // A token that vanished or cannot describe itself is not one we can use.
                if (e.getErrorCode() == PKCS11Constants.CKR_TOKEN_NOT_PRESENT
                        || e.getErrorCode() == PKCS11Constants.CKR_TOKEN_NOT_RECOGNIZED
                        || e.getErrorCode() == PKCS11Constants.CKR_SLOT_ID_INVALID) {
                    continue;
                }
                throw e;
            }
            out.add(new SlotToken(slot, info));
        }
        return out;
    }

    /**
     * The initialised tokens whose label (or serial, when {@code label} is null) matches.
     * Labels are compared without the blank padding PKCS#11 stores them with.
     */
    List<SlotToken> find(String label, String serial) throws PKCS11Exception {
        List<SlotToken> matches = new ArrayList<>();
        for (SlotToken t : tokens()) {
            if (!t.info().isTokenInitialized()) {
                continue;
            }
            boolean match = label != null
                    ? label.strip().equals(t.info().getLabel().strip())
                    : serial.strip().equals(t.info().getSerialNumber().strip());
            if (match) {
                matches.add(t);
            }
        }
        return matches;
    }

    /** A slot and what its token said about itself when it was listed. */
    record SlotToken(Slot slot, TokenInfo info) {
    }

    /**
     * Routes the wrapper's own log lines to System.Logger. Its info lines (one per session
     * opened) go to DEBUG. Its debug and trace output stays off: it prints attribute
     * templates and values, and nothing here should depend on the wrapper knowing which of
     * those are secret.
     */
    private static final class WrapperLog implements Logger {
        private static final System.Logger WRAPPER = System.getLogger("org.xipki.pkcs11.wrapper");

        @Override
        public void info(String format, Object... arguments) {
            log(System.Logger.Level.DEBUG, format, arguments);
        }

        @Override
        public void warn(String format, Object... arguments) {
            log(System.Logger.Level.WARNING, format, arguments);
        }

        @Override
        public void error(String format, Object... arguments) {
            log(System.Logger.Level.ERROR, format, arguments);
        }

        @Override
        public void debug(String format, Object... arguments) {
        }

        @Override
        public void trace(String format, Object... arguments) {
        }

        @Override
        public boolean isDebugEnabled() {
            return false;
        }

        @Override
        public boolean isInfoEnabled() {
            return WRAPPER.isLoggable(System.Logger.Level.DEBUG);
        }

        @Override
        public boolean isWarnEnabled() {
            return true;
        }

        @Override
        public boolean isTraceEnabled() {
            return false;
        }

        private static void log(System.Logger.Level level, String format, Object... arguments) {
            if (!WRAPPER.isLoggable(level)) {
                return;
            }
            // The wrapper uses SLF4J-style "{}" placeholders.
            StringBuilder sb = new StringBuilder(format.length() + 32);
            int arg = 0;
            int from = 0;
            for (int at = format.indexOf("{}"); at >= 0; at = format.indexOf("{}", from)) {
                sb.append(format, from, at).append(arg < arguments.length ? arguments[arg++] : "{}");
                from = at + 2;
            }
            sb.append(format, from, format.length());
            WRAPPER.log(level, sb.toString());
        }
    }
}
