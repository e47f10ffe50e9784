package dev.enclavekms.bench.shard;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code age} (Debian package age) on the same files: an X25519 recipient without a
 * passphrase, one process per file as a user would run it (process start is ~ms, noise
 * next to a file of 100+ MiB). age's body is ChaCha20-Poly1305 in 64 KiB chunks, one
 * thread.
 */
final class AgeFiles {
    private final Path identity;
    private final String recipient;

    private AgeFiles(Path identity, String recipient) {
        this.identity = identity;
        this.recipient = recipient;
    }

    static String unavailableReason() {
        String age = Tools.missing("age", "--version");
        return age != null ? age : Tools.missing("age-keygen", "--version");
    }

    static String version() {
        return Tools.firstLine("age", "--version");
    }

    /** Generates an identity in {@code dir}. */
    static AgeFiles create(Path dir) throws IOException {
        Path identity = dir.resolve("age-identity.txt");
        Files.deleteIfExists(identity);
        Tools.run("age-keygen", "-o", identity.toString());
        String recipient = null;
        for (String line : Files.readAllLines(identity)) {
            if (line.startsWith("# public key: ")) {
                recipient = line.substring("# public key: ".length()).strip();
            }
        }
        if (recipient == null) {
            throw new IOException("age-keygen wrote no public key line");
        }
        return new AgeFiles(identity, recipient);
    }

    void encrypt(Path plain, Path sealed) throws IOException {
        Tools.run("age", "-r", recipient, "-o", sealed.toString(), plain.toString());
    }

    void decrypt(Path sealed, Path plain) throws IOException {
        Tools.run("age", "-d", "-i", identity.toString(), "-o", plain.toString(), sealed.toString());
    }
}
