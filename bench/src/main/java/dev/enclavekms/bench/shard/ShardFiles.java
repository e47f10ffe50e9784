package dev.enclavekms.bench.shard;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.shard.ShardDecryptor;
import dev.enclavekms.shard.ShardEncryptor;
import dev.enclavekms.shard.ShardHeader;
import dev.enclavekms.shard.ShardReader;

import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static java.nio.file.StandardOpenOption.CREATE;
import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.TRUNCATE_EXISTING;
import static java.nio.file.StandardOpenOption.WRITE;

/**
 * The shard library (format 1, 1 MiB segments, the default) through its channel API, as
 * an application uses it: {@code ShardEncryptor.encrypt(FileChannel, FileChannel)},
 * {@code ShardDecryptor.decrypt(FileChannel, FileChannel, threads)} after reading the
 * header; file to file ({@code encryptFile}, {@code decryptFile}); and
 * {@code ShardReader.read(position, buffer)} for random access.
 */
final class ShardFiles {
    static final Map<String, String> CONTEXT = Map.of("bench", "shards");
    private final LocalDataKeys keys = new LocalDataKeys();

    void encrypt(Path plain, Path sealed, int threads) throws IOException {
        DataKey dk = keys.generate(CONTEXT);
        try (ShardEncryptor enc = ShardEncryptor.of(dk, CONTEXT, ShardEncryptor.Options.DEFAULT.withThreads(threads));
             FileChannel in = FileChannel.open(plain, READ);
             FileChannel out = FileChannel.open(sealed, WRITE, CREATE, TRUNCATE_EXISTING)) {
            enc.encrypt(in, out);
        } finally {
            Arrays.fill(dk.plaintext(), (byte) 0);
        }
    }

    long decrypt(Path sealed, Path plain, int threads) throws IOException {
        try (FileChannel in = FileChannel.open(sealed, READ);
             FileChannel out = FileChannel.open(plain, WRITE, CREATE, TRUNCATE_EXISTING)) {
            ShardHeader header = ShardHeader.read(Channels.newInputStream(in));
            try (ShardDecryptor d = ShardDecryptor.open(header, keys, CONTEXT)) {
                return d.decrypt(in, out, threads);
            }
        } catch (dev.enclavekms.client.KmsException e) {
            throw new IOException(e);
        }
    }

    /** File to file: {@code ShardEncryptor.encryptFile}, each thread reading and writing its own segments. */
    void encryptFile(Path plain, Path sealed, int threads) throws IOException {
        DataKey dk = keys.generate(CONTEXT);
        try (ShardEncryptor enc = ShardEncryptor.of(dk, CONTEXT, ShardEncryptor.Options.DEFAULT.withThreads(threads))) {
            enc.encryptFile(plain, sealed, null);
        } finally {
            Arrays.fill(dk.plaintext(), (byte) 0);
        }
    }

    /** File to file: {@code ShardDecryptor.decryptFile} (temporary file renamed into place). */
    long decryptFile(Path sealed, Path plain, int threads) throws IOException {
        try {
            return ShardDecryptor.decryptFile(sealed, plain, keys, CONTEXT, threads, null);
        } catch (dev.enclavekms.client.KmsException e) {
            throw new IOException(e);
        }
    }

    /** Encrypts {@code plain} from memory into a discarding sink; returns the bytes written. */
    long encryptMemory(byte[] plain, int threads) throws IOException {
        DataKey dk = keys.generate(CONTEXT);
        MemoryChannels.Sink sink = new MemoryChannels.Sink();
        try (ShardEncryptor enc = ShardEncryptor.of(dk, CONTEXT, ShardEncryptor.Options.DEFAULT.withThreads(threads))) {
            enc.encrypt(MemoryChannels.source(plain), sink);
        } finally {
            Arrays.fill(dk.plaintext(), (byte) 0);
        }
        return sink.written;
    }

    /** Decrypts a shard held in memory into a discarding sink; returns the plaintext length. */
    long decryptMemory(byte[] sealed, int threads) throws IOException {
        var in = MemoryChannels.source(sealed);
        try {
            ShardHeader header = ShardHeader.read(Channels.newInputStream(in));
            try (ShardDecryptor d = ShardDecryptor.open(header, keys, CONTEXT)) {
                return d.decrypt(in, new MemoryChannels.Sink(), threads);
            }
        } catch (dev.enclavekms.client.KmsException e) {
            throw new IOException(e);
        }
    }

    /**
     * Encrypts a buffer into a buffer ({@link ShardEncryptor#encrypt(ByteBuffer, ByteBuffer)}):
     * what a runtime holding a tensor in memory calls; {@code out} is allocated once by the
     * caller (its size: {@link #shardLength}). Returns the shard's length.
     */
    long encryptBuffer(byte[] plain, byte[] out, int threads) throws IOException {
        DataKey dk = keys.generate(CONTEXT);
        try (ShardEncryptor enc = ShardEncryptor.of(dk, CONTEXT, ShardEncryptor.Options.DEFAULT.withThreads(threads))) {
            java.nio.ByteBuffer o = java.nio.ByteBuffer.wrap(out);
            enc.encrypt(java.nio.ByteBuffer.wrap(plain), o);
            return o.position();
        } finally {
            Arrays.fill(dk.plaintext(), (byte) 0);
        }
    }

    /** The length {@link #encryptBuffer} makes of {@code n} bytes. */
    long shardLength(long n) throws IOException {
        DataKey dk = keys.generate(CONTEXT);
        try (ShardEncryptor enc = ShardEncryptor.of(dk, CONTEXT, ShardEncryptor.Options.DEFAULT)) {
            return enc.shardLength(n);
        } finally {
            Arrays.fill(dk.plaintext(), (byte) 0);
        }
    }

    /** Decrypts a shard held in a buffer into a buffer ({@link ShardDecryptor#decrypt(ByteBuffer, ByteBuffer, int)}). */
    long decryptBuffer(byte[] sealed, byte[] out, int threads) throws IOException {
        try {
            ShardHeader header = ShardHeader.read(new java.io.ByteArrayInputStream(sealed));
            int h = header.encode().length;
            try (ShardDecryptor d = ShardDecryptor.open(header, keys, CONTEXT)) {
                return d.decrypt(java.nio.ByteBuffer.wrap(sealed, h, sealed.length - h), java.nio.ByteBuffer.wrap(out),
                        threads);
            }
        } catch (dev.enclavekms.client.KmsException e) {
            throw new IOException(e);
        }
    }

    /** A reader whose reads of two or more segments run on {@code threads} threads (1: the caller only). */
    ShardReader reader(Path sealed, int threads) throws IOException {
        try {
            return ShardReader.open(sealed, keys, CONTEXT).readThreads(threads);
        } catch (dev.enclavekms.client.KmsException e) {
            throw new IOException(e);
        }
    }
}
