package dev.enclavekms.cli;

import dev.enclavekms.format.Envelope;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.Arrays;
import java.util.Base64;
import java.util.Objects;
import java.util.Set;

/**
 * A file that holds one ciphertext envelope, as {@code kmsctl rewrap} finds and rewrites
 * it. A file is an envelope when it is binary and starts with the magic bytes and format
 * version of docs/formats.md, or when it is text whose content, leading and trailing
 * whitespace aside, is standard base64 (one run, no line breaks inside) of such bytes.
 * Anything else is left alone.
 *
 * <p>A rewritten envelope keeps the file's form: binary stays binary; base64 stays base64
 * with the same whitespace around it and the same padding style. The replacement is
 * atomic (see {@link #replace}): at every instant the file holds either the old or the
 * new envelope, both of which decrypt, so an interruption at any point loses nothing.
 */
final class EnvelopeFile {
    /** Temporary files are {@code .NAME.rewrap-tmp}, beside the file they replace. */
    static final String TEMP_SUFFIX = ".rewrap-tmp";
    /** Larger files are not read at all: no envelope, even in base64 with whitespace, comes close. */
    static final int MAX_FILE_BYTES = 128 * 1024;

    private static final Set<PosixFilePermission> OWNER_READ_WRITE = PosixFilePermissions.fromString("rw-------");

    private EnvelopeFile() {
    }

    /** What looking at one file found. */
    sealed interface Examined permits Found, NotEnvelope, Unreadable {
        Path path();
    }

    /** An envelope, with what it takes to write a new one in the same form, in place. */
    record Found(Path path, byte[] envelope, Form form, Stamp stamp) implements Examined { }

    record NotEnvelope(Path path, String reason) implements Examined { }

    record Unreadable(Path path, String reason) implements Examined { }

    /**
     * How the envelope is written in the file.
     *
     * @param base64 false: the raw bytes; true: base64 text
     * @param before whitespace before the base64 (empty for binary)
     * @param after  whitespace after it, typically the trailing newline (empty for binary)
     * @param padded whether the base64 ends with '=' padding where the length needs it
     */
    record Form(boolean base64, String before, String after, boolean padded) {
        static final Form BINARY = new Form(false, "", "", false);

        byte[] encode(byte[] envelope) {
            if (!base64) return envelope.clone();
            Base64.Encoder enc = padded ? Base64.getEncoder() : Base64.getEncoder().withoutPadding();
            return (before + enc.encodeToString(envelope) + after).getBytes(StandardCharsets.US_ASCII);
        }
    }

    /**
     * The file as it was read: to notice a change made meanwhile by someone else (which the
     * rewrite must not undo), and to give the new file the same owner, group and mode.
     */
    record Stamp(long size, FileTime modified, Object fileKey, Set<PosixFilePermission> permissions,
                 UserPrincipal owner, GroupPrincipal group) {
        static Stamp of(PosixFileAttributes a) {
            return new Stamp(a.size(), a.lastModifiedTime(), a.fileKey(), a.permissions(), a.owner(), a.group());
        }

        boolean sameFile(PosixFileAttributes a) {
            return a.isRegularFile() && size == a.size() && modified.equals(a.lastModifiedTime())
                    && Objects.equals(fileKey, a.fileKey());
        }
    }

    /** Why a rewrite failed: a short name for the summary and a message. The file is unchanged. */
    static final class RewriteFailure extends Exception {
        private final String error;

        RewriteFailure(String error, String message) {
            super(message, null, false, false);
            this.error = error;
        }

        String error() {
            return error;
        }
    }

    static boolean isTemp(Path file) {
        String name = file.getFileName().toString();
        return name.length() > 1 + TEMP_SUFFIX.length() && name.startsWith(".") && name.endsWith(TEMP_SUFFIX);
    }

    static Path tempFor(Path file) {
        return file.resolveSibling("." + file.getFileName() + TEMP_SUFFIX);
    }

