package dev.enclavekms.policy;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sample policy shipped in the Debian package (systemd/policy.yaml.example) is valid. */
class SamplePolicyTest {
    @Test
    void shippedSample_parsesWithItsTwoTenants() throws Exception {
        Policy p = PolicyParser.load(Path.of("../systemd/policy.yaml.example"));
        assertEquals(2, p.tenants().size());
        assertTrue(p.grantCount() >= 5, "grants: " + p.grantCount());
    }
}
