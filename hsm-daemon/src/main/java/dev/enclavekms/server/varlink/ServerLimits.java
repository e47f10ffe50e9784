package dev.enclavekms.server.varlink;

import java.time.Duration;

/**
 * Every limit of the varlink server in one place.
 *
 * @param maxMessageBytes       largest accepted call, NUL excluded; a DecryptBatch of 10,000
 *                              data keys is about 1.2 MB, so the default leaves room for that
 * @param maxConnections        connections served at once; more are told so and closed
 * @param idleTimeout           a connection with no complete message for this long is closed
 *                              (this also ends a message whose NUL never arrives)
 * @param maxDepth              JSON nesting limit
 * @param maxConnectionsPerUser connections one peer user may hold, so one client cannot
 *                              take every slot
 * @param maxBufferedBytes      message-buffer memory all connections together may hold
 *                              beyond a small allowance each; beyond it, large messages are
 *                              refused rather than the heap exhausted
 * @param callTimeout           how long a call into the enclave may take before the caller
 *                              is told it failed (the device may still finish it)
 */
public record ServerLimits(int maxMessageBytes, int maxConnections, Duration idleTimeout, int maxDepth,
                           int maxConnectionsPerUser, long maxBufferedBytes, Duration callTimeout) {
    public static final ServerLimits DEFAULT = new ServerLimits(4 * 1024 * 1024, 512, Duration.ofMinutes(5), 32,
            128, 256L * 1024 * 1024, Duration.ofSeconds(30));

    public ServerLimits {
        if (maxMessageBytes < 1024 || maxConnections < 1 || idleTimeout.isNegative() || idleTimeout.isZero()
                || maxDepth < 4 || maxConnectionsPerUser < 1 || maxBufferedBytes < maxMessageBytes
                || callTimeout.isNegative() || callTimeout.isZero()) {
            throw new IllegalArgumentException("server limits out of range");
        }
    }

    /** The original four limits, the others at their defaults (scaled to the message size). */
    public ServerLimits(int maxMessageBytes, int maxConnections, Duration idleTimeout, int maxDepth) {
        this(maxMessageBytes, maxConnections, idleTimeout, maxDepth, maxConnections,
                Math.max(DEFAULT.maxBufferedBytes(), (long) maxMessageBytes * 4), DEFAULT.callTimeout());
    }

    public ServerLimits withIdleTimeout(Duration d) {
        return new ServerLimits(maxMessageBytes, maxConnections, d, maxDepth, maxConnectionsPerUser, maxBufferedBytes,
                callTimeout);
    }

    public ServerLimits withMaxConnections(int n) {
        return new ServerLimits(maxMessageBytes, n, idleTimeout, maxDepth, Math.min(n, maxConnectionsPerUser),
                maxBufferedBytes, callTimeout);
    }

    public ServerLimits withMaxConnectionsPerUser(int n) {
        return new ServerLimits(maxMessageBytes, maxConnections, idleTimeout, maxDepth, n, maxBufferedBytes, callTimeout);
    }

    public ServerLimits withMaxMessageBytes(int n) {
        return new ServerLimits(n, maxConnections, idleTimeout, maxDepth, maxConnectionsPerUser,
                Math.max(maxBufferedBytes, n), callTimeout);
    }

    public ServerLimits withMaxBufferedBytes(long n) {
        return new ServerLimits(maxMessageBytes, maxConnections, idleTimeout, maxDepth, maxConnectionsPerUser, n,
                callTimeout);
    }

    public ServerLimits withCallTimeout(Duration d) {
        return new ServerLimits(maxMessageBytes, maxConnections, idleTimeout, maxDepth, maxConnectionsPerUser,
                maxBufferedBytes, d);
    }
}