    /** Reads a regular file (never through a symbolic link) and says whether it is an envelope. */
    static Examined examine(Path file) {
        PosixFileAttributes attributes;
        byte[] content;
        try {
            attributes = Files.readAttributes(file, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!attributes.isRegularFile()) {
                return new NotEnvelope(file, attributes.isSymbolicLink() ? "symbolic link (not followed)"
                        : "not a regular file");
            }
            if (attributes.size() > MAX_FILE_BYTES) {
                return new NotEnvelope(file, "not an envelope (larger than any envelope)");
            }
            // NOFOLLOW_LINKS again: the file may have been swapped for a link since.
            try (SeekableByteChannel ch = Files.newByteChannel(file, Set.of(StandardOpenOption.READ,
                    LinkOption.NOFOLLOW_LINKS))) {
                ByteBuffer buf = ByteBuffer.allocate(MAX_FILE_BYTES + 1);
                while (buf.hasRemaining() && ch.read(buf) > 0) {
                    // read on: a file may come in several reads
                }
                if (!buf.hasRemaining()) {
                    return new NotEnvelope(file, "not an envelope (larger than any envelope)");
                }
                content = Arrays.copyOf(buf.array(), buf.position());
            }
        } catch (IOException e) {
            return new Unreadable(file, "cannot read " + file + ": " + Inputs.reason(e));
        } catch (UnsupportedOperationException e) {
            return new Unreadable(file, "not on a POSIX file system: " + file);
        }
        Stamp stamp = Stamp.of(attributes);
        if (isEnvelope(content)) {
            return new Found(file, content, Form.BINARY, stamp);
        }
        String text = new String(content, StandardCharsets.ISO_8859_1);
        String body = text.strip();
        if (!body.isEmpty() && isBase64Alphabet(body)) {
            try {
                byte[] decoded = Base64.getDecoder().decode(body);
                if (isEnvelope(decoded)) {
                    int start = text.indexOf(body);
                    return new Found(file, decoded, new Form(true, text.substring(0, start),
                            text.substring(start + body.length()), body.endsWith("=") || body.length() % 4 == 0), stamp);
                }
            } catch (IllegalArgumentException notBase64) {
                // e.g. a wrong length: text, but no envelope
            }
        }
        return new NotEnvelope(file, "not an envelope");
    }

    /** Magic "EKC" and format version 1: the structure beyond that is the daemon's to judge. */
    static boolean isEnvelope(byte[] b) {
        return b.length > 4 && b[0] == Envelope.MAGIC[0] && b[1] == Envelope.MAGIC[1] && b[2] == Envelope.MAGIC[2]
                && b[3] == Envelope.FORMAT_VERSION;
    }

    private static boolean isBase64Alphabet(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '+' || c == '/' || c == '=';
            if (!ok) return false;
        }
        return true;
    }

    /**
     * Replaces the file's envelope with {@code envelope}, in the file's form, atomically:
     * <ol>
     *   <li>write {@code .NAME.rewrap-tmp} in the same directory (created 0600, so the
     *       content is never more readable than the owner allows), and fsync it, so that
     *       the rename below can never expose a file whose data is not on disk;</li>
     *   <li>give it the original's owner, group and permission bits; when that is not
     *       possible (another user's file, a group we are not in) the rewrite fails rather
     *       than change who may read the file;</li>
     *   <li>check the original is still the file that was read (same inode, size and
     *       mtime): a file changed meanwhile is left to its writer and reported;</li>
     *   <li>rename over the original: atomic, so readers see the old or the new envelope,
     *       never a mix or nothing.</li>
     * </ol>
     * The caller fsyncs the directory afterwards (once per batch), which makes the rename
     * durable. A crash before that leaves the old envelope, still valid, and a rerun redoes
     * the file; a crash before the rename leaves a temp file, which the next run deletes.
     *
     * @throws RewriteFailure when any step fails; the original is untouched and the temp file removed
     */
    static void replace(Found found, byte[] envelope) throws RewriteFailure {
        Path file = found.path();
        Path temp = tempFor(file);
        byte[] content = found.form().encode(envelope);
        try {
            Files.deleteIfExists(temp);
            try (FileChannel ch = FileChannel.open(temp, Set.of(StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS),
                    PosixFilePermissions.asFileAttribute(OWNER_READ_WRITE))) {
                ByteBuffer buf = ByteBuffer.wrap(content);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            PosixFileAttributeView view = Files.getFileAttributeView(temp, PosixFileAttributeView.class,
                    LinkOption.NOFOLLOW_LINKS);
            PosixFileAttributes made = view.readAttributes();
            Stamp want = found.stamp();
            try {
                if (!made.group().equals(want.group())) view.setGroup(want.group());
                if (!made.owner().equals(want.owner())) view.setOwner(want.owner());
            } catch (FileSystemException e) {
                throw new RewriteFailure("WriteFailed", "cannot give the new file the owner " + want.owner().getName()
                        + " and group " + want.group().getName() + " of " + file + " (run as its owner or root)");
            }
            view.setPermissions(want.permissions());
            PosixFileAttributes now = Files.readAttributes(file, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!want.sameFile(now)) {
                throw new RewriteFailure("ChangedDuringRewrap", file + " changed while it was being rewrapped;"
                        + " left as it is (run again to rewrap it)");
            }
            Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE);
        } catch (RewriteFailure e) {
            deleteQuietly(temp);
            throw e;
        } catch (IOException e) {
            deleteQuietly(temp);
            throw new RewriteFailure("WriteFailed", "cannot write " + file + ": " + Inputs.reason(e));
        }
    }

    /** fsync of a directory, which makes the renames in it durable. */
    static void syncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    private static void deleteQuietly(Path temp) {
        try {
            Files.deleteIfExists(temp);
        } catch (IOException ignored) {
            // the next run deletes leftover temp files
        }
    }
}
