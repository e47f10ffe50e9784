/**
 * Encrypted shard files (model parameter shards, optimizer states): a streaming AEAD
 * format whose header carries a data key wrapped by enclave-kms, and whose body is a
 * sequence of AES-256-GCM segments that can each be decrypted alone. Specified byte by
 * byte in docs/formats.md ("Shard files, format 1").
 *
 * <ul>
 *   <li>{@link dev.enclavekms.shard.ShardEncryptor} — streaming encryption, optionally on
 *       several threads (same output for any thread count); file to file
 *       ({@code encryptFile}, {@code encryptInto}), each thread reading, encrypting and
 *       writing its own segments; buffer to buffer ({@code encrypt(ByteBuffer, ByteBuffer)},
 *       {@code shardLength}) for a tensor held in memory, each thread sealing its own
 *       segments in place.</li>
 *   <li>{@link dev.enclavekms.shard.ShardDecryptor} — streaming decryption, and file to
 *       file ({@code decryptFile}: temporary file, renamed only when every segment
 *       authenticated), and buffer to buffer ({@code decrypt(ByteBuffer, ByteBuffer,
 *       threads)}: all or nothing, the output zeroed on any damage);
 *       {@link dev.enclavekms.shard.ShardReader} — random access
 *       ({@code read(position, buffer)}) decrypting only the segments touched, on several
 *       threads for reads of two or more segments ({@code readThreads}), and
 *       {@code decryptInto} a file channel on several threads.</li>
 *   <li>{@link dev.enclavekms.shard.ShardHeaders} — headers without keys: inspect, and
 *       rewrap after a master-key rotation (header only, atomic, body untouched).</li>
 *   <li>{@link dev.enclavekms.shard.DataKeyUnwrapper} — how the library gets a data key
 *       back from its envelope; the seam where a data-key cache plugs in
 *       ({@link dev.enclavekms.cache.DataKeyCache}, docs/cache.md).</li>
 *   <li>{@link dev.enclavekms.shard.ShardException} — what is wrong with a file, and where.</li>
 * </ul>
 *
 * <p>Speed: JCE's AES-GCM is fast only once HotSpot's C2 has compiled the path to its
 * AES-NI/AVX stubs; with megabyte segments that takes hundreds of megabytes of slow
 * processing, so the first use of a segment size of 64 KiB or more starts a short
 * warm-up on a background thread ({@code -Ddev.enclavekms.shard.warmup=false} turns it
 * off). Under {@code -XX:TieredStopAtLevel=1} (C1 only) the stubs are never used: about
 * 30 MiB/s instead of GiB/s. Files are read through read-only memory mappings
 * ({@code ShardReader}, and the channel forms of encrypt and decrypt when given a
 * {@code FileChannel}): one copy per byte instead of two ({@code
 * -Ddev.enclavekms.shard.mmap=false} turns that off). Measurements and their method:
 * docs/performance.md, "Shards (issue 8)", and {@code bench/run-shards}.
 *
 * <p>JDK only, like the rest of the client.
 */
package dev.enclavekms.shard;
