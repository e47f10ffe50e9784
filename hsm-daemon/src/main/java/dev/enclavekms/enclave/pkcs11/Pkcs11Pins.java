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
 *
 * <p>A file directly inside {@code $CREDENTIALS_DIRECTORY} — the per-service directory
 * where systemd puts {@code LoadCredential=} files — is checked by systemd's rules
 * instead: systemd writes each credential as root with mode 0400 and then either grants
 * the service's user read access with a POSIX ACL (the file stays root-owned and its
 * group bits show the ACL mask, mode 0440) or, where the file system has no ACLs
 * (ramfs), hands the file to that user. So there a file and its directory may also be
 * owned by root (group root); still nobody else may read it, and nobody may write it.
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
        return read(file, System.getenv("CREDENTIALS_DIRECTORY"), new UnixSystem().getUid());
    }

    /** As {@link #read(Path)}, with the credentials directory and this process's uid given (tests). */
    static char[] read(Path file, String credentialsDirectory, long myUid) throws IOException {
        if (isCredential(file, credentialsDirectory)) {
            checkCredential(file, Path.of(credentialsDirectory), myUid);
        } else {
            checkSafe(file, myUid);
        }
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

    static boolean isCredential(Path file, String credentialsDirectory) {
        if (credentialsDirectory == null || credentialsDirectory.isBlank()) {
            return false;
        }
        Path parent = file.toAbsolutePath().normalize().getParent();
        return parent != null && parent.equals(Path.of(credentialsDirectory).toAbsolutePath().normalize());
    }

    /**
     * systemd's credential rules (see the class comment): the directory and the file are
     * not symbolic links, are owned by this user or by root, give nothing to others, and are
     * writable by their owner at most; group read is accepted only on root:root objects
     * (where it is the ACL mask systemd sets). The file is a regular file.
     */
    static void checkCredential(Path file, Path directory, long myUid) throws IOException {
        checkPrivate(directory, "credentials directory", true, myUid);
        checkPrivate(file, "PIN credential", false, myUid);
    }

    private static void checkPrivate(Path p, String what, boolean directory, long myUid) throws IOException {
        PosixFileAttributes attrs;
        try {
            attrs = Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (UnsupportedOperationException e) {
            throw new RefusedException(what + " " + p + " is on a file system without POSIX permissions");
        }
        if (attrs.isSymbolicLink()) {
            throw new RefusedException(what + " " + p + " is a symbolic link");
        }
        if (directory ? !attrs.isDirectory() : !attrs.isRegularFile()) {
            throw new RefusedException(what + " " + p + " is not a " + (directory ? "directory" : "regular file"));
        }
        int owner = (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        int group = (Integer) Files.getAttribute(p, "unix:gid", LinkOption.NOFOLLOW_LINKS);
        if (owner != myUid && owner != 0) {
            throw new RefusedException(what + " " + p + " is owned by uid " + owner + ", neither this process's uid "
                    + myUid + " nor root");
        }
        Set<PosixFilePermission> perms = attrs.permissions();
        Set<PosixFilePermission> allowed = EnumSet.of(PosixFilePermission.OWNER_READ);
        if (directory) {
            allowed.add(PosixFilePermission.OWNER_WRITE);
            allowed.add(PosixFilePermission.OWNER_EXECUTE);
        } else {
            allowed.add(PosixFilePermission.OWNER_WRITE);
        }
        if (owner == 0 && group == 0) {
            allowed.add(PosixFilePermission.GROUP_READ);
            if (directory) allowed.add(PosixFilePermission.GROUP_EXECUTE);
        }
        if (!allowed.containsAll(perms)) {
            throw new RefusedException(what + " " + p + " has mode " + octal(perms) + " ("
                    + PosixFilePermissions.toString(perms) + ", owner uid " + owner + ", group gid " + group
                    + "); systemd credentials are readable by the service's user only");
        }
    }

    /** Checks type, owner and mode without reading the content. */
    static void checkSafe(Path file) throws IOException {
        checkSafe(file, new UnixSystem().getUid());
    }

    private static void checkSafe(Path file, long myUid) throws IOException {
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
