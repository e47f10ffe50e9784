package dev.enclavekms.policy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every schema error of a policy file is reported with its line and a reason; good files parse. */
class PolicyParserTest {
    static final String GOOD = """
            version: 1
            default_tenant: shared
            tenants:
              shared:
                members: ["user:root"]
                grants:
                  - name: ops
                    to: ["user:root"]
                    methods: ["Kms.*", "Admin.*"]
                    keys: ["*"]
                    all_tenants: true
                    token_admin: true
              acme:
                key_prefixes: ["acme/"]
                members: ["user:alice", "group:acme-ml", "token:acme-ci"]
                grants:
                  - name: inference
                    methods: ["Kms.Decrypt", "Kms.GenerateDataKey"]
                    keys: ["acme/llama-*"]
                    context: {model: "llama-3-*", tier: hot}
                    purposes: [ENCRYPT]
            """;

    /** One bad file: the line the problem must be reported at, and words the reason must contain. */
    record Case(String yaml, int line, String reason) { }

    private static String tenantWith(String grantLines) {
        return "version: 1\ntenants:\n  acme:\n    grants:\n      - name: g\n" + grantLines;
    }

    static final List<Case> CASES = List.of(
            new Case("", 0, "empty"),
            new Case("version: 1\ntenants: {a: [1\n", 3, "not valid YAML"),
            new Case("- 1\n- 2\n", 1, "must be a mapping"),
            new Case("tenants:\n  a: {}\n", 1, "version: missing"),
            new Case("version: 2\ntenants:\n  a: {}\n", 1, "must be 1"),
            new Case("version: \"1\"\ntenants:\n  a: {}\n", 1, "must be 1"),
            new Case("version: 1\n", 1, "tenants: missing"),
            new Case("version: 1\ntenants: {}\n", 2, "at least one tenant"),
            new Case("version: 1\ntenants: [a]\n", 2, "mapping of tenant names"),
            new Case("version: 1\ntenant:\n  a: {}\n", 2, "unknown key 'tenant'"),
            new Case("version: 1\ntenants:\n  a:\n    session_max_ttl_seconds: 99999\n", 4, "session_max_ttl_seconds"),
            new Case("version: 1\ntenants:\n  a:\n    session_max_ttl_seconds: soon\n", 4, "session_max_ttl_seconds"),
            new Case("version: 1\nversion: 1\ntenants:\n  a: {}\n", 2, "appears twice"),
            new Case("version: 1\ntenants:\n  Acme: {}\n", 3, "tenant names"),
            new Case("version: 1\ntenants:\n  a:\n    member: []\n", 4, "unknown key 'member'"),
            new Case("version: 1\ndefault_tenant: b\ntenants:\n  a: {}\n", 2, "not a tenant"),
            new Case("version: 1\ntenants:\n  a:\n    members: [\"alice\"]\n", 4, "user:NAME"),
            new Case("version: 1\ntenants:\n  a:\n    members: [\"uid:1\"]\n", 4, "unknown identity kind"),
            new Case("version: 1\ntenants:\n  a:\n    members: [\"token:-x\"]\n", 4, "token identity names"),
            new Case("version: 1\ntenants:\n  a:\n    members: user:alice\n", 4, "must be a list"),
            new Case("version: 1\ntenants:\n  a:\n    key_prefixes: [a/]\n    members: [\"user:x\"]\n  b:\n"
                    + "    key_prefixes: [b/]\n    members: [\"user:x\"]\n", 8, "already a member of tenant 'a' (line 5)"),
            new Case("version: 1\ntenants:\n  a: {}\n  b: {}\n", 4, "at most one tenant"),
            new Case("version: 1\ntenants:\n  a:\n    key_prefixes: [acme/]\n  b:\n    key_prefixes: [acme/x]\n", 5,
                    "overlaps prefix 'acme/'"),
            new Case("version: 1\ntenants:\n  a:\n    key_prefixes: [\"/x\"]\n", 4, "not the start of a key name"),
            new Case("version: 1\ntenants:\n  a:\n    key_prefixes: []\n", 4, "key_prefixes is empty"),
            new Case("version: 1\ntenants:\n  a:\n    grants: {}\n", 4, "must be a list of grants"),
            new Case("version: 1\ntenants:\n  a:\n    grants:\n      - methods: [Kms.Status]\n", 5, "name is missing"),
            new Case(tenantWith("        methods: [Kms.Status]\n      - name: g\n        methods: [Kms.Status]\n"), 7,
                    "two grants of this name"),
            new Case(tenantWith("        method: [Kms.Status]\n"), 6, "unknown key 'method'"),
            new Case(tenantWith("        methods: [Kms.Decryptt]\n        keys: [\"*\"]\n"), 6, "unknown method 'Kms.Decryptt'"),
            new Case(tenantWith("        methods: [Decrypt]\n"), 6, "did you mean Kms.Decrypt"),
            new Case(tenantWith("        methods: [dev.enclavekms.Kms.Status]\n"), 6, "without the dev.enclavekms. prefix"),
            new Case(tenantWith("        methods: [\"Kms.Dec*\"]\n"), 6, "only method patterns"),
            new Case(tenantWith("        methods: [Admin.CreateToken]\n"), 6, "token_admin: true"),
            new Case(tenantWith("        methods: [Kms.Authenticate]\n"), 6, "open to every caller"),
            new Case(tenantWith("        methods: []\n"), 5, "grants nothing"),
            new Case(tenantWith("        methods: [Kms.Decrypt]\n"), 5, "has no keys"),
            new Case(tenantWith("        methods: [Kms.Status]\n        keys: [\"*\"]\n"), 7, "none of its methods acts on a key"),
            new Case(tenantWith("        methods: [Kms.Status]\n        purposes: [SIGN]\n"), 7, "none of its methods acts on a key"),
            new Case(tenantWith("        methods: [Kms.Sign]\n        keys: [\"*\"]\n        context: {model: x}\n"), 8,
                    "none of its methods carries a context"),
            new Case(tenantWith("        methods: [Kms.Decrypt]\n        keys: [\"a b\"]\n"), 7, "not a key-name pattern"),
            new Case(tenantWith("        methods: [Kms.Decrypt]\n        keys: [\"*\"]\n        context: {model: [a]}\n"), 8,
                    "context: model: must be a single value"),
            new Case(tenantWith("        methods: [Kms.Decrypt]\n        keys: [\"*\"]\n        context: {}\n"), 8,
                    "context is empty"),
            new Case(tenantWith("        methods: [Kms.Decrypt]\n        keys: [\"*\"]\n        purposes: [encrypt]\n"), 8,
                    "not a purpose"),
            new Case(tenantWith("        methods: [Kms.Decrypt]\n        keys: [\"*\"]\n        all_tenants: yes\n"), 8,
                    "must be true or false"),
            new Case(tenantWith("        methods: [Kms.Decrypt]\n        keys: [\"*\"]\n        reencrypt_revoked: true\n"), 8,
                    "neither Kms.ReEncrypt"),
            new Case(tenantWith("        methods: [Kms.IssueCertificate]\n        keys: [\"*\"]\n        san: [\"*.acme.internal\"]\n"), 8,
                    "write DNS:PATTERN or IP:PATTERN"),
            new Case(tenantWith("        methods: [Kms.Decrypt]\n        keys: [\"*\"]\n        san: [\"DNS:*.acme.internal\"]\n"), 8,
                    "does not cover Kms.IssueCertificate"),
            new Case(tenantWith("        methods: [Kms.IssueCertificate]\n        keys: [\"*\"]\n        max_ttl_seconds: 0\n"), 8,
                    "max_ttl_seconds must be an integer from 1 to 7776000"),
            new Case(tenantWith("        methods: [Kms.IssueCertificate]\n        keys: [\"*\"]\n        max_ttl_seconds: 1h\n"), 8,
                    "max_ttl_seconds must be an integer"),
            new Case(tenantWith("        methods: [Kms.Decrypt]\n        keys: [\"*\"]\n        max_ttl_seconds: 3600\n"), 8,
                    "max_ttl_seconds: it does not cover Kms.IssueCertificate"),
            new Case(tenantWith("        methods: [Kms.Status]\n        to: []\n"), 7, "applies to nobody"),
            new Case(tenantWith("        methods: [Kms.Status]\n        to: [\"root\"]\n"), 7, "user:NAME"),
            new Case("version: 1\ntenants:\n  a:\n    key_prefixes: [a/]\n    members: [\"user:x\"]\n  b:\n"
                    + "    grants:\n      - name: g\n        to: [\"user:x\"]\n        methods: [Kms.Status]\n", 8,
                    "member of tenant 'a', so this grant never applies"),
            new Case(tenantWith("        name: h\n        methods: [Kms.Status]\n"), 6, "appears twice"),
            new Case("version: 1\ntenants:\n  a: &x {}\n  b: *x\n", 3, "anchors and aliases"),
            new Case("version: 1\ntenants:\n  a: !!python/object {}\n", 3, "tag"),
            new Case("version: 1\ntenants:\n  a: !local {}\n", 3, "explicit tags (!local)"),
            new Case("version: 1\ntenants:\n  a:\n    <<: {members: []}\n", 4, "merge keys (<<) are not supported"));

