package dev.enclavekms.shard;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Objects;

/**
 * Writes a file through a temporary file beside it ({@code .NAME.*.tmp}, created with
 * mode 0600 on POSIX file systems: it may hold plaintext), renamed over the target only
 * when the writer returned normally; otherwise the temporary file is deleted, so a
 * failed decryption leaves no plaintext file behind and the target is untouched.
 */
final class AtomicFiles {
    private AtomicFiles() {
    }

    interface ChannelWork {
        void write(FileChannel out) throws IOException;
    }

    static void write(Path target, ChannelWork work) throws IOException {
        Objects.requireNonNull(target, "target");
        Path dir = target.toAbsolutePath().getParent();
        Path temp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp");
        boolean done = false;
        try {
            try (FileChannel out = FileChannel.open(temp, StandardOpenOption.WRITE)) {
                work.write(out);
            }
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            done = true;
        } finally {
            if (!done) {
                Files.deleteIfExists(temp);
            }
        }
    }
}
