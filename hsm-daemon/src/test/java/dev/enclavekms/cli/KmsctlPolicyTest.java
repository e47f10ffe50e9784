package dev.enclavekms.cli;

import dev.enclavekms.cli.KmsctlRunner.Run;
import dev.enclavekms.client.ContractServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static dev.enclavekms.client.ContractServer.ADMIN;
import static dev.enclavekms.client.ContractServer.KMS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** kmsctl policy (offline check and explain; reload) and token commands, and --token-file. */
class KmsctlPolicyTest {
    static final String POLICY = """
            version: 1
            tenants:
              acme:
                key_prefixes: ["acme/"]
                members: ["user:alice", "token:acme-ci"]
                grants:
                  - name: inference
                    methods: ["Kms.Decrypt"]
                    keys: ["acme/llama-*"]
                    context: {tier: hot}
            """;
    static final String TOKEN = "ekms_0123456789abcdef_" + "Q".repeat(43);

    @TempDir
    Path dir;
    ContractServer server;

    @BeforeEach
    void start() throws Exception {
        server = ContractServer.start(dir.resolve("kms.sock"));
    }

    @AfterEach
    void stop() {
        server.close();
        server.assertNoViolations();
    }

    private Run kmsctl(Map<String, String> env, String... args) {
        List<String> all = new ArrayList<>(List.of("--socket", server.socket().toString()));
        all.addAll(List.of(args));
        return KmsctlRunner.run(new byte[0], env, false, false, all.toArray(String[]::new));
    }

    private Run kmsctl(String... args) {
        return kmsctl(Map.of(), args);
    }

