package dev.enclavekms.shard;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.ReEncrypted;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Shard headers on disk: reading them without any key, and rewrapping them after the
 * master key was rotated.
 *
 * <p><strong>Rewrap</strong> moves a shard's wrapped data key to the primary version of
 * its key with {@code Kms.ReEncrypt}: the data key never leaves the daemon, so a rewrap
 * needs the re-encryption right, not the right to decrypt, and the body is not touched
 * (its keys derive from the data key, which does not change). Only the header's key block
 * changes; the header tag does not cover it (docs/formats.md explains why).
 *
 * <p>How the file is rewritten: a new file beside it ({@code .NAME.rewrap-RANDOM.tmp},
 * same permissions) receives the new header and then the old body, byte for byte; it is
 * fsynced, renamed over the original, and the directory fsynced. A crash at any point
 * leaves either the old shard or the new one under the name — never a half-written header,
 * which would lose the data key and with it the whole file. Overwriting the header in
 * place would avoid copying the body, but a write that tears (power loss mid-sector) would
 * destroy the only copy of the wrapped key; the copy costs one sequential read and write
 * of the file (the JDK uses copy_file_range, which file systems with reflinks turn into a
 * metadata operation). A reader that has the old file open keeps reading the old inode,
 * which stays valid until the old key version is destroyed.
 */
public final class ShardHeaders {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String TEMP_PREFIX = ".";
    private static final String TEMP_INFIX = ".rewrap-";
    private static final String TEMP_SUFFIX = ".tmp";

    private ShardHeaders() {
    }

