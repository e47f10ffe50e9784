package dev.enclavekms.server.varlink;

import java.time.Duration;

/**
 * Every limit of the varlink server in one place.
 *
 * @param maxMessageBytes largest accepted call, NUL excluded; a DecryptBatch of 10,000
 *                        data keys is about 1.2 MB, so the default leaves room for that
 * @param maxConnections  connections served at once; more are told so and closed
 * @param idleTimeout     a connection with no complete message for this long is closed
 *                        (this also ends a message whose NUL never arrives)
 * @param maxDepth        JSON nesting limit
 */
public record ServerLimits(int maxMessageBytes, int maxConnections, Duration idleTimeout, int maxDepth) {
    public static final ServerLimits DEFAULT = new ServerLimits(16 * 1024 * 1024, 512, Duration.ofMinutes(5), 32);

    public ServerLimits {
        if (maxMessageBytes < 1024 || maxConnections < 1 || idleTimeout.isNegative() || idleTimeout.isZero() || maxDepth < 4) {
            throw new IllegalArgumentException("server limits out of range");
        }
    }

    public ServerLimits withIdleTimeout(Duration d) {
        return new ServerLimits(maxMessageBytes, maxConnections, d, maxDepth);
    }

    public ServerLimits withMaxConnections(int n) {
        return new ServerLimits(maxMessageBytes, n, idleTimeout, maxDepth);
    }

    public ServerLimits withMaxMessageBytes(int n) {
        return new ServerLimits(n, maxConnections, idleTimeout, maxDepth);
    }
}
