package dev.enclavekms.testing;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.enclave.pkcs11.Pkcs11Config;
import dev.enclavekms.server.Daemon;
import dev.enclavekms.server.DaemonConfig;
import dev.enclavekms.server.varlink.ServerLimits;
import dev.enclavekms.service.PausePoints;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;

/**
 * The real daemon — service, registry, varlink server — in this JVM, on a fresh SoftHSM
 * token and a socket under {@code dir}, with a clock the test controls. {@link #restart()}
 * stops it and starts it again on the same token and registry; starting runs the lifecycle
 * sweep first (so due destructions happen), which is how tests make time pass without waiting.
 */
public final class InProcessDaemon implements AutoCloseable {
    private final TestTokens.TestToken token;
    private final DaemonConfig config;
    private final Clock clock;
    private Daemon daemon;

    private InProcessDaemon(TestTokens.TestToken token, DaemonConfig config, Clock clock) {
        this.token = token;
        this.config = config;
        this.clock = clock;
    }

    public static InProcessDaemon start(Path dir, String name, Clock clock) throws Exception {
        TestTokens.TestToken token = TestTokens.fresh(name);
        DaemonConfig config = new DaemonConfig(Pkcs11Config.DEFAULT_LIBRARY, token.label(), token.userPinFile(),
                dir.resolve("registry.db"), dir.resolve("kms.sock"), ServerLimits.DEFAULT,
                // the sweep only runs at start in these tests: restart() is the way to make time pass
                new DaemonConfig.Lifecycle(DaemonConfig.Lifecycle.DEFAULT.rotationLimit(), Duration.ofDays(365),
                        DaemonConfig.Lifecycle.DEFAULT.orphanGrace()));
        InProcessDaemon d = new InProcessDaemon(token, config, clock);
        d.daemon = Daemon.start(token.open(), config, clock, PausePoints.NONE);
        return d;
    }

    /** As {@link #start(Path, String, Clock)} under the policy file {@code policy} (docs/policy.md). */
    public static InProcessDaemon start(Path dir, String name, Clock clock, Path policy) throws Exception {
        TestTokens.TestToken token = TestTokens.fresh(name);
        DaemonConfig base = new DaemonConfig(Pkcs11Config.DEFAULT_LIBRARY, token.label(), token.userPinFile(),
                dir.resolve("registry.db"), dir.resolve("kms.sock"), ServerLimits.DEFAULT,
                new DaemonConfig.Lifecycle(DaemonConfig.Lifecycle.DEFAULT.rotationLimit(), Duration.ofDays(365),
                        DaemonConfig.Lifecycle.DEFAULT.orphanGrace()));
        DaemonConfig config = new DaemonConfig(base.pkcs11Module(), base.tokenLabel(), base.pinFile(), base.registry(),
                base.socket(), base.limits(), base.lifecycle(), policy, null, base.audit());
        InProcessDaemon d = new InProcessDaemon(token, config, clock);
        d.daemon = Daemon.start(token.open(), config, clock, PausePoints.NONE);
        return d;
    }

    public Path socket() {
        return daemon.socket();
    }

    public KmsClient client() throws IOException {
        return KmsClient.connect(socket());
    }

    public void restart() throws Exception {
        daemon.stop(Duration.ofSeconds(10));
        daemon = Daemon.start(token.open(), config, clock, PausePoints.NONE);
    }

    @Override
    public void close() {
        daemon.stop(Duration.ofSeconds(10));
    }
}
