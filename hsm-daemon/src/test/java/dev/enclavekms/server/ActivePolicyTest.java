package dev.enclavekms.server;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.policy.Policy;
import dev.enclavekms.policy.PolicyException;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.SqliteRegistryStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The policy in force: replaced whole by a good file, kept on a broken one; warnings about keys. */
class ActivePolicyTest {
    @TempDir
    Path dir;

    static final String GOOD = """
            version: 1
            tenants:
              acme:
                key_prefixes: ["acme/"]
                members: ["user:alice"]
              rest: {}
            """;

    @Test
    void reload_brokenFile_keepsThePolicyInForce_goodFileReplacesIt() throws Exception {
        Path file = dir.resolve("policy.yaml");
        Files.writeString(file, GOOD);
        try (SqliteRegistryStore registry = SqliteRegistryStore.open(dir.resolve("r.db"))) {
            ActivePolicy active = new ActivePolicy(file, "kms", registry);
            Policy first = active.current();

            Files.writeString(file, GOOD.replace("members:", "membrs:"));
            ActivePolicy.Reload broken = active.reload();
            assertFalse(broken.loaded());
            assertSame(first, active.current());
            assertEquals(List.of(new PolicyException.Problem(5, "tenant 'acme': unknown key 'membrs' (known:"
                    + " key_prefixes, members, grants, session_max_ttl_seconds)")), broken.problems().problems());

            Files.writeString(file, GOOD.replace("user:alice", "user:bob"));
            ActivePolicy.Reload good = active.reload();
            assertTrue(good.loaded());
            assertSame(good.policy(), active.current());
            assertEquals("acme", active.current().tenantOf(dev.enclavekms.policy.Identity.unix("bob", "x", null, null, 1)));
        }
    }

    @Test
    void start_brokenFile_isRefused() throws Exception {
        Path file = dir.resolve("policy.yaml");
        Files.writeString(file, "version: 1\n");
        try (SqliteRegistryStore registry = SqliteRegistryStore.open(dir.resolve("r.db"))) {
            PolicyException e = assertThrows(PolicyException.class, () -> new ActivePolicy(file, "kms", registry));
            assertEquals(file + ":1: tenants: missing; a policy names at least one tenant", e.getMessage());
        }
    }

    @Test
    void reload_warnsAboutKeysOfUnknownTenants_andNamesAnotherTenantOwns() throws Exception {
        Path file = dir.resolve("policy.yaml");
        Files.writeString(file, GOOD);
        try (SqliteRegistryStore registry = SqliteRegistryStore.open(dir.resolve("r.db"))) {
            registry.apply(new RegistryCommand.CreateKey("old", Purpose.ENCRYPT, KeyAlgorithm.AES_256_GCM, "", List.of(),
                    ObjectId.random(), Instant.now()));
            registry.apply(new RegistryCommand.CreateKey("acme/legacy", Purpose.ENCRYPT, KeyAlgorithm.AES_256_GCM, "",
                    List.of(), null, 30, ObjectId.random(), Instant.now(), "rest"));
            ActivePolicy active = new ActivePolicy(file, "kms", registry);
            List<String> w = active.reload().warnings();
            assertEquals(2, w.size(), w.toString());
            assertTrue(w.get(0).startsWith("key 'acme/legacy' belongs to tenant 'rest' but tenant 'acme' owns names"), w.get(0));
            assertTrue(w.get(1).startsWith("key 'old' belongs to tenant 'default', which the policy does not name"), w.get(1));
        }
    }

    @Test
    void noFile_runsTheBuiltInPolicy_reloadKeepsIt() throws Exception {
        try (SqliteRegistryStore registry = SqliteRegistryStore.open(dir.resolve("r.db"))) {
            ActivePolicy active = new ActivePolicy(null, "kms", registry);
            assertEquals("built-in", active.current().source());
            assertTrue(active.reload().loaded());
            assertEquals("built-in", active.current().source());
        }
    }
}
