package dev.enclavekms.service;

import dev.enclavekms.enclave.ObjectId;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The CA certificate of each CERT_AUTHORITY key version, one PEM file per version in a
 * {@code ca/} directory beside the registry, named by the version's object id (so key
 * names, which may contain '/', never become paths). A certificate is public: the files
 * need integrity, not secrecy, and a lost file is recreated from the key (docs/tls.md).
 *
 * <p>A version of an intermediate CA (a key created with {@code ca_intermediate}) has no
 * self-signed root: its key's first version carries a marker file {@code <object id>.intermediate},
 * and each version's file, once imported, holds its certificate followed by the issuers up
 * to the external root (Admin.ImportCaCertificate).
 *
 * <p>Writes never replace: the first certificate stored for a version is the one it keeps,
 * even when two calls race to create it ({@link #putIfAbsent} links a finished temporary
 * file into place, which fails if the name exists).
 */
public final class CaCertificates {
    private final Path dir;

    public CaCertificates(Path dir) {
        this.dir = dir;
    }

    public Optional<String> get(ObjectId version) throws IOException {
        try {
            return Optional.of(Files.readString(file(version), StandardCharsets.US_ASCII));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
    }

    /** Stores {@code pem} unless a certificate is already stored; returns the one stored. */
    public String putIfAbsent(ObjectId version, String pem) throws IOException {
        Files.createDirectories(dir);
        Path target = file(version);
        Path tmp = Files.createTempFile(dir, ".ca-", ".tmp");
        try {
            Files.writeString(tmp, pem, StandardCharsets.US_ASCII);
            try (var ch = java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            try {
                Files.createLink(target, tmp);
                return pem;
            } catch (FileAlreadyExistsException lost) {
                return Files.readString(target, StandardCharsets.US_ASCII);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Marks the key whose first version is {@code firstVersion} as an intermediate CA (idempotent, synced). */
    public void markIntermediate(ObjectId firstVersion) throws IOException {
        Files.createDirectories(dir);
        Path marker = dir.resolve(firstVersion.hex() + ".intermediate");
        if (Files.exists(marker)) return;
        Path tmp = Files.createTempFile(dir, ".ca-", ".tmp");
        try {
            try (var ch = java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            try {
                Files.createLink(marker, tmp);
            } catch (FileAlreadyExistsException raced) {
                // marked by a concurrent call: the same outcome
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
        try (var d = java.nio.channels.FileChannel.open(dir, java.nio.file.StandardOpenOption.READ)) {
            d.force(true); // the marker's directory entry must outlive a crash, or a root would be made
        }
    }

    /** Whether the key whose first version is {@code firstVersion} is an intermediate CA. */
    public boolean isIntermediate(ObjectId firstVersion) {
        return Files.exists(dir.resolve(firstVersion.hex() + ".intermediate"));
    }

    private Path file(ObjectId version) {
        return dir.resolve(version.hex() + ".pem");
    }
}
