package dev.enclavekms.shard;

import java.security.SecureRandom;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Gets HotSpot to compile the AES-GCM path early, once per JVM, on a background thread.
 *
 * <p>Why: JCE's AES-GCM runs a plain-Java fallback until the JIT has compiled the methods
 * that call the AES-NI/AVX-512 stubs, and compilation is triggered by call counts. With
 * segments of a MiB or more there are few calls, so the fallback runs for a long time:
 * measured here (JDK 25, 2 shared cores), the first GiB of a process encrypted at about
 * 60 MiB/s against 1.5–2.5 GiB/s once compiled. Forty thousand 512-byte operations on a
 * daemon thread (about half a second of one core) get the path compiled while the first
 * large segments are still being processed: the first GiB then ran at about 750 MiB/s.
 * That matters most where it hurts most: a runtime loading model weights at start-up,
 * and kmsctl, whose JVM lives for one command.
 *
 * <p>Only segment sizes of 64 KiB and more start it (small segments mean many calls,
 * which compile the path anyway). It uses a random throwaway key and no caller data.
 * {@code -Ddev.enclavekms.shard.warmup=false} turns it off.
 */
final class JitWarmup {
    static final int THRESHOLD_SEGMENT_SIZE = 64 << 10;
    private static final int ROUNDS = 40_000;
    private static final AtomicBoolean STARTED = new AtomicBoolean();

    private JitWarmup() {
    }

    static void startFor(int segmentSize) {
        if (segmentSize < THRESHOLD_SEGMENT_SIZE || !Boolean.parseBoolean(
                System.getProperty("dev.enclavekms.shard.warmup", "true")) || !STARTED.compareAndSet(false, true)) {
            return;
        }
        Thread t = new Thread(JitWarmup::run, "shard-jit-warmup");
        t.setDaemon(true);
        t.setPriority(Thread.MIN_PRIORITY);
        t.start();
    }

    private static void run() {
        byte[] key = new byte[ShardFormat.DATA_KEY_BYTES];
        byte[] salt = new byte[ShardFormat.SALT_BYTES];
        new SecureRandom().nextBytes(key);
        try (ShardKeys keys = ShardKeys.derive(key, salt, salt)) {
            SegmentCipher cipher = new SegmentCipher(keys, new byte[ShardFormat.NONCE_PREFIX_BYTES]);
            byte[] plain = new byte[512];
            byte[] sealed = new byte[512 + ShardFormat.TAG_BYTES];
            for (int i = 0; i < ROUNDS; i++) {
                cipher.seal(i, false, plain, 0, plain.length, sealed, 0);
                cipher.open(i, false, sealed, 0, sealed.length, plain, 0);
            }
        } catch (ShardException | RuntimeException e) {
            // Only a speed-up: nothing depends on it.
        } finally {
            java.util.Arrays.fill(key, (byte) 0);
        }
    }
}
