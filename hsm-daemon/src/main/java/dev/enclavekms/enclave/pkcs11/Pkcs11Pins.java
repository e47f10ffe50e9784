package dev.enclavekms.enclave.pkcs11;

import com.sun.security.auth.module.UnixSystem;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Set;

/**
 * Reads a PIN from a file, the only way a PIN enters the daemon: never argv, never the
 * environment (both are visible to other users through /proc). systemd credentials
 * (LoadCredential=) arrive as exactly such files.
 *
 * <p>The file must be a regular file (not a symbolic link), owned by the user running this
 * process, with no permission for group or others: mode 0600 or 0400. Anything else is
 * refused before a byte is read, because a PIN that others could have read is no longer a
 * secret. One trailing newline (LF or CRLF), as editors and {@code echo} add, is stripped.
 * No message ever contains the PIN.
 */
public final class Pkcs11Pins {

    /** PKCS#11 PINs are short; a bigger file is not a PIN file. */
    static final int MAX_PIN_BYTES = 256;

    private static final Set<PosixFilePermission> ALLOWED =
            EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);

    private Pkcs11Pins() {
    }

    /** The PIN file is unsafe or malformed; the message says why and how to fix it. */
    public static final class RefusedException extends IOException {
        RefusedException(String message) {
            super(message);
        }
    }

    /**
     * Returns the PIN in {@code file}. The caller owns the array and should
     * {@code Arrays.fill(pin, '\0')} it when done.
     *
     * @throws RefusedException when the file is not a safe PIN file
     * @throws IOException when it cannot be read
     */
    public static char[] read(Path file) throws IOException {
        checkSafe(file);
        byte[] bytes;
        // NOFOLLOW_LINKS again on open: the check above and the read below must see the same
        // kind of file (a swap to a symlink in between fails here).
        try (InputStream in = Files.newInputStream(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            bytes = in.readNBytes(MAX_PIN_BYTES + 1);
        }
        try {
            if (bytes.length > MAX_PIN_BYTES) {
                throw new RefusedException("PIN file " + file + " is longer than " + MAX_PIN_BYTES + " bytes");
            }
            int len = bytes.length;
            if (len > 0 && bytes[len - 1] == '\n') {
                len--;
                if (len > 0 && bytes[len - 1] == '\r') {
                    len--;
                }
            }
            if (len == 0) {
                throw new RefusedException("PIN file " + file + " is empty");
            }
            return decode(file, bytes, len);
        } finally {
            Arrays.fill(bytes, (byte) 0);
        }
    }

    /** Checks type, owner and mode without reading the content. */
    static void checkSafe(Path file) throws IOException {
        PosixFileAttributes attrs;
        try {
            attrs = Files.readAttributes(file, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (UnsupportedOperationException e) {
            throw new RefusedException("PIN file " + file + " is on a file system without POSIX permissions");
        }
        if (attrs.isSymbolicLink()) {
            throw new RefusedException("PIN file " + file + " is a symbolic link; point to the file itself");
        }
        if (!attrs.isRegularFile()) {
            throw new RefusedException("PIN file " + file + " is not a regular file");
        }
        int ownerUid = (Integer) Files.getAttribute(file, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        long myUid = new UnixSystem().getUid();
        if (ownerUid != myUid) {
            throw new RefusedException("PIN file " + file + " is owned by uid " + ownerUid
                    + ", not by this process's uid " + myUid);
        }
        Set<PosixFilePermission> perms = attrs.permissions();
        if (!ALLOWED.containsAll(perms) || !perms.contains(PosixFilePermission.OWNER_READ)) {
            throw new RefusedException("PIN file " + file + " has mode " + octal(perms) + " ("
                    + PosixFilePermissions.toString(perms) + "); it must be 0600 or 0400, readable by its owner"
                    + " only (chmod 600 " + file + ")");
        }
    }

    private static char[] decode(Path file, byte[] bytes, int len) throws RefusedException {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        CharBuffer chars = null;
        try {
            chars = decoder.decode(ByteBuffer.wrap(bytes, 0, len));
            char[] pin = new char[chars.remaining()];
            chars.get(pin);
            return pin;
        } catch (CharacterCodingException e) {
            throw new RefusedException("PIN file " + file + " is not valid UTF-8");
        } finally {
            if (chars != null && chars.hasArray()) {
                Arrays.fill(chars.array(), '\0');
            }
        }
    }

    static String octal(Set<PosixFilePermission> perms) {
        int mode = 0;
        for (PosixFilePermission p : perms) {
            mode |= switch (p) {
                case OWNER_READ -> 0400;
                case OWNER_WRITE -> 0200;
                case OWNER_EXECUTE -> 0100;
                case GROUP_READ -> 040;
                case GROUP_WRITE -> 020;
                case GROUP_EXECUTE -> 010;
                case OTHERS_READ -> 04;
                case OTHERS_WRITE -> 02;
                case OTHERS_EXECUTE -> 01;
            };
        }
        return String.format("%04o", mode);
    }
}