    /**
     * The header of the shard at {@code file}, structure checked (not authenticated: that
     * needs the data key).
     *
     * @throws ShardException NOT_A_SHARD, UNSUPPORTED_FORMAT, MALFORMED_HEADER, TRUNCATED
     */
    public static ShardHeader read(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return ShardHeader.read(in);
        }
    }

    /** True when {@code file} is a regular file that starts with the shard magic (of any version). */
    public static boolean isShard(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            return false;
        }
        try (InputStream in = Files.newInputStream(file)) {
            return Arrays.equals(in.readNBytes(ShardFormat.MAGIC.length), ShardFormat.MAGIC);
        }
    }

    /** True for the temporary files a rewrap leaves when interrupted (they are never shards to process). */
    public static boolean isRewrapLeftover(Path file) {
        String name = file.getFileName().toString();
        return name.startsWith(TEMP_PREFIX) && name.contains(TEMP_INFIX) && name.endsWith(TEMP_SUFFIX);
    }

    /**
     * The outcome of a rewrap.
     *
     * @param file        the shard (its real path)
     * @param keyName     the key its data key is wrapped under
     * @param fromVersion the version before
     * @param toVersion   the version after (equal to {@code fromVersion} when nothing changed)
     * @param rewrapped   false when the header was already on the key's primary version
     *                    and the file was left as it was
     */
    public record Rewrap(Path file, String keyName, int fromVersion, int toVersion, boolean rewrapped) { }

    /**
     * Moves the shard's data key to the primary version of its key, rewriting only the
     * header, atomically (see the class comment). A shard already on the primary version
     * is left untouched (the daemon authenticates its envelope first), so running rewrap
     * again over the same files resumes where an interrupted run stopped. Leftover
     * temporary files of an interrupted rewrap of this file are removed.
     *
     * @throws ShardException for a file that is not a valid shard header
     * @throws KmsException   from ReEncrypt, e.g. DecryptionFailed for a tampered key block or
     *                        context, KeyVersionDestroyed when it is too late
     * @throws IOException    when the file changes during the rewrap (nothing is replaced then)
     */
    public static Rewrap rewrap(Path file, KmsClient kms) throws KmsException, IOException {
        Objects.requireNonNull(kms, "kms");
        return rewrap(file, (wrapped, context) -> kms.reEncrypt(wrapped, context));
    }

    /**
     * How {@link #rewrap(Path, ReEncryptor)} moves a wrapped data key: {@code Kms.ReEncrypt}
     * to the primary version of the envelope's own key, with the header's context. (A seam
     * for callers that route or account for daemon calls themselves, such as kmsctl.)
     */
    @FunctionalInterface
    public interface ReEncryptor {
        ReEncrypted reEncrypt(byte[] wrappedDataKey, Map<String, String> context) throws KmsException, IOException;
    }

    /** As {@link #rewrap(Path, KmsClient)}, with the daemon call made by {@code reEncryptor}. */
    public static Rewrap rewrap(Path file, ReEncryptor reEncryptor) throws KmsException, IOException {
        Objects.requireNonNull(reEncryptor, "reEncryptor");
        Path real = file.toRealPath(); // rename over the target, not over a symbolic link to it
        removeLeftovers(real);
        byte[] oldBytes;
        ShardHeader old;
        long size;
        try (FileChannel in = FileChannel.open(real, StandardOpenOption.READ)) {
            oldBytes = ShardHeader.readRaw(java.nio.channels.Channels.newInputStream(in));
            old = ShardHeader.parse(oldBytes);
            size = in.size();
        }
        ReEncrypted moved = reEncryptor.reEncrypt(old.wrappedDataKey(), old.context());
        if (!moved.rewrapped()) {
            return new Rewrap(real, old.keyName(), old.keyVersion(), old.keyVersion(), false);
        }
        ShardFormat.EnvelopeKey named = ShardFormat.envelopeKey(moved.ciphertext());
        if (!named.keyName().equals(moved.key()) || named.keyVersion() != moved.version()) {
            throw new IOException("the daemon's ReEncrypt reply names " + moved.key() + " version " + moved.version()
                    + " but its envelope names " + named.keyName() + " version " + named.keyVersion());
        }
        ShardHeader updated = old.withKey(moved.key(), moved.version(), moved.ciphertext());
        replaceHeader(real, oldBytes, size, updated.encode());
        return new Rewrap(real, old.keyName(), old.keyVersion(), moved.version(), true);
    }

    /**
     * What a header and a file size imply, without any key: the number of segments and the
     * plaintext length. Authentic only once the final segment has been decrypted (which
     * {@link ShardReader} does when it opens).
     *
     * @param segments      number of segments
     * @param plaintextSize plaintext bytes
     */
    public record Layout(long segments, long plaintextSize) { }

    /**
     * @throws ShardException TRUNCATED or TRAILING_DATA when the body length fits no
     *                        sequence of segments
     */
    public static Layout layout(ShardHeader header, long fileSize) throws ShardException {
        long c = header.segmentSize() + (long) ShardFormat.TAG_BYTES;
        long body = fileSize - header.length();
        if (body <= 0) {
            throw new ShardException(ShardException.Reason.TRUNCATED, 0,
                    "the shard is truncated: it ends after its header, with no segment");
        }
        long n = (body + c - 1) / c;
        long last = body - (n - 1) * c;
        if (last < ShardFormat.TAG_BYTES || (last == ShardFormat.TAG_BYTES && n > 1)) {
            throw new ShardException(ShardException.Reason.TRUNCATED, n - 1,
                    "the shard's length does not fit its segments: it ends inside segment " + (n - 1));
        }
        if (n > ShardFormat.MAX_SEGMENTS) {
            throw new ShardException(ShardException.Reason.TRAILING_DATA, ShardFormat.MAX_SEGMENTS,
                    "the shard has more than 2^32 segments: data follows its end");
        }
        return new Layout(n, body - n * ShardFormat.TAG_BYTES);
    }

    private static void replaceHeader(Path file, byte[] oldHeader, long oldSize, byte[] newHeader) throws IOException {
        Path dir = file.getParent();
        Path temp = dir.resolve(TEMP_PREFIX + file.getFileName() + TEMP_INFIX
                + HexFormat.of().formatHex(randomBytes(6)) + TEMP_SUFFIX);
        boolean moved = false;
        try {
            Set<PosixFilePermission> mode = posixMode(file);
            try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ);
                 FileChannel out = mode == null
                         ? FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)
                         : FileChannel.open(temp, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                                 PosixFilePermissions.asFileAttribute(Set.of(PosixFilePermission.OWNER_READ,
                                         PosixFilePermission.OWNER_WRITE)))) {
                if (mode != null) {
                    Files.setPosixFilePermissions(temp, mode); // the umask does not apply to this
                }
                // The file must be the one whose header was sent to the daemon.
                if (in.size() != oldSize || !Arrays.equals(readAt(in, 0, oldHeader.length), oldHeader)) {
                    throw new IOException(file + " changed during the rewrap; it was left as it was");
                }
                ShardEncryptor.writeFully(out, ByteBuffer.wrap(newHeader));
                long from = oldHeader.length;
                long body = oldSize - from;
                long done = 0;
                while (done < body) {
                    long n = in.transferTo(from + done, body - done, out);
                    if (n <= 0) {
                        throw new IOException(file + " shrank during the rewrap; it was left as it was");
                    }
                    done += n;
                }
                out.force(true);
                if (in.size() != oldSize) {
                    throw new IOException(file + " changed during the rewrap; it was left as it was");
                }
            }
            try {
                Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("cannot replace " + file + " atomically: " + e.getMessage(), e);
            }
            moved = true;
            syncDirectory(dir);
        } finally {
            if (!moved) {
                Files.deleteIfExists(temp);
            }
        }
    }

    private static Set<PosixFilePermission> posixMode(Path file) throws IOException {
        try {
            return Files.getPosixFilePermissions(file);
        } catch (UnsupportedOperationException e) {
            return null;
        }
    }

    private static byte[] readAt(FileChannel ch, long position, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b, position + b.position()) < 0) {
                break;
            }
        }
        return Arrays.copyOf(b.array(), b.position());
    }

    /** Makes the rename durable: on Linux a directory opened for reading can be fsynced. */
    private static void syncDirectory(Path dir) throws IOException {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException e) {
            // Some file systems refuse fsync on directories; the rename itself has happened.
        }
    }

    private static void removeLeftovers(Path file) throws IOException {
        String prefix = TEMP_PREFIX + file.getFileName() + TEMP_INFIX;
        DirectoryStream.Filter<Path> ours = p -> {
            String name = p.getFileName().toString();
            return name.startsWith(prefix) && name.endsWith(TEMP_SUFFIX);
        };
        try (DirectoryStream<Path> s = Files.newDirectoryStream(file.getParent(), ours)) {
            for (Path p : s) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        RANDOM.nextBytes(b);
        return b;
    }
}
