package dev.enclavekms.policy;

import dev.enclavekms.registry.Purpose;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Decisions of one policy: who belongs where, which grant allows what, and what a denial says. */
class PolicyTest {
    static final String YAML = """
            version: 1
            tenants:
              ops:
                members: ["user:root"]
                grants:
                  - name: everything
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
                  - name: signing
                    to: ["user:alice"]
                    methods: ["Kms.Sign"]
                    keys: ["acme/release-*"]
                  - name: key-admin
                    to: ["user:alice"]
                    methods: ["Admin.*"]
                    keys: ["acme/*"]
                  - name: migrate
                    to: ["token:acme-ci"]
                    methods: ["Kms.ReEncrypt"]
                    keys: ["acme/*"]
                    reencrypt_revoked: true
                  - name: ci-tokens
                    to: ["user:alice"]
                    token_admin: true
            """;
    static final Policy P = parse();

    static Policy parse() {
        try {
            return PolicyParser.parse(YAML, "test.yaml");
        } catch (PolicyException e) {
            throw new AssertionError(e.getMessage());
        }
    }

    static final Identity ALICE = Identity.unix("alice", "staff", 1001L, 50L, 1);
    static final Identity BOB = Identity.unix("bob", "acme-ml", 1002L, 60L, 2);
    static final Identity CAROL = Identity.unix("carol", "carol", 1003L, 1003L, 3);
    static final Identity CI = Identity.unix("runner", "runner", 1004L, 1004L, 4).withToken("acme-ci", "0123456789abcdef");
    static final Identity ROOT = Identity.unix("root", "root", 0L, 0L, 5);
    static final Identity UNIDENTIFIED = Identity.unix("?", "?", null, null, 6);
    static final Map<String, String> HOT = Map.of("model", "llama-3-8b", "tier", "hot");

    record Row(Identity who, Request request, boolean allowed) { }

