package dev.enclavekms.bench.shard;

import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.RegistryConfiguration;
import com.google.crypto.tink.StreamingAead;
import com.google.crypto.tink.streamingaead.PredefinedStreamingAeadParameters;
import com.google.crypto.tink.streamingaead.StreamingAeadConfig;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;

import static java.nio.file.StandardOpenOption.CREATE;
import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.TRUNCATE_EXISTING;
import static java.nio.file.StandardOpenOption.WRITE;

/**
 * Tink's streaming AEAD, AES256_GCM_HKDF_1MB: HKDF-SHA256 per-file key, AES-256-GCM
 * segments of 1 MiB of <em>ciphertext</em> (so 1 MiB − 16 bytes of plaintext, minus the
 * header in the first) — the closest of Tink's templates to our 1 MiB plaintext segments
 * (the other is 4 KiB). Used through its channel API as an application would: copy loops
 * with a 1 MiB buffer; random access through {@code newSeekableDecryptingChannel}.
 * Tink encrypts on the calling thread only.
 */
final class TinkFiles {
    private static final byte[] AAD = "bench".getBytes(StandardCharsets.US_ASCII);
    static final String TEMPLATE = "AES256_GCM_HKDF_1MB";
    private final StreamingAead aead;

    TinkFiles() throws GeneralSecurityException {
        StreamingAeadConfig.register();
        KeysetHandle handle = KeysetHandle.generateNew(PredefinedStreamingAeadParameters.AES256_GCM_HKDF_1MB);
        this.aead = handle.getPrimitive(RegistryConfiguration.get(), StreamingAead.class);
    }

    static String version() {
        Package p = StreamingAead.class.getPackage();
        String v = p == null ? null : p.getImplementationVersion();
        return v == null ? "1.20.0 (bench/pom.xml)" : v;
    }

    void encrypt(Path plain, Path sealed) throws IOException, GeneralSecurityException {
        try (FileChannel in = FileChannel.open(plain, READ);
             FileChannel out = FileChannel.open(sealed, WRITE, CREATE, TRUNCATE_EXISTING);
             WritableByteChannel enc = aead.newEncryptingChannel(out, AAD)) {
            copy(in, enc);
        }
    }

    void decrypt(Path sealed, Path plain) throws IOException, GeneralSecurityException {
        try (FileChannel in = FileChannel.open(sealed, READ);
             ReadableByteChannel dec = aead.newDecryptingChannel(in, AAD);
             FileChannel out = FileChannel.open(plain, WRITE, CREATE, TRUNCATE_EXISTING)) {
            copy(dec, out);
        }
    }

    /** Encrypts {@code plain} from memory into a discarding sink. */
    long encryptMemory(byte[] plain) throws IOException, GeneralSecurityException {
        MemoryChannels.Sink sink = new MemoryChannels.Sink();
        try (WritableByteChannel enc = aead.newEncryptingChannel(sink, AAD)) {
            copy(MemoryChannels.source(plain), enc);
        }
        return sink.written;
    }

    /** Decrypts a Tink ciphertext held in memory into a discarding sink. */
    long decryptMemory(byte[] sealed) throws IOException, GeneralSecurityException {
        MemoryChannels.Sink sink = new MemoryChannels.Sink();
        try (ReadableByteChannel dec = aead.newDecryptingChannel(MemoryChannels.source(sealed), AAD)) {
            copy(dec, sink);
        }
        return sink.written;
    }

    /** A seekable plaintext view of a Tink file, for the random-access comparison. */
    SeekableByteChannel seekable(Path sealed) throws IOException, GeneralSecurityException {
        return aead.newSeekableDecryptingChannel(FileChannel.open(sealed, READ), AAD);
    }

    private static void copy(ReadableByteChannel in, WritableByteChannel out) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        while (in.read(buf) >= 0) {
            buf.flip();
            while (buf.hasRemaining()) {
                out.write(buf);
            }
            buf.clear();
        }
    }
}
