package dev.enclavekms.manifest;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * A signed manifest's content (docs/manifest.md): who signs it, when, and the SHA-256 of
 * every regular file of a tree, sorted by path.
 *
 * @param key       the SIGN key's name
 * @param version   the key version that signs (the primary at signing time)
 * @param algorithm the key's algorithm, e.g. {@code EC_P256_SHA256}
 * @param created   when the manifest was made, whole seconds
 * @param bytes     the files' total size (informational: the lines carry no sizes)
 * @param entries   the files, in strictly increasing order of their paths' UTF-8 bytes
 */
public record Manifest(String key, int version, String algorithm, Instant created, long bytes, List<Entry> entries) {
    public Manifest {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(algorithm, "algorithm");
        Objects.requireNonNull(created, "created");
        entries = List.copyOf(entries);
    }

    /**
     * One file.
     *
     * @param path   relative, {@code /}-separated, as in {@link ManifestPaths}
     * @param sha256 the file content's SHA-256 (32 bytes)
     */
    public record Entry(String path, byte[] sha256) {
        public Entry {
            Objects.requireNonNull(path, "path");
            if (sha256.length != 32) {
                throw new IllegalArgumentException("a SHA-256 has 32 bytes");
            }
        }
    }
}