    private Path write(String name, String text) throws Exception {
        Path f = dir.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    @Test
    void policyCheck_goodFile_exit0WithSummary() throws Exception {
        Path f = write("p.yaml", POLICY);
        Run r = kmsctl("policy", "check", f.toString());
        assertEquals(0, r.code(), r.stderr());
        assertTrue(r.stdout().startsWith(f + ": OK: 1 tenant(s), 1 grant(s), sha256 "), r.stdout());
        assertTrue(server.received().isEmpty(), "check must not talk to the daemon");
    }

    @Test
    void policyCheck_brokenFile_exit1_everyProblemWithFileAndLine() throws Exception {
        Path f = write("p.yaml", POLICY.replace("Kms.Decrypt", "Kms.Decrpyt").replace("members:", "membres:"));
        Run r = kmsctl("policy", "check", f.toString());
        assertEquals(1, r.code());
        assertEquals(List.of(f + ":5: tenant 'acme': unknown key 'membres' (known: key_prefixes, members, grants, session_max_ttl_seconds)",
                f + ":8: tenant 'acme': grant 'inference': methods: unknown method 'Kms.Decrpyt' (methods are written"
                        + " Kms.Decrypt, Admin.RotateKey, ...; see docs/policy.md)"), r.stdout().lines().toList());
        assertEquals("kmsctl: " + f + ": 2 problem(s); the file cannot be used\n", r.stderr());
        Run json = kmsctl("--json", "policy", "check", f.toString());
        assertTrue(json.stdout().contains("\"valid\":false") && json.stdout().contains("\"line\":5"), json.stdout());
    }

    @Test
    void policyExplainOffline_allowedExit0_deniedExit1_withReason() throws Exception {
        Path f = write("p.yaml", POLICY);
        Run allow = kmsctl("policy", "explain", "--file", f.toString(), "--as", "user:alice", "Kms.Decrypt",
                "acme/llama-3", "tier=hot");
        assertEquals(0, allow.code(), allow.stderr());
        assertTrue(allow.stdout().endsWith("result:   ALLOW by grant 'inference' (line 7)\n"), allow.stdout());
        Run deny = kmsctl("policy", "explain", "--file", f.toString(), "--as", "user:alice", "Kms.Decrypt",
                "acme/llama-3", "tier=cold");
        assertEquals(1, deny.code());
        assertTrue(deny.stdout().contains("grant 'inference' (line 7): requires context tier=hot; the call has tier=cold"),
                deny.stdout());
        Run stranger = kmsctl("policy", "explain", "--file", f.toString(), "--as", "user:mallory", "Kms.Decrypt", "x");
        assertEquals(1, stranger.code());
        assertTrue(stranger.stdout().contains("tenant:   none"), stranger.stdout());
        assertTrue(server.received().isEmpty(), "offline explain must not talk to the daemon");
    }

    @Test
    void policyExplain_badInput_isUsageError() throws Exception {
        Path f = write("p.yaml", POLICY);
        assertEquals(2, kmsctl("policy", "explain", "--file", f.toString(), "--as", "alice", "Kms.Decrypt").code());
        assertEquals(2, kmsctl("policy", "explain", "--file", f.toString(), "--as", "user:alice", "Kms.Nope").code());
        assertEquals(2, kmsctl("policy", "explain", "--file", f.toString(), "--as", "user:alice", "Kms.Decrypt", "k",
                "noequals").code());
    }

    @Test
    void policyExplain_viaDaemon_sendsTheQuestion() {
        server.reply(ADMIN + ".ExplainPolicy", Map.of("allowed", false, "tenant", "acme",
                "explanation", List.of("result:   DENY: because")));
        Run r = kmsctl("policy", "explain", "--as", "token:acme-ci", "--purpose", "encrypt", "Kms.Decrypt", "acme/k",
                "tier=hot");
        assertEquals(1, r.code(), r.stderr());
        assertEquals("result:   DENY: because\n", r.stdout());
        assertEquals(Map.of("identity", "token:acme-ci", "method", "Kms.Decrypt", "key", "acme/k", "purpose", "ENCRYPT",
                "context", Map.of("tier", "hot")), server.lastParameters(ADMIN + ".ExplainPolicy"));
    }

    @Test
    void policyReload_refused_exit4_listsProblems() {
        server.on(ADMIN + ".ReloadPolicy", p -> {
            throw ContractServer.error(ADMIN + ".PolicyInvalid", "file", "/etc/p.yaml", "problems",
                    List.of(Map.of("line", 3L, "message", "bad")), "message", "not loaded:\n/etc/p.yaml:3: bad");
        });
        Run r = kmsctl("policy", "reload");
        assertEquals(4, r.code());
        assertTrue(r.stderr().contains("PolicyInvalid: not loaded:\n/etc/p.yaml:3: bad"), r.stderr());
    }

    private static Map<String, Object> info(String revoked) {
        Map<String, Object> m = new java.util.LinkedHashMap<>(Map.of("id", "0123456789abcdef", "identity", "acme-ci",
                "tenant", "acme", "created", "2026-11-22T10:00:00Z", "expires", "2026-12-22T10:00:00Z"));
        if (revoked != null) m.put("revoked", revoked);
        return m;
    }

    @Test
    void tokenCreate_printsTheTokenAloneOnStdout_detailsOnStderr() {
        server.reply(ADMIN + ".CreateToken", Map.of("token", TOKEN, "info", info(null)));
        Run r = kmsctl("token", "create", "token:acme-ci", "--ttl", "30d");
        assertEquals(0, r.code(), r.stderr());
        assertEquals(TOKEN + "\n", r.stdout());
        assertTrue(r.stderr().contains("token 0123456789abcdef for token:acme-ci (tenant acme)"), r.stderr());
        assertFalse(r.stderr().contains(TOKEN));
        assertEquals(Map.of("identity", "acme-ci", "ttl_seconds", 30L * 86400), server.lastParameters(ADMIN + ".CreateToken"));
    }

    @Test
    void tokenListAndRevoke_showIdsNeverTokens() {
        server.reply(ADMIN + ".ListTokens", Map.of("tokens", List.of(info(null), info("2026-11-23T00:00:00Z"))));
        Run list = kmsctl("token", "list");
        assertEquals(0, list.code(), list.stderr());
        assertTrue(list.stdout().startsWith("ID                IDENTITY       TENANT  CREATED"), list.stdout());
        assertTrue(list.stdout().contains("revoked 2026-11-23T00:00:00Z"), list.stdout());
        server.reply(ADMIN + ".RevokeToken", Map.of("info", info("2026-11-23T00:00:00Z")));
        Run revoke = kmsctl("token", "revoke", "0123456789abcdef");
        assertEquals("revoked token 0123456789abcdef (token:acme-ci, tenant acme) at 2026-11-23T00:00:00Z\n",
                revoke.stdout());
    }

    @Test
    void tokenFile_isPresentedBeforeTheCommand() throws Exception {
        Path f = write("token", TOKEN + "\n");
        server.reply(KMS + ".Authenticate", Map.of("identity", "token:acme-ci", "tenant", "acme",
                "token_id", "0123456789abcdef", "expires", "2026-12-22T10:00:00Z"));
        server.reply(ADMIN + ".ListTokens", Map.of("tokens", List.of()));
        assertEquals(0, kmsctl(Map.of("ENCLAVE_KMS_TOKEN_FILE", f.toString()), "token", "list").code());
        assertEquals(List.of(KMS + ".Authenticate", ADMIN + ".ListTokens"),
                server.received().stream().map(ContractServer.Received::method).toList());
        assertEquals(Map.of("token", TOKEN), server.lastParameters(KMS + ".Authenticate"));
    }

    @Test
    void tokenFile_refused_exit4_withoutTheToken() throws Exception {
        Path f = write("token", TOKEN);
        server.on(KMS + ".Authenticate", p -> {
            throw ContractServer.error(KMS + ".PermissionDenied", "message", "the token is not valid");
        });
        Run r = kmsctl("--token-file", f.toString(), "token", "list");
        assertEquals(4, r.code());
        assertEquals("kmsctl: the token in " + f + " was refused: the token is not valid\n", r.stderr());
        assertFalse(r.stdout().contains(TOKEN) || r.stderr().contains(TOKEN));
    }
}
