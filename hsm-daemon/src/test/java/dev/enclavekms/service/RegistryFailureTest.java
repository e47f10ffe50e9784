package dev.enclavekms.service;

import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.RegistryException;
import dev.enclavekms.registry.RegistryStore;
import dev.enclavekms.registry.SqliteRegistryStore;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hardware first, registry second: when the registry write fails, the object just made
 * is destroyed again and the registry is unchanged. The store is the real SQLite store
 * behind a switch that makes its next write fail (fault injection, not a mock).
 */
class RegistryFailureTest {
    /** The real store; {@code failNext} makes the next apply fail before it reaches SQLite. */
    static final class BreakableStore implements RegistryStore {
        final SqliteRegistryStore real;
        volatile boolean failNext;

        BreakableStore(SqliteRegistryStore real) {
            this.real = real;
        }

        @Override
        public void apply(RegistryCommand command) throws RegistryException {
            if (failNext) {
                failNext = false;
                throw new RegistryException("disk full (injected)");
            }
            real.apply(command);
        }

        @Override
        public Optional<KeyRecord> find(String name) {
            return real.find(name);
        }

        @Override
        public List<KeyRecord> list() {
            return real.list();
        }

        @Override
        public Optional<dev.enclavekms.registry.TokenRecord> findToken(String id) {
            return real.findToken(id);
        }

        @Override
        public List<dev.enclavekms.registry.TokenRecord> tokens() {
            return real.tokens();
        }

        @Override
        public Map<ObjectId, Instant> trackOrphans(Set<ObjectId> present, Instant now) throws RegistryException {
            return real.trackOrphans(present, now);
        }

        @Override
        public Optional<dev.enclavekms.registry.CertificateRecord> findCertificate(String serial)
                throws RegistryException {
            return real.findCertificate(serial);
        }

        @Override
        public List<dev.enclavekms.registry.CertificateRecord> revokedCertificates(String name, int version,
                                                                                   Instant now) throws RegistryException {
            return real.revokedCertificates(name, version, now);
        }

        @Override
        public long crlNumber(String name, int version) throws RegistryException {
            return real.crlNumber(name, version);
        }

        @Override
        public void close() {
            real.close();
        }
    }

    @TempDir
    static Path dir;
    static TestTokens.TestToken token;
    static Pkcs11Enclave enclave;
    static BreakableStore store;

    @BeforeAll
    static void setUp() throws Exception {
        token = TestTokens.fresh("registry-failure");
        enclave = token.open();
        store = new BreakableStore(SqliteRegistryStore.open(dir.resolve("registry.db")));
    }

    @AfterAll
    static void tearDown() {
        store.close();
        enclave.close();
    }

    private static Set<ObjectId> objects() throws Exception {
        return enclave.list().stream().map(EnclaveObject::id).collect(Collectors.toSet());
    }

    @Test
    void createKey_registryFails_objectDestroyed_registryUnchanged() throws Exception {
        KeyAdmin admin = new KeyAdmin(enclave, store, Clock.systemUTC());
        Set<ObjectId> before = objects();
        store.failNext = true;
        assertThrows(KmsError.Internal.class, () -> admin.createKey("doomed", Purpose.ENCRYPT, null, "", List.of()));
        assertEquals(before, objects(), "no orphan left on the token");
        assertTrue(store.find("doomed").isEmpty());
        admin.createKey("doomed", Purpose.ENCRYPT, null, "", List.of()); // and the name is still free
    }

    @Test
    void rotate_registryFails_objectDestroyed_primaryUnchanged() throws Exception {
        KeyAdmin admin = new KeyAdmin(enclave, store, Clock.systemUTC());
        UsageMeter usage = new UsageMeter(store, UsageMeter.DEFAULT_ROTATION_LIMIT, () -> { });
        KeyLifecycle lifecycle = new KeyLifecycle(enclave, store, Clock.systemUTC(), usage, Duration.ofHours(24),
                PausePoints.NONE);
        admin.createKey("steady", Purpose.ENCRYPT, null, "", List.of());
        Set<ObjectId> before = objects();
        store.failNext = true;
        assertThrows(KmsError.Internal.class, () -> lifecycle.rotate("steady", false));
        assertEquals(before, objects());
        assertEquals(1, store.find("steady").orElseThrow().primaryVersion());
        assertEquals(2, lifecycle.rotate("steady", false).primaryVersion(), "the version number was not burnt");
    }
}
