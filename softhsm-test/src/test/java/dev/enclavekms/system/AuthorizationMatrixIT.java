package dev.enclavekms.system;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.PolicyInvalidException;
import dev.enclavekms.json.Json;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The authorisation matrix with real callers under different uids: a configured daemon
 * with a three-tenant policy, a socket in a group the test users are in, and the Python
 * client run as each user with runuser. Every identity × method × key × context
 * combination below is checked against what the policy says, written out here by hand
 * (not computed by the daemon's policy engine), and every refusal of another tenant's
 * key must be the very KeyNotFound, with the very message, that a missing key gets.
 */
class AuthorizationMatrixIT {
    static final String CLIENTS = "ekms-clients";
    static final String ACME_GROUP = "ekms-acme";
    static final String ALICE = "ekms-alice";   // acme, as a user
    static final String BOB = "ekms-bob";       // acme, through his primary group
    static final String GINA = "ekms-gina";     // globex
    static final String MALLORY = "ekms-mallory"; // in no tenant; later with an acme token
    static final String CI = "mallory+token:acme-ci";

    static final String POLICY = """
            version: 1
            tenants:
              ops:
                members: ["user:root"]
                grants:
                  - name: operators
                    methods: ["Kms.*", "Admin.*"]
                    keys: ["*"]
                    all_tenants: true
                    token_admin: true
              acme:
                key_prefixes: ["acme/"]
                members: ["user:ekms-alice", "group:ekms-acme", "token:acme-ci"]
                grants:
                  - name: inference
                    methods: ["Kms.Decrypt", "Kms.GenerateDataKey"]
                    keys: ["acme/llama-*"]
                    context: {model: "llama-3-*", tier: hot}
                  - name: release-signing
                    to: ["user:ekms-alice"]
                    methods: ["Kms.Sign"]
                    keys: ["acme/release-*"]
                  - name: key-readers
                    to: ["user:ekms-alice"]
                    methods: ["Admin.DescribeKey", "Admin.ListKeys"]
                    keys: ["acme/*"]
                  - name: ci-migration
                    to: ["token:acme-ci"]
                    methods: ["Kms.Decrypt"]
                    keys: ["acme/mistral"]
              globex:
                key_prefixes: ["globex/"]
                members: ["user:ekms-gina"]
                grants:
                  - name: everything
                    methods: ["Kms.*", "Admin.DescribeKey"]
                    keys: ["*"]
            """;

    static final List<String> KEYS = List.of("acme/llama-weights", "acme/mistral", "acme/release-signer",
            "globex/llama-weights", "globex/signer", "ops-key", "acme/llama-missing", "globex/missing");
    static final Map<String, Map<String, String>> CONTEXTS = Map.of(
            "hot", Map.of("model", "llama-3-8b", "tier", "hot"),
            "cold", Map.of("model", "llama-3-8b", "tier", "cold"),
            "none", Map.of());

    @TempDir
    static Path dir;
    static UnixUsers accounts = new UnixUsers();
    static ConfiguredDaemon daemon;
    static Path socket;
    static Path python;
    static String ciToken;
    /** Ciphertexts made by root: key -> context name -> envelope (base64). */
    static final Map<String, Map<String, String>> CIPHERTEXTS = new LinkedHashMap<>();

    @BeforeAll
    static void start() throws Exception {
        accounts.group(CLIENTS);
        accounts.group(ACME_GROUP);
        accounts.user(ALICE, null, CLIENTS);
        accounts.user(BOB, ACME_GROUP, CLIENTS);
        accounts.user(GINA, null, CLIENTS);
        accounts.user(MALLORY, null, CLIENTS);
        // Other users traverse the test directory, read the client, and reach the socket
        // through its group only.
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        python = Files.createDirectories(dir.resolve("py"));
        Files.copy(Commands.repoFile("client-python/enclave_kms.py"), python.resolve("enclave_kms.py"));
        try (var in = AuthorizationMatrixIT.class.getResourceAsStream("/policy_caller.py")) {
            Files.copy(in, python.resolve("policy_caller.py"));
        }
        Files.setPosixFilePermissions(python, PosixFilePermissions.fromString("rwxr-xr-x"));
        for (String f : List.of("enclave_kms.py", "policy_caller.py")) {
            Files.setPosixFilePermissions(python.resolve(f), PosixFilePermissions.fromString("rw-r--r--"));
        }
        Path run = Files.createDirectories(dir.resolve("run"));
        Files.setPosixFilePermissions(run, PosixFilePermissions.fromString("rwxr-xr-x"));
        socket = run.resolve("kms.sock");
        Path policy = dir.resolve("policy.yaml");
        Files.writeString(policy, POLICY);
        daemon = ConfiguredDaemon.start(dir.resolve("daemon"), socket, CLIENTS, policy);

        try (KmsClient root = KmsClient.connect(socket)) {
            for (String k : KEYS) {
                if (k.endsWith("missing")) continue;
                root.createKey(k, k.contains("signer") ? "SIGN" : "ENCRYPT");
                if (k.contains("signer")) continue;
                Map<String, String> byContext = new LinkedHashMap<>();
                for (var c : CONTEXTS.entrySet()) {
                    byContext.put(c.getKey(), Base64.getEncoder().encodeToString(
                            root.encrypt(k, "s".getBytes(StandardCharsets.UTF_8), c.getValue()).ciphertext()));
                }
                CIPHERTEXTS.put(k, byContext);
            }
            ciToken = root.createToken("acme-ci", java.time.Duration.ofHours(1)).token();
        }
    }

    @AfterAll
    static void stop() throws Exception {
        if (daemon != null) daemon.close();
        accounts.removeAll();
    }

    // ------------------------------------------------------------------ the policy, by hand

    record Call(String label, String method, Map<String, Object> parameters, String key) { }

    static String tenantOf(String who) {
        return switch (who) {
            case ALICE, BOB, CI -> "acme";
            case GINA -> "globex";
            default -> null;
        };
    }

    static String keyTenant(String key) {
        return key.startsWith("acme/") ? "acme" : key.startsWith("globex/") ? "globex" : "ops";
    }

    static boolean exists(String key) {
        return !key.endsWith("missing");
    }

    static boolean signing(String key) {
        return key.contains("signer");
    }

    /** The outcome the policy prescribes: "ok" or the error's short name. */
    static String expected(String who, String method, String key, String context) {
        String tenant = tenantOf(who);
        if (tenant == null) return "PermissionDenied";
        boolean visible = key != null && exists(key) && keyTenant(key).equals(tenant);
        switch (method) {
            case "Kms.GenerateDataKey", "Kms.Decrypt" -> {
                if (who.equals(GINA)) {
                    return !visible ? "KeyNotFound" : signing(key) ? "InvalidKeyUsage" : "ok";
                }
                boolean inference = key.startsWith("acme/llama-") && context.equals("hot");
                boolean ciMigration = who.equals(CI) && method.equals("Kms.Decrypt") && key.equals("acme/mistral");
                if (!inference && !ciMigration) return "PermissionDenied";
                return visible ? "ok" : "KeyNotFound";
            }
            case "Kms.Sign" -> {
                if (who.equals(GINA)) return !visible ? "KeyNotFound" : signing(key) ? "ok" : "InvalidKeyUsage";
                if (!who.equals(ALICE) || !key.startsWith("acme/release-")) return "PermissionDenied";
                return visible ? "ok" : "KeyNotFound";
            }
            case "Admin.DescribeKey" -> {
                if (who.equals(GINA)) return visible ? "ok" : "KeyNotFound";
                if (!who.equals(ALICE) || !key.startsWith("acme/")) return "PermissionDenied";
                return visible ? "ok" : "KeyNotFound";
            }
            case "Admin.ListKeys" -> {
                return who.equals(ALICE) ? "ok" : "PermissionDenied";
            }
            case "Kms.Status" -> {
                return who.equals(GINA) ? "ok" : "PermissionDenied";
            }
            default -> throw new IllegalArgumentException(method);
        }
    }

    static List<Call> calls() {
        List<Call> out = new ArrayList<>();
        for (String k : KEYS) {
            for (var c : CONTEXTS.entrySet()) {
                Map<String, Object> p = new LinkedHashMap<>();
                p.put("key", k);
                if (!c.getValue().isEmpty()) p.put("context", c.getValue());
                out.add(new Call(c.getKey(), "Kms.GenerateDataKey", p, k));
                if (CIPHERTEXTS.containsKey(k)) {
                    Map<String, Object> d = new LinkedHashMap<>();
                    d.put("ciphertext", CIPHERTEXTS.get(k).get(c.getKey()));
                    if (!c.getValue().isEmpty()) d.put("context", c.getValue());
                    out.add(new Call(c.getKey(), "Kms.Decrypt", d, k));
                }
            }
            out.add(new Call("none", "Kms.Sign", Map.of("key", k, "digest",
                    Base64.getEncoder().encodeToString(new byte[32])), k));
            out.add(new Call("none", "Admin.DescribeKey", Map.of("name", k), k));
        }
        out.add(new Call("none", "Admin.ListKeys", Map.of(), null));
        out.add(new Call("none", "Kms.Status", Map.of(), null));
        return out;
    }

    // ------------------------------------------------------------------ running as other users

    record Result(long uid, List<Map<String, Object>> replies) { }

    /** Runs the calls as {@code user} (a separate process under its uid), presenting {@code token} first if given. */
    static Result runAs(String user, String token, List<Call> calls) throws Exception {
        StringBuilder in = new StringBuilder();
        if (token != null) {
            in.append(Json.write(Map.of("method", "dev.enclavekms.Kms.Authenticate",
                    "parameters", Map.of("token", token)))).append('\n');
        }
        for (Call c : calls) {
            in.append(Json.write(Map.of("method", "dev.enclavekms." + c.method(), "parameters", c.parameters())))
                    .append('\n');
        }
        Commands.Result r = Commands.run(List.of("runuser", "-u", user, "--", "/usr/bin/python3",
                python.resolve("policy_caller.py").toString(), python.toString(), socket.toString()), Map.of(),
                in.toString().getBytes(StandardCharsets.UTF_8)).requireSuccess();
        List<Map<String, Object>> lines = new ArrayList<>();
        for (String line : r.stdout().lines().toList()) lines.add(Json.parseObject(line));
        long uid = (Long) lines.removeFirst().get("uid");
        if (token != null) {
            Map<String, Object> auth = lines.removeFirst();
            assertTrue(auth.containsKey("reply"), "authentication failed: " + auth);
        }
        return new Result(uid, lines);
    }

    @SuppressWarnings("unchecked")
    @Test
    void everyIdentityMethodKeyAndContext_isDecidedExactlyAsThePolicySays() throws Exception {
        List<Call> calls = calls();
        List<String> failures = new ArrayList<>();
        int checked = 0;
        for (String who : List.of(ALICE, BOB, GINA, MALLORY, CI)) {
            String user = who.equals(CI) ? MALLORY : who;
            Result r = runAs(user, who.equals(CI) ? ciToken : null, calls);
            assertEquals(accounts.uid(user), r.uid(), "the caller must really run under " + user + "'s uid");
            for (int i = 0; i < calls.size(); i++) {
                Call c = calls.get(i);
                Map<String, Object> got = r.replies().get(i);
                String outcome = got.containsKey("reply") ? "ok" : ((String) got.get("error")).replaceAll(".*\\.", "");
                String want = expected(who, c.method(), c.key(), c.label());
                checked++;
                if (!outcome.equals(want)) {
                    failures.add(who + " " + c.method() + " " + c.key() + " context=" + c.label() + ": want " + want
                            + ", got " + got);
                    continue;
                }
                if (outcome.equals("KeyNotFound")) {
                    // Another tenant's key and a missing key: the same error, parameters and message.
                    Map<String, Object> p = (Map<String, Object>) got.get("parameters");
                    Map<String, Object> missing = Map.of("key", c.key(), "message", "no key named '" + c.key() + "'");
                    if (!p.equals(missing)) failures.add(who + " " + c.method() + " " + c.key() + ": " + p);
                }
                if (outcome.equals("PermissionDenied")) {
                    String m = (String) ((Map<String, Object>) got.get("parameters")).get("message");
                    String name = who.equals(CI) ? "token:acme-ci" : "user:" + who;
                    if (!m.contains(name) || !m.contains(c.method())) {
                        failures.add(who + " " + c.method() + ": denial does not name identity and method: " + m);
                    }
                }
                if (c.method().equals("Admin.ListKeys") && outcome.equals("ok")) {
                    List<Object> keys = (List<Object>) ((Map<String, Object>) got.get("reply")).get("keys");
                    TreeSet<String> names = new TreeSet<>();
                    keys.forEach(k -> names.add((String) ((Map<String, Object>) k).get("name")));
                    TreeSet<String> want2 = new TreeSet<>(List.of("acme/llama-weights", "acme/mistral", "acme/release-signer"));
                    if (!names.equals(want2)) failures.add(who + " ListKeys: " + names);
                }
                if (c.method().equals("Kms.Status") && outcome.equals("ok")) {
                    Object n = ((Map<String, Object>) got.get("reply")).get("keys");
                    if (!Long.valueOf(2).equals(n)) failures.add(who + " Status counts " + n + " keys, want its tenant's 2");
                }
            }
        }
        assertEquals(List.of(), failures, "of " + checked + " checks");
        assertTrue(checked >= 250, "matrix too small: " + checked);
    }

    @SuppressWarnings("unchecked")
    @Test
    void crossTenantKey_andMissingKey_areIndistinguishable() throws Exception {
        List<Call> pair = List.of(
                new Call("none", "Kms.GenerateDataKey", Map.of("key", "acme/llama-weights"), "acme/llama-weights"),
                new Call("none", "Kms.GenerateDataKey", Map.of("key", "acme/llama-weightz"), "acme/llama-weightz"));
        Result r = runAs(GINA, null, pair);
        Map<String, Object> other = r.replies().get(0);
        Map<String, Object> missing = r.replies().get(1);
        assertEquals(missing.get("error"), other.get("error"));
        Map<String, Object> po = new LinkedHashMap<>((Map<String, Object>) other.get("parameters"));
        Map<String, Object> pm = new LinkedHashMap<>((Map<String, Object>) missing.get("parameters"));
        assertEquals(((String) pm.get("message")).replace("weightz", "weights"), po.get("message"));
        assertEquals(pm.keySet(), po.keySet());
    }

    @Test
    void reload_brokenFileKeepsThePolicy_aGoodOneTakesEffectForTheNextCall() throws Exception {
        Path policy = dir.resolve("policy.yaml");
        List<Call> hotAndCold = List.of(
                new Call("hot", "Kms.GenerateDataKey", Map.of("key", "acme/llama-weights", "context", CONTEXTS.get("hot")),
                        "acme/llama-weights"),
                new Call("cold", "Kms.GenerateDataKey", Map.of("key", "acme/llama-weights", "context", CONTEXTS.get("cold")),
                        "acme/llama-weights"));
        try (KmsClient root = KmsClient.connect(socket)) {
            Files.writeString(policy, POLICY.replace("key_prefixes: [\"globex/\"]", "key_prefixes: \"globex/\""));
            PolicyInvalidException e = assertThrows(PolicyInvalidException.class, root::reloadPolicy);
            assertEquals(List.of(new PolicyInvalidException.Problem(32, "tenant 'globex': key_prefixes: must be a list,"
                    + " e.g. [\"a\", \"b\"]")), e.problems());
            assertEquals(policy.toString(), e.file());
            List<Map<String, Object>> before = runAs(ALICE, null, hotAndCold).replies();
            assertTrue(before.get(0).containsKey("reply") && before.get(1).containsKey("error"), before.toString());

            Files.writeString(policy, POLICY.replace("tier: hot", "tier: cold"));
            assertEquals(policy.toString(), root.reloadPolicy().source());
            List<Map<String, Object>> after = runAs(ALICE, null, hotAndCold).replies();
            assertTrue(after.get(0).containsKey("error") && after.get(1).containsKey("reply"), after.toString());
        } finally {
            Files.writeString(policy, POLICY);
            try (KmsClient root = KmsClient.connect(socket)) {
                root.reloadPolicy();
            }
        }
    }

    @Test
    void usersOutsideTheSocketGroup_cannotConnectAtAll() throws Exception {
        UnixUsers outsider = new UnixUsers();
        try {
            outsider.user("ekms-outsider", null);
            Commands.Result r = Commands.run(List.of("runuser", "-u", "ekms-outsider", "--", "/usr/bin/python3",
                    python.resolve("policy_caller.py").toString(), python.toString(), socket.toString()), Map.of(),
                    "{\"method\":\"dev.enclavekms.Kms.Status\"}\n".getBytes(StandardCharsets.UTF_8));
            assertTrue(r.exit() != 0 && r.stderr().contains("ermission denied"), r.stderr());
        } finally {
            outsider.removeAll();
        }
    }
}