    @Test
    void decisions_followTheGrantsExactly() {
        List<Row> rows = List.of(
                new Row(ALICE, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "acme", HOT), true),
                new Row(BOB, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "acme", HOT), true),
                new Row(BOB, Request.key("Kms.GenerateDataKey", "acme/llama-w", Purpose.ENCRYPT, "acme", HOT), true),
                new Row(BOB, Request.key("Kms.Encrypt", "acme/llama-w", Purpose.ENCRYPT, "acme", HOT), false),
                new Row(BOB, Request.key("Kms.Decrypt", "acme/mistral", Purpose.ENCRYPT, "acme", HOT), false),
                new Row(BOB, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.SIGN, "acme", HOT), false),
                new Row(BOB, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "acme",
                        Map.of("model", "llama-3-8b", "tier", "cold")), false),
                new Row(BOB, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "acme",
                        Map.of("model", "mistral", "tier", "hot")), false),
                new Row(BOB, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "acme", Map.of("tier", "hot")), false),
                new Row(BOB, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "globex", HOT), false),
                new Row(BOB, Request.key("Kms.Sign", "acme/release-1", Purpose.SIGN, "acme", null), false),
                new Row(ALICE, Request.key("Kms.Sign", "acme/release-1", Purpose.SIGN, "acme", null), true),
                new Row(ALICE, Request.key("Admin.RotateKey", "acme/x", Purpose.SIGN, "acme", null), true),
                new Row(ALICE, Request.key("Admin.RotateKey", "globex/x", Purpose.SIGN, "globex", null), false),
                new Row(ALICE, Request.method("Admin.ReloadPolicy"), false),
                new Row(ALICE, Request.method("Admin.CreateToken"), true),
                new Row(BOB, Request.method("Admin.CreateToken"), false),
                new Row(BOB, Request.method("Kms.Status"), false),
                new Row(CAROL, Request.method("Kms.Status"), false),
                new Row(UNIDENTIFIED, Request.method("Kms.Status"), false),
                new Row(ROOT, Request.method("Admin.ReloadPolicy"), true),
                new Row(ROOT, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "acme", Map.of()), true),
                // A token identity acts with its own grants only, not its unix user's.
                new Row(CI, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "acme", HOT), true),
                new Row(CI, Request.key("Kms.ReEncrypt", "acme/old", Purpose.ENCRYPT, "acme", Map.of()).needingRevoked(), true),
                new Row(ALICE, Request.key("Kms.ReEncrypt", "acme/old", Purpose.ENCRYPT, "acme", Map.of()), false),
                new Row(BOB, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "acme", HOT).needingRevoked(), false),
                // Admission: a keyed method with no key yet asks only whether a grant covers it.
                new Row(BOB, Request.method("Kms.Decrypt"), true),
                new Row(BOB, Request.method("Kms.Sign"), false),
                // Before the lookup: name and context only.
                new Row(BOB, Request.name("Kms.Decrypt", "acme/llama-x", HOT), true),
                new Row(BOB, Request.name("Kms.Decrypt", "globex/llama-x", HOT), false));
        List<String> failures = new ArrayList<>();
        for (Row r : rows) {
            Decision d = P.decide(r.who(), r.request());
            if (d.allowed() != r.allowed()) {
                failures.add(r.who().describe() + " " + r.request() + ": want " + r.allowed() + ", trace " + d.trace()
                        + " denial " + d.denial());
            }
        }
        assertEquals(List.of(), failures);
    }

    @Test
    void membership_tokenThenUserThenGroupThenDefault() throws Exception {
        assertEquals("acme", P.tenantOf(ALICE));
        assertEquals("member user:alice", P.membership(ALICE).reason());
        assertEquals("member group:acme-ml", P.membership(BOB).reason());
        assertEquals("member token:acme-ci", P.membership(CI).reason());
        assertNull(P.membership(CAROL));
        assertNull(P.membership(UNIDENTIFIED));
        Policy withDefault = PolicyParser.parse(YAML.replace("tenants:\n", "default_tenant: ops\ntenants:\n"), "d.yaml");
        assertEquals("default_tenant", withDefault.membership(CAROL).reason());
        assertNull(withDefault.membership(UNIDENTIFIED), "an unidentified caller never falls into the default tenant");
    }

    @Test
    void denial_namesIdentityMethodKeyAndTheReason() {
        Decision d = P.decide(BOB, Request.key("Kms.Decrypt", "acme/llama-w", Purpose.ENCRYPT, "acme",
                Map.of("model", "llama-3-8b", "tier", "cold")));
        assertEquals("user:bob (group acme-ml) (tenant acme) may not call Kms.Decrypt on key 'acme/llama-w': grant"
                + " 'inference' (line 15) requires context tier=hot; the call has tier=cold", d.denial());
        assertEquals("user:bob (group acme-ml) (tenant acme) may not call Admin.RotateKey: Admin methods need an admin"
                + " grant, and no grant of the caller's covers Admin.RotateKey",
                P.decide(BOB, Request.method("Admin.RotateKey")).denial());
        assertEquals("user:carol (group carol) belongs to no tenant of the policy and there is no default_tenant;"
                + " every call is denied (Kms.Status)", P.decide(CAROL, Request.method("Kms.Status")).denial());
        assertTrue(P.decide(ALICE, Request.method("Admin.ReloadPolicy")).denial()
                .contains("acts on every tenant and needs a grant with all_tenants: true"));
        assertTrue(P.decide(BOB, Request.method("Admin.ListTokens")).denial().contains("token_admin: true"));
    }

    @Test
    void allTenantsGrant_isVisibleInTheDecision() {
        assertTrue(P.decide(ROOT, Request.name("Kms.Decrypt", "acme/x", Map.of())).allTenants());
        assertFalse(P.decide(ALICE, Request.name("Admin.RotateKey", "acme/x", null)).allTenants());
    }

    @Test
    void explain_showsTenantEveryGrantAndTheResult() {
        List<String> lines = P.explain(BOB, Request.name("Kms.Decrypt", "acme/llama-w", Map.of("model", "gpt", "tier", "hot")));
        String text = String.join("\n", lines);
        assertTrue(text.contains("identity: user:bob/group:acme-ml"), text);
        assertTrue(text.contains("tenant:   acme (member group:acme-ml)"), text);
        assertTrue(text.contains("grant 'inference' (line 15): requires context model=llama-3-*; the call has model=gpt"), text);
        assertTrue(text.contains("grant 'signing' (line 20): not given to user:bob/group:acme-ml"), text);
        assertTrue(text.contains("result:   DENY: "), text);
        List<String> allow = P.explain(BOB, Request.name("Kms.Decrypt", "acme/llama-w", HOT));
        assertEquals("result:   ALLOW by grant 'inference' (line 15)", allow.getLast());
    }

    @Test
    void explainCreateKey_outsideTheTenantsNames_isDenied() throws Exception {
        Policy p = PolicyParser.parse("""
                version: 1
                tenants:
                  acme:
                    key_prefixes: ["acme/"]
                    members: ["user:alice"]
                    grants:
                      - name: keys
                        methods: ["Admin.CreateKey"]
                        keys: ["*"]
                  rest: {}
                """, "ns.yaml");
        assertEquals("result:   DENY: key names like 'globex/k' are not tenant acme's to create (its key names start"
                + " with acme/)", p.explain(ALICE, Request.key("Admin.CreateKey", "globex/k", Purpose.ENCRYPT, null, null)).getLast());
        assertEquals("result:   ALLOW by grant 'keys' (line 7)",
                p.explain(ALICE, Request.key("Admin.CreateKey", "acme/k", Purpose.ENCRYPT, null, null)).getLast());
    }

    @Test
    void globs_matchRunsAndSingleCharactersLiterallyOtherwise() {
        assertTrue(Glob.of("llama-3-*").matches("llama-3-70b/instruct"));
        assertTrue(Glob.of("v?").matches("v1"));
        assertFalse(Glob.of("v?").matches("v10"));
        assertFalse(Glob.of("a.b").matches("axb"));
        assertTrue(Glob.of("*").matches(""));
        assertFalse(Glob.of("(a)+").matches("aa"));
        // the shapes matched without a regex: literal, literal then '*', '*' alone
        assertTrue(Glob.of("a.b").matches("a.b"));
        assertFalse(Glob.of("a.b").matches("a.bc"));
        assertFalse(Glob.of("llama-3-*").matches("llama-4-8b"));
        assertTrue(Glob.of("llama-3-*").matches("llama-3-"));
        assertTrue(Glob.of("*").matches("anything/at all"));
        assertFalse(Glob.of("a").matches(null));
        // and the others still through the regex
        assertTrue(Glob.of("a*b*").matches("axbz"));
        assertFalse(Glob.of("a*b*").matches("axz"));
        assertTrue(Glob.of("*-x").matches("m-x"));
    }
}
