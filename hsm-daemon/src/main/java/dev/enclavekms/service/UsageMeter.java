package dev.enclavekms.service;

import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.RegistryException;
import dev.enclavekms.registry.RegistryStore;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Counts encryptions per key version so that no version approaches the NIST SP 800-38D
 * bound for random 96-bit GCM IVs (2³² invocations per key).
 *
 * <p>The count is persisted by reservation: before using encryptions beyond what the
 * registry has recorded, a block is reserved there (one write per block, not per
 * call). After a crash the count restarts at the reserved value, so it can only err
 * high. A version whose reservation reaches the rotation limit asks for rotation; one
 * that reaches the hard limit (twice that) refuses to encrypt until it is rotated.
 */
public final class UsageMeter {
    /** Rotate at 2³⁰ encryptions, a quarter of the 2³² bound. */
    public static final long DEFAULT_ROTATION_LIMIT = 1L << 30;

    private final RegistryStore registry;
    private final long rotationLimit;
    private final long hardLimit;
    private final long block;
    private final Runnable rotationWanted;
    private final Map<String, Counter> counters = new ConcurrentHashMap<>();

    private static final class Counter {
        long used;
        long reserved;
    }

    /**
     * @param rotationWanted called (cheaply, possibly often) when a version has reached the
     *                       rotation limit; the lifecycle scheduler then rotates the key
     */
    public UsageMeter(RegistryStore registry, long rotationLimit, Runnable rotationWanted) {
        if (rotationLimit < 16) {
            throw new IllegalArgumentException("rotation limit too small");
        }
        this.registry = registry;
        this.rotationLimit = rotationLimit;
        this.hardLimit = 2 * rotationLimit;
        this.block = Math.max(1, Math.min(65536, rotationLimit / 64));
        this.rotationWanted = rotationWanted;
    }

    public long rotationLimit() {
        return rotationLimit;
    }

    /** Counts {@code n} encryptions about to be made with this version, reserving as needed. */
    public void acquire(KeyRecord key, KeyVersion v, int n) throws KmsError {
        Counter c = counters.computeIfAbsent(key.name() + "#" + v.version(), k -> {
            Counter fresh = new Counter();
            fresh.used = v.encryptionsReserved(); // unknown use before a restart counts as used
            fresh.reserved = v.encryptionsReserved();
            return fresh;
        });
        boolean wantRotation;
        synchronized (c) {
            if (c.used + n > hardLimit) {
                rotationWanted.run();
                throw new KmsError.KeyVersionUnusable(key.name(), v.version(), v.state().name(), "version "
                        + v.version() + " of '" + key.name() + "' has made " + c.used
                        + " encryptions, its limit; it must be rotated first (rotation has been requested)");
            }
            if (c.used + n > c.reserved) {
                long upTo = Math.min(hardLimit, c.used + n + block);
                try {
                    registry.apply(new RegistryCommand.ReserveEncryptions(key.name(), v.version(), upTo));
                } catch (RegistryException e) {
                    throw new KmsError.Internal("could not record key usage", e);
                }
                c.reserved = upTo;
            }
            c.used += n;
            wantRotation = c.used >= rotationLimit;
        }
        if (wantRotation) {
            rotationWanted.run();
        }
    }

    /** Whether this version's recorded usage has reached the rotation limit. */
    public boolean exhausted(KeyVersion v) {
        return v.encryptionsReserved() >= rotationLimit;
    }
}
