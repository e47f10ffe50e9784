package dev.enclavekms.policy;

import dev.enclavekms.registry.Purpose;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Without a policy file: the rules from before the policy engine (docs/policy.md, "Without a policy file"). */
class BuiltInPolicyTest {
    static final Policy P = Policy.builtIn("enclave-kms");
    static final Identity DAEMON = Identity.unix("enclave-kms", "enclave-kms", 990L, 990L, 1);
    static final Identity ROOT = Identity.unix("root", "root", 0L, 0L, 2);
    static final Identity RUNTIME = Identity.unix("inference", "ml", 1000L, 1000L, 3);
    static final Identity UNIDENTIFIED = Identity.unix("?", "?", null, null, 4);

    @Test
    void socketUsers_useEveryKmsMethod_butNoAdminMethod() {
        assertTrue(P.decide(RUNTIME, Request.key("Kms.Decrypt", "any", Purpose.ENCRYPT, "default", Map.of())).allowed());
        assertTrue(P.decide(RUNTIME, Request.method("Kms.Status")).allowed());
        Decision d = P.decide(RUNTIME, Request.method("Admin.ListKeys"));
        assertFalse(d.allowed());
        assertEquals("user:inference (group ml) (tenant default) may not call Admin.ListKeys: Admin methods need an"
                + " admin grant, and no grant of the caller's covers Admin.ListKeys", d.denial());
        assertFalse(P.decide(RUNTIME, Request.key("Kms.ReEncrypt", "k", Purpose.ENCRYPT, "default", Map.of())
                .needingRevoked()).allowed());
    }

    @Test
    void daemonUserAndRoot_administerEverything() {
        for (Identity admin : new Identity[] {DAEMON, ROOT}) {
            assertTrue(P.decide(admin, Request.method("Admin.ReloadPolicy")).allowed());
            assertTrue(P.decide(admin, Request.method("Admin.CreateToken")).allowed());
            assertTrue(P.decide(admin, Request.key("Kms.ReEncrypt", "k", Purpose.ENCRYPT, "acme", Map.of())
                    .needingRevoked()).allowed());
        }
    }

    @Test
    void unidentifiedPeer_isDeniedEverything() {
        assertFalse(P.decide(UNIDENTIFIED, Request.method("Kms.Status")).allowed());
        assertFalse(Policy.builtIn("?").decide(UNIDENTIFIED, Request.method("Admin.ListKeys")).allowed());
    }
}