    @Test
    void everySchemaError_isReportedWithLineAndReason() {
        List<String> failures = new ArrayList<>();
        for (Case c : CASES) {
            try {
                PolicyParser.parse(c.yaml(), "policy.yaml");
                failures.add("accepted:\n" + c.yaml());
            } catch (PolicyException e) {
                boolean found = e.problems().stream()
                        .anyMatch(p -> p.line() == c.line() && p.message().contains(c.reason()));
                if (!found) {
                    failures.add("want line " + c.line() + " '" + c.reason() + "', got " + e.problems() + " for:\n" + c.yaml());
                }
                if (!e.getMessage().startsWith("policy.yaml:")) failures.add("message without file: " + e.getMessage());
            }
        }
        assertEquals(List.of(), failures);
    }

    @Test
    void severalProblems_areAllReported_inFileLineOrder() {
        String yaml = tenantWith("        methods: [Kms.Nope]\n      - name: h\n        methods: [Kms.Status]\n"
                + "        token_admin: maybe\n");
        PolicyException e = assertThrows(PolicyException.class, () -> PolicyParser.parse(yaml, "p.yaml"));
        assertEquals(2, e.problems().size(), e.getMessage());
        assertEquals(6, e.problems().get(0).line());
        assertEquals(9, e.problems().get(1).line());
        assertEquals("p.yaml:6: tenant 'acme': grant 'g': methods: unknown method 'Kms.Nope' (methods are written"
                + " Kms.Decrypt, Admin.RotateKey, ...; see docs/policy.md)", e.getMessage().lines().findFirst().orElseThrow());
    }

