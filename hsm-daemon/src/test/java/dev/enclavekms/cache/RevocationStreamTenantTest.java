package dev.enclavekms.cache;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.Revocation;
import dev.enclavekms.testing.InProcessDaemon;
import dev.enclavekms.testing.MutableClock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Kms.WatchRevocations is tenant-scoped: a subscriber of tenant acme hears of acme's keys
 * only, never of another tenant's, against the real daemon under a policy file.
 */
@Timeout(120)
class RevocationStreamTenantTest {

    @TempDir
    Path dir;

    @Test
    void tenantSubscriber_hearsOnlyItsTenantsVersions() throws Exception {
        Path policy = dir.resolve("policy.yaml");
        Files.writeString(policy, """
                version: 1
                tenants:
                  ops:
                    members: ["user:%s"]
                    grants:
                      - name: operators
                        methods: ["Kms.*", "Admin.*"]
                        keys: ["*"]
                        all_tenants: true
                        token_admin: true
                  acme:
                    key_prefixes: ["acme/"]
                    members: ["token:acme-app"]
                    grants:
                      - name: app
                        methods: ["Kms.Decrypt", "Kms.WatchRevocations"]
                        keys: ["acme/*"]
                """.formatted(System.getProperty("user.name")));
        try (InProcessDaemon daemon = InProcessDaemon.start(dir, "revocation-tenant",
                new MutableClock(Instant.parse("2026-11-22T00:00:00Z")), policy);
             KmsClient admin = daemon.client();
             KmsClient app = daemon.client()) {
            admin.createKey("acme/weights", "ENCRYPT");
            admin.createKey("ops-weights", "ENCRYPT");
            admin.rotateKey("acme/weights");
            admin.rotateKey("ops-weights");
            app.authenticate(admin.createToken("acme-app", Duration.ofHours(1)).token());

            List<Revocation> seen = new ArrayList<>();
            Thread t = Thread.ofVirtual().start(() -> {
                try {
                    app.watchRevocations(new KmsClient.RevocationListener() {
                        @Override
                        public void subscribed() {
                            add(seen, new Revocation("-", 0, "SUBSCRIBED"));
                        }

                        @Override
                        public void revoked(Revocation r) {
                            add(seen, r);
                        }
                    });
                } catch (Exception closed) {
                    // the test closes the connection to end the stream
                }
            });
            awaitSize(seen, 1);
            // Another tenant's change first: had it leaked, it would arrive before acme's.
            admin.revokeKeyVersion("ops-weights", 1);
            admin.revokeKeyVersion("acme/weights", 1);
            awaitSize(seen, 2);
            app.close();
            t.join(Duration.ofSeconds(10));
            assertEquals(List.of(new Revocation("-", 0, "SUBSCRIBED"), new Revocation("acme/weights", 1, "REVOKED")),
                    seen);
        }
    }

    private static void add(List<Revocation> seen, Revocation r) {
        synchronized (seen) {
            seen.add(r);
            seen.notifyAll();
        }
    }

    private static void awaitSize(List<Revocation> seen, int n) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        synchronized (seen) {
            while (seen.size() < n) {
                long left = deadline - System.nanoTime();
                if (left <= 0) throw new AssertionError("only " + seen + " within 10 s");
                TimeUnit.NANOSECONDS.timedWait(seen, left);
            }
        }
    }
}