    @Test
    void goodPolicy_parsesTenantsMembersAndGrants() throws Exception {
        Policy p = PolicyParser.parse(GOOD, "good.yaml");
        assertEquals("shared", p.defaultTenant());
        assertEquals(2, p.tenants().size());
        assertEquals(2, p.grantCount());
        Grant inference = p.tenant("acme").grants().getFirst();
        assertEquals(17, inference.line());
        assertEquals(java.util.Set.of("Kms.Decrypt", "Kms.GenerateDataKey"), inference.methods());
        assertTrue(inference.context().get("model").matches("llama-3-70b"));
        assertEquals("acme", p.tenantOwningName("acme/x"));
        assertEquals("shared", p.tenantOwningName("other"));
        assertEquals(64, p.sha256().length());
    }

    @Test
    void adminPatterns_neverCoverTokenOrOpenMethods() throws Exception {
        Grant ops = PolicyParser.parse(GOOD, "good.yaml").tenant("shared").grants().getFirst();
        assertTrue(ops.methods().contains("Admin.RotateKey"));
        assertTrue(ops.methods().contains("Admin.ReloadPolicy"));
        assertTrue(ops.methods().stream().noneMatch(m -> m.contains("Token") || m.equals("Kms.Authenticate")),
                ops.methods().toString());
    }

    @Test
    void load_unreadableOrNotUtf8_isOneProblemForTheFile(@TempDir Path dir) throws Exception {
        PolicyException missing = assertThrows(PolicyException.class, () -> PolicyParser.load(dir.resolve("nope.yaml")));
        assertEquals(dir.resolve("nope.yaml") + ": no such file", missing.getMessage());
        Path latin1 = dir.resolve("latin1.yaml");
        Files.write(latin1, "version: 1\n# caf\u00e9\n".getBytes(StandardCharsets.ISO_8859_1));
        assertEquals(latin1 + ": not valid UTF-8",
                assertThrows(PolicyException.class, () -> PolicyParser.load(latin1)).getMessage());
        Path big = dir.resolve("big.yaml");
        Files.write(big, new byte[PolicyParser.MAX_BYTES + 1]);
        assertTrue(assertThrows(PolicyException.class, () -> PolicyParser.load(big)).getMessage().contains("larger than"));
    }

    @Test
    void load_recordsTheFilesDigest(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("p.yaml");
        Files.writeString(f, GOOD);
        Policy p = PolicyParser.load(f);
        assertEquals(f.toString(), p.source());
        assertEquals(PolicyParser.sha256(GOOD.getBytes(StandardCharsets.UTF_8)), p.sha256());
    }

    @Test
    void builtInPolicy_parsesForOrdinaryAndOddDaemonUsers() {
        for (String user : List.of("enclave-kms", "root", "1234", "\u0000no-admin")) {
            Policy p = Policy.builtIn(user);
            assertEquals("default", p.defaultTenant());
            assertEquals(2, p.grantCount());
        }
    }
}
