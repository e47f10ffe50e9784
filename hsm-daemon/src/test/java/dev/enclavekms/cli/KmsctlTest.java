package dev.enclavekms.cli;

import dev.enclavekms.cli.KmsctlRunner.Run;
import dev.enclavekms.client.ContractServer;
import dev.enclavekms.client.VarlinkIdl;
import dev.enclavekms.json.Json;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.enclavekms.client.ContractServer.ADMIN;
import static dev.enclavekms.client.ContractServer.KMS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * kmsctl run in-process, exactly as {@code main} runs it (same picocli tree, same
 * handlers), against a real varlink server that holds it to the IDL
 * ({@link ContractServer}): what it sends, what it prints, how it exits.
 */
@Timeout(60) // KmsClient has no read timeout: a server bug must fail a test, not hang the build
class KmsctlTest {
    private static final byte[] ENVELOPE = bytes(60, 0x80); // binary: 0x80.. is never base64 text
    private static final byte[] SECRET = "the secret\n".getBytes(StandardCharsets.UTF_8);

    @TempDir
    Path dir;
    ContractServer server;
    String socket;

    @BeforeEach
    void start() throws Exception {
        server = ContractServer.start(dir.resolve("kms.sock"));
        socket = server.socket().toString();
    }

    @AfterEach
    void stop() {
        server.close();
        server.assertNoViolations();
    }

    private Run runWith(byte[] stdin, Map<String, String> env, String... args) {
        return KmsctlRunner.run(stdin, env, false, false, args);
    }

    /** kmsctl with standard input a terminal, on which a person types {@code typed}. */
    private Run kmsctlAtTerminal(String typed, String... args) {
        List<String> all = new ArrayList<>(List.of("--socket", socket));
        all.addAll(List.of(args));
        return KmsctlRunner.run(typed.getBytes(StandardCharsets.UTF_8), Map.of(), true, true, all.toArray(String[]::new));
    }

    /** kmsctl --socket <server> args... with empty stdin. */
    private Run kmsctl(String... args) {
        return kmsctlIn(new byte[0], args);
    }

    private Run kmsctlIn(byte[] stdin, String... args) {
        List<String> all = new ArrayList<>(List.of("--socket", socket));
        all.addAll(List.of(args));
        return runWith(stdin, Map.of(), all.toArray(String[]::new));
    }

    private static byte[] bytes(int n, int fill) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (fill + i);
        return b;
    }

    private static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    private static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    private static Map<String, Object> parseJson(String s) throws Exception {
        return Json.parseObject(s.strip());
    }

    private static Map<String, Object> statusReply() {
        return map("version", "0.1.0", "uptime_seconds", 93784L,
                "enclave", map("kind", "pkcs11", "label", "enclave-kms", "manufacturer", "SoftHSM project",
                        "model", "SoftHSM v2", "serial", "1a2b3c"),
                "keys", 3L, "key_versions", 5L, "orphans", List.of(), "missing", List.of("0a07", "0a08"));
    }

    private static Map<String, Object> keyReply(String description) {
        return map("key", map("name", "model-weights", "purpose", "ENCRYPT", "algorithm", "AES_256_GCM",
                "description", description, "created", "2026-01-02T03:04:05Z", "primary_version", 2L,
                "required_context", List.of("model"), "destroy_wait_days", 30L, "versions", List.of(
                        map("version", 1L, "state", "DISABLED", "created", "2026-01-02T03:04:05Z",
                                "state_changed", "2026-02-10T00:00:00Z", "encryptions", 1042L, "object_id", "0a01"),
                        map("version", 2L, "state", "ENABLED", "created", "2026-02-02T03:04:05Z",
                                "state_changed", "2026-02-02T03:04:05Z", "encryptions", 17L, "object_id", "0a02"))));
    }

    /** A key with versions in every state, a rotation period and a sub-second time, as the lifecycle methods answer. */
    private static Map<String, Object> lifecycleReply() {
        return map("key", map("name", "model-weights", "purpose", "ENCRYPT", "algorithm", "AES_256_GCM",
                "description", "", "created", "2026-01-01T00:00:00Z", "primary_version", 5L,
                "required_context", List.of(), "rotation_period_seconds", 7776000L,
                "next_rotation", "2026-07-01T00:00:00Z", "destroy_wait_days", 14L, "versions", List.of(
                        map("version", 1L, "state", "DESTROYED", "created", "2026-01-01T00:00:00Z",
                                "state_changed", "2026-03-15T00:00:00Z", "destroy_at", "2026-03-15T00:00:00Z",
                                "encryptions", 1073741824L, "object_id", "0a01"),
                        map("version", 2L, "state", "DESTROY_SCHEDULED", "created", "2026-02-01T00:00:00Z",
                                "state_changed", "2026-04-01T00:00:00.250Z", "destroy_at", "2026-04-15T00:00:00.250Z",
                                "encryptions", 10L, "object_id", "0a02"),
                        map("version", 3L, "state", "REVOKED", "created", "2026-03-01T00:00:00Z",
                                "state_changed", "2026-03-02T00:00:00Z", "encryptions", 3L, "object_id", "0a03"),
                        map("version", 4L, "state", "ENABLED", "created", "2026-04-01T00:00:00Z",
                                "state_changed", "2026-04-01T00:00:00Z", "encryptions", 99L, "object_id", "0a04"),
                        map("version", 5L, "state", "ENABLED", "created", "2026-05-01T00:00:00Z",
                                "state_changed", "2026-05-01T00:00:00Z", "encryptions", 0L, "object_id", "0a05"))));
    }

    private static final String LIFECYCLE_TABLE = """
            VERSION  STATE              PRIMARY  CREATED               CHANGED               DESTROY AT            ENCRYPTIONS
            1        DESTROYED                   2026-01-01T00:00:00Z  2026-03-15T00:00:00Z  2026-03-15T00:00:00Z  1073741824
            2        DESTROY_SCHEDULED           2026-02-01T00:00:00Z  2026-04-01T00:00:00Z  2026-04-15T00:00:00Z  10
            3        REVOKED                     2026-03-01T00:00:00Z  2026-03-02T00:00:00Z  -                     3
            4        ENABLED                     2026-04-01T00:00:00Z  2026-04-01T00:00:00Z  -                     99
            5        ENABLED            *        2026-05-01T00:00:00Z  2026-05-01T00:00:00Z  -                     0
            """;

    private void replyDecrypt() {
        server.reply(KMS + ".Decrypt", map("key", "api-tokens", "version", 3L, "plaintext", b64(SECRET)));
    }

    // ------------------------------------------------------------------ status, info

    @Test
    void status_default_printsAlignedFields() {
        server.reply(KMS + ".Status", statusReply());

        Run r = kmsctl("status");

        assertEquals(0, r.code(), r.stderr());
        assertEquals("""
                version:         0.1.0
                uptime:          1d 2h 3m 4s
                enclave:         pkcs11
                  label:         enclave-kms
                  manufacturer:  SoftHSM project
                  model:         SoftHSM v2
                  serial:        1a2b3c
                keys:            3
                key versions:    5
                orphans:         none
                missing:         0a07, 0a08
                """, r.stdout());
        assertEquals("", r.stderr());
    }

    @Test
    void status_json_printsTheReplyAsJson() throws Exception {
        server.reply(KMS + ".Status", statusReply());

        Run r = kmsctl("--json", "status");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(statusReply(), parseJson(r.stdout()));
    }

    @Test
    void info_default_listsInterfaces() {
        Run r = kmsctl("info");

        assertEquals(0, r.code(), r.stderr());
        assertTrue(r.stdout().contains("interfaces:  org.varlink.service, dev.enclavekms.Kms, dev.enclavekms.Admin\n"),
                r.stdout());
        assertTrue(r.stdout().startsWith("vendor:      enclave-kms test\n"), r.stdout());
    }

    @Test
    void describeInterface_printsTheIdl() {
        Run r = kmsctl("describe-interface", "dev.enclavekms.Admin");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(VarlinkIdl.resourceText(ADMIN), r.stdout());
    }

    @Test
    void describeInterface_unknown_exits4WithErrorName() {
        Run r = kmsctl("describe-interface", "com.example.Nope");

        assertEquals(4, r.code());
        assertEquals("kmsctl: InterfaceNotFound: this service has no interface com.example.Nope;"
                + " org.varlink.service.GetInfo lists its interfaces\n", r.stderr());
    }

    // ------------------------------------------------------------------------ keys

    @Test
    void keyCreate_sendsPurposeAlgorithmAndRequiredContext_printsTheKey() {
        server.reply(ADMIN + ".CreateKey", keyReply("weights of llama"));

        Run r = kmsctl("key", "create", "model-weights", "--purpose", "encrypt", "--algorithm", "AES_256_GCM",
                "--description", "weights of llama", "--require-context", "model", "--require-context", "tier");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("name", "model-weights", "purpose", "ENCRYPT", "algorithm", "AES_256_GCM",
                "description", "weights of llama", "required_context", List.of("model", "tier")),
                server.lastParameters(ADMIN + ".CreateKey"));
        assertEquals("""
                name:              model-weights
                purpose:           ENCRYPT
                algorithm:         AES_256_GCM
                description:       weights of llama
                created:           2026-01-02T03:04:05Z
                primary version:   2
                required context:  model
                rotation period:   off (on demand and at the usage limit only)
                next rotation:     -
                destroy wait:      30 days

                VERSION  STATE     PRIMARY  CREATED               CHANGED               DESTROY AT  ENCRYPTIONS  OBJECT ID
                1        DISABLED           2026-01-02T03:04:05Z  2026-02-10T00:00:00Z  -           1042         0a01
                2        ENABLED   *        2026-02-02T03:04:05Z  2026-02-02T03:04:05Z  -           17           0a02
                """, r.stdout());
    }

    @Test
    void keyCreate_rotationPeriodAndDestroyWait_sendsSecondsAndDays() {
        server.reply(ADMIN + ".CreateKey", keyReply(""));

        Run r = kmsctl("key", "create", "k", "--purpose", "ENCRYPT", "--rotation-period", "1d12h",
                "--destroy-wait-days", "14");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("name", "k", "purpose", "ENCRYPT", "rotation_period_seconds", 129600L,
                "destroy_wait_days", 14L), server.lastParameters(ADMIN + ".CreateKey"));
    }

    @Test
    void keyCreate_rotationPeriodWithoutUnit_exits2WithoutCalling() {
        Run r = kmsctl("key", "create", "k", "--purpose", "ENCRYPT", "--rotation-period", "90");

        assertEquals(2, r.code());
        assertTrue(r.stderr().contains("'90' is not a duration: give a number with a unit"), r.stderr());
        assertEquals(List.of(), server.received());
    }

    @Test
    void keyDescribe_lifecycleKey_showsPolicyAndEveryStateToTheSecond() {
        server.reply(ADMIN + ".DescribeKey", lifecycleReply());

        Run r = kmsctl("key", "describe", "model-weights");

        assertEquals(0, r.code(), r.stderr());
        assertTrue(r.stdout().contains("""
                rotation period:   90d
                next rotation:     2026-07-01T00:00:00Z
                destroy wait:      14 days
                """), r.stdout());
        assertTrue(r.stdout().contains("""
                VERSION  STATE              PRIMARY  CREATED               CHANGED               DESTROY AT            ENCRYPTIONS  OBJECT ID
                1        DESTROYED                   2026-01-01T00:00:00Z  2026-03-15T00:00:00Z  2026-03-15T00:00:00Z  1073741824   0a01
                2        DESTROY_SCHEDULED           2026-02-01T00:00:00Z  2026-04-01T00:00:00Z  2026-04-15T00:00:00Z  10           0a02
                """), r.stdout());
    }

    @Test
    void keyVersions_printsOnlyTheVersionsTable() {
        server.reply(ADMIN + ".DescribeKey", lifecycleReply());

        Run r = kmsctl("key", "versions", "model-weights");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(LIFECYCLE_TABLE, r.stdout());
        assertEquals(map("name", "model-weights"), server.lastParameters(ADMIN + ".DescribeKey"));
    }

    @Test
    void keyVersions_json_printsTheReplyAsJson() throws Exception {
        server.reply(ADMIN + ".DescribeKey", lifecycleReply());

        assertEquals(lifecycleReply(), parseJson(kmsctl("--json", "key", "versions", "model-weights").stdout()));
    }

    @Test
    void keyRotate_default_sendsNameOnly_printsVersionsTable() {
        server.reply(ADMIN + ".RotateKey", lifecycleReply());

        Run r = kmsctl("key", "rotate", "model-weights");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("name", "model-weights"), server.lastParameters(ADMIN + ".RotateKey"));
        assertEquals(LIFECYCLE_TABLE, r.stdout());
    }

    @Test
    void keyRotate_pending_sendsPendingTrue() {
        server.reply(ADMIN + ".RotateKey", lifecycleReply());

        assertEquals(0, kmsctl("key", "rotate", "release", "--pending").code());

        assertEquals(map("name", "release", "pending", true), server.lastParameters(ADMIN + ".RotateKey"));
    }

    @Test
    void keyVersionCommands_sendNameAndVersion_printVersionsTable() {
        Map<String, String> methods = new LinkedHashMap<>();
        methods.put("promote", "PromoteKeyVersion");
        methods.put("enable", "EnableKeyVersion");
        methods.put("disable", "DisableKeyVersion");
        methods.put("cancel-destruction", "CancelKeyVersionDestruction");
        methods.put("revoke", "RevokeKeyVersion");
        methods.put("schedule-destruction", "ScheduleKeyVersionDestruction");
        for (var m : methods.entrySet()) {
            server.reply(ADMIN + "." + m.getValue(), lifecycleReply());

            List<String> args = new ArrayList<>(List.of("key", m.getKey(), "model-weights", "4"));
            if (m.getKey().equals("revoke") || m.getKey().equals("schedule-destruction")) args.add("--yes");

            Run r = kmsctl(args.toArray(String[]::new));

            assertEquals(0, r.code(), m.getKey() + ": " + r.stderr());
            assertEquals(map("name", "model-weights", "version", 4L), server.lastParameters(ADMIN + "." + m.getValue()),
                    m.getKey());
            assertEquals(LIFECYCLE_TABLE, r.stdout(), m.getKey());
        }
    }

    @Test
    void keyEnable_revokedVersion_exits4NamingTheState() {
        server.on(ADMIN + ".EnableKeyVersion", p -> { throw ContractServer.error(ADMIN + ".InvalidStateTransition",
                "key", "model-weights", "version", 3L, "state", "REVOKED",
                "message", "version 3 of key 'model-weights' is REVOKED; revocation cannot be undone"); });

        Run r = kmsctl("key", "enable", "model-weights", "3");

        assertEquals(4, r.code());
        assertEquals("kmsctl: InvalidStateTransition: version 3 of key 'model-weights' is REVOKED; revocation "
                + "cannot be undone\n", r.stderr());
    }

    @Test
    void keyVersion_notANumber_exits2() {
        Run r = kmsctl("key", "disable", "model-weights", "two");

        assertEquals(2, r.code());
        assertEquals(List.of(), server.received());
    }

    @Test
    void keyRevoke_noTerminalNoYes_exits2WithoutCalling() {
        Run r = kmsctl("key", "revoke", "model-weights", "3");

        assertEquals(2, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: refusing to revoke version 3 of key 'model-weights' without "
                + "confirmation: add --yes (standard input is not a terminal to ask on)\n"), r.stderr());
        assertEquals(List.of(), server.received());
    }

    @Test
    void keyRevoke_terminalAnswerYes_asksThenRevokes() {
        server.reply(ADMIN + ".RevokeKeyVersion", lifecycleReply());

        Run r = kmsctlAtTerminal("yes\n", "key", "revoke", "model-weights", "3");

        assertEquals(0, r.code(), r.stderr());
        assertTrue(r.stderr().contains("cannot be undone"), r.stderr());
        assertTrue(r.stderr().endsWith("Type 'yes' to revoke version 3 of key 'model-weights': "), r.stderr());
        assertEquals(map("name", "model-weights", "version", 3L), server.lastParameters(ADMIN + ".RevokeKeyVersion"));
        assertEquals(LIFECYCLE_TABLE, r.stdout());
    }

    @Test
    void keyRevoke_terminalAnswerOtherThanYes_exits1WithoutCalling() {
        for (String typed : List.of("y\n", "no\n", "")) {
            Run r = kmsctlAtTerminal(typed, "key", "revoke", "model-weights", "3");

            assertEquals(1, r.code(), typed);
            assertTrue(r.stderr().endsWith("kmsctl: not confirmed; nothing was changed\n"), r.stderr());
        }
        assertEquals(List.of(), server.received());
    }

    @Test
    void keyRevoke_yesAtTerminal_doesNotAsk() {
        server.reply(ADMIN + ".RevokeKeyVersion", lifecycleReply());

        Run r = kmsctlAtTerminal("", "key", "revoke", "model-weights", "3", "--yes");

        assertEquals(0, r.code(), r.stderr());
        assertEquals("", r.stderr());
    }

    @Test
    void keyScheduleDestruction_noTerminalNoYes_exits2WithoutCalling() {
        Run r = kmsctl("key", "schedule-destruction", "model-weights", "2", "--wait-days", "14");

        assertEquals(2, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: refusing to schedule the destruction of version 2 of key "
                + "'model-weights' without confirmation: add --yes"), r.stderr());
        assertEquals(List.of(), server.received());
    }

    @Test
    void keyScheduleDestruction_waitDaysAtTerminal_asksNamingTheWaitAndHowToCancel() {
        server.reply(ADMIN + ".ScheduleKeyVersionDestruction", lifecycleReply());

        Run r = kmsctlAtTerminal("YES\n", "key", "schedule-destruction", "model-weights", "2", "--wait-days", "14");

        assertEquals(0, r.code(), r.stderr());
        assertTrue(r.stderr().startsWith("After 14 days, version 2 of key 'model-weights' is destroyed"), r.stderr());
        assertTrue(r.stderr().contains("'kmsctl key cancel-destruction model-weights 2' undoes this"), r.stderr());
        assertEquals(map("name", "model-weights", "version", 2L, "wait_days", 14L),
                server.lastParameters(ADMIN + ".ScheduleKeyVersionDestruction"));
    }

    @Test
    void keyUpdate_rotationOffAndDestroyWait_sendsBoth_printsPolicyAndTable() {
        server.reply(ADMIN + ".UpdateKeyPolicy", lifecycleReply());

        Run r = kmsctl("key", "update", "model-weights", "--rotation-period", "0", "--destroy-wait-days", "14");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("name", "model-weights", "rotation_period_seconds", 0L, "destroy_wait_days", 14L),
                server.lastParameters(ADMIN + ".UpdateKeyPolicy"));
        assertEquals("""
                name:             model-weights
                rotation period:  90d
                next rotation:    2026-07-01T00:00:00Z
                destroy wait:     14 days

                """ + LIFECYCLE_TABLE, r.stdout());
    }

    @Test
    void keyUpdate_rotationPeriodOnly_sendsItInSeconds() {
        server.reply(ADMIN + ".UpdateKeyPolicy", lifecycleReply());

        assertEquals(0, kmsctl("key", "update", "model-weights", "--rotation-period", "12h").code());

        assertEquals(map("name", "model-weights", "rotation_period_seconds", 43200L),
                server.lastParameters(ADMIN + ".UpdateKeyPolicy"));
    }

    @Test
    void keyUpdate_nothingToChange_exits2WithoutCalling() {
        Run r = kmsctl("key", "update", "model-weights");

        assertEquals(2, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: nothing to update"), r.stderr());
        assertEquals(List.of(), server.received());
    }

    @Test
    void keyCreate_minimal_sendsOnlyNameAndPurpose() {
        server.reply(ADMIN + ".CreateKey", keyReply(""));

        assertEquals(0, kmsctl("key", "create", "k", "--purpose", "SIGN").code());

        assertEquals(map("name", "k", "purpose", "SIGN"), server.lastParameters(ADMIN + ".CreateKey"));
    }

    @Test
    void keyCreate_withoutPurpose_exits2WithoutCalling() {
        Run r = kmsctl("key", "create", "k");

        assertEquals(2, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: Missing required option: '--purpose=ENCRYPT|SIGN|CERT_AUTHORITY|TLS_SERVER|TLS_CLIENT'\n"), r.stderr());
        assertTrue(r.stderr().contains("Try 'kmsctl key create --help'"), r.stderr());
        assertEquals(List.of(), server.received());
    }

    @Test
    void keyDescribe_json_printsTheReplyAsJson() throws Exception {
        server.reply(ADMIN + ".DescribeKey", keyReply("d"));

        Run r = kmsctl("--json", "key", "describe", "model-weights");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(keyReply("d"), parseJson(r.stdout()));
        assertEquals(map("name", "model-weights"), server.lastParameters(ADMIN + ".DescribeKey"));
    }

    @Test
    void keyDescribe_descriptionWithControlCharacters_isEscaped() {
        server.reply(ADMIN + ".DescribeKey", keyReply("evil\u001b[2Jtext"));

        Run r = kmsctl("key", "describe", "model-weights");

        assertTrue(r.stdout().contains("description:       evil\\x1b[2Jtext\n"), r.stdout());
    }

    @Test
    void keyList_default_printsAlignedTable() {
        server.reply(ADMIN + ".ListKeys", map("keys", List.of(
                map("name", "model-weights", "purpose", "ENCRYPT", "algorithm", "AES_256_GCM", "primary_version", 2L,
                        "versions", 2L),
                map("name", "release", "purpose", "SIGN", "algorithm", "EC_P256_SHA256", "primary_version", 1L,
                        "versions", 1L))));

        Run r = kmsctl("key", "list");

        assertEquals(0, r.code(), r.stderr());
        assertEquals("""
                NAME           PURPOSE  ALGORITHM       PRIMARY  VERSIONS
                model-weights  ENCRYPT  AES_256_GCM     2        2
                release        SIGN     EC_P256_SHA256  1        1
                """, r.stdout());
    }

    @Test
    void keyList_hidesTheDaemonsOwnKeysUnlessAll() {
        server.reply(ADMIN + ".ListKeys", map("keys", List.of(
                map("name", "_audit/hmac", "purpose", "MAC", "algorithm", "HMAC_SHA256", "primary_version", 1L,
                        "versions", 1L),
                map("name", "release", "purpose", "SIGN", "algorithm", "ED25519", "primary_version", 1L,
                        "versions", 1L))));

        Run plain = kmsctl("key", "list");
        Run all = kmsctl("key", "list", "--all");

        assertEquals(0, plain.code(), plain.stderr());
        assertEquals("""
                NAME     PURPOSE  ALGORITHM  PRIMARY  VERSIONS
                release  SIGN     ED25519    1        1
                """, plain.stdout());
        assertEquals(0, all.code(), all.stderr());
        assertTrue(all.stdout().contains("_audit/hmac  MAC"), all.stdout());
    }

    @Test
    void keyList_json_printsTheReplyAsJson() throws Exception {
        Map<String, Object> reply = map("keys", List.of(map("name", "a", "purpose", "SIGN", "algorithm", "ED25519",
                "primary_version", 1L, "versions", 1L)));
        server.reply(ADMIN + ".ListKeys", reply);

        assertEquals(reply, parseJson(kmsctl("key", "list", "--json").stdout()));
    }

    @Test
    void keyAlone_exits2NamingSubcommands() {
        Run r = kmsctl("key");

        assertEquals(2, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: missing subcommand: one of create, list, describe, versions, update, "
                + "rotate, promote, enable, disable, revoke, schedule-destruction, cancel-destruction\n"), r.stderr());
    }

    // -------------------------------------------------------------------- data keys

    @Test
    void datakeyGenerate_default_printsPlaintextAndCiphertextBase64() {
        server.reply(KMS + ".GenerateDataKey", map("key", "model-weights", "version", 2L,
                "plaintext", b64(bytes(32, 1)), "ciphertext", b64(ENVELOPE)));

        Run r = kmsctl("datakey", "generate", "model-weights", "--context", "model=llama-3-8b");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("key", "model-weights", "context", map("model", "llama-3-8b")),
                server.lastParameters(KMS + ".GenerateDataKey"));
        assertEquals("key:         model-weights\nversion:     2\nplaintext:   " + b64(bytes(32, 1))
                + "\nciphertext:  " + b64(ENVELOPE) + "\n", r.stdout());
    }

    @Test
    void datakeyGenerate_bytes_sendsBytes() {
        server.reply(KMS + ".GenerateDataKey", map("key", "k", "version", 1L, "plaintext", b64(bytes(16, 1)),
                "ciphertext", b64(ENVELOPE)));

        assertEquals(0, kmsctl("datakey", "generate", "k", "--bytes", "16").code());

        assertEquals(map("key", "k", "bytes", 16L), server.lastParameters(KMS + ".GenerateDataKey"));
    }

    @Test
    void datakeyGenerate_count_callsGenerateDataKeysAndPrintsTable() {
        server.reply(KMS + ".GenerateDataKeys", map("key", "k", "version", 4L, "keys", List.of(
                map("plaintext", b64(bytes(32, 1)), "ciphertext", b64(bytes(8, 1))),
                map("plaintext", b64(bytes(32, 2)), "ciphertext", b64(bytes(8, 2))))));

        Run r = kmsctl("datakey", "generate", "k", "--count", "2", "--context", "tier=gold");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("key", "k", "count", 2L, "context", map("tier", "gold")),
                server.lastParameters(KMS + ".GenerateDataKeys"));
        String pad = " ".repeat(b64(bytes(32, 1)).length() - "PLAINTEXT".length());
        assertEquals("key:      k\nversion:  4\n\nPLAINTEXT" + pad + "  CIPHERTEXT\n"
                + b64(bytes(32, 1)) + "  " + b64(bytes(8, 1)) + "\n"
                + b64(bytes(32, 2)) + "  " + b64(bytes(8, 2)) + "\n", r.stdout());
    }

    @Test
    void datakeyGenerate_countJson_printsTheReplyAsJson() throws Exception {
        Map<String, Object> reply = map("key", "k", "version", 4L, "keys", List.of(
                map("plaintext", b64(bytes(32, 1)), "ciphertext", b64(bytes(8, 1)))));
        server.reply(KMS + ".GenerateDataKeys", reply);

        assertEquals(reply, parseJson(kmsctl("--json", "datakey", "generate", "k", "--count", "1").stdout()));
    }

    // ---------------------------------------------------------------------- context

    @Test
    void context_repeatedWithEqualsInValue_sendsEveryEntry() {
        server.reply(KMS + ".Encrypt", map("key", "k", "version", 1L, "ciphertext", b64(ENVELOPE)));

        Run r = kmsctl("encrypt", "k", "--text", "x", "--context", "model=llama", "--context", "q=a=b==",
                "--context", "empty=");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("model", "llama", "q", "a=b==", "empty", ""), server.lastParameters(KMS + ".Encrypt").get("context"));
    }

    @Test
    void context_emptyKey_exits2BeforeConnecting() {
        Run r = runWith(new byte[0], Map.of(), "--socket", dir.resolve("absent.sock").toString(),
                "encrypt", "k", "--text", "x", "--context", "=v");

        assertEquals(2, r.code());
        assertTrue(r.stderr().contains("'=v' has an empty key"), r.stderr());
    }

    @Test
    void context_withoutEquals_exits2() {
        Run r = kmsctl("decrypt", b64(ENVELOPE), "--context", "model");

        assertEquals(2, r.code());
        assertTrue(r.stderr().contains("'model' is not KEY=VALUE"), r.stderr());
        assertEquals(List.of(), server.received());
    }

    @Test
    void context_sameKeyTwice_exits2() {
        Run r = kmsctl("encrypt", "k", "--text", "x", "--context", "a=1", "--context", "a=2");

        assertEquals(2, r.code());
        assertTrue(r.stderr().contains("key 'a' given twice"), r.stderr());
        assertEquals(List.of(), server.received());
    }

    // --------------------------------------------------------------------- encrypt

    @Test
    void encrypt_text_printsCiphertextBase64() {
        server.reply(KMS + ".Encrypt", map("key", "api-tokens", "version", 3L, "ciphertext", b64(ENVELOPE)));

        Run r = kmsctl("encrypt", "api-tokens", "--text", "héllo");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(b64(ENVELOPE) + "\n", r.stdout());
        assertEquals(map("key", "api-tokens", "plaintext", b64("héllo".getBytes(StandardCharsets.UTF_8))),
                server.lastParameters(KMS + ".Encrypt"));
    }

    @Test
    void encrypt_stdin_encryptsItsBytes() {
        server.reply(KMS + ".Encrypt", map("key", "k", "version", 1L, "ciphertext", b64(ENVELOPE)));

        assertEquals(0, kmsctlIn(SECRET, "encrypt", "k").code());

        assertEquals(b64(SECRET), server.lastParameters(KMS + ".Encrypt").get("plaintext"));
    }

    @Test
    void encrypt_inFileAndOut_writesBinaryEnvelopeAndSummary() throws Exception {
        server.reply(KMS + ".Encrypt", map("key", "k", "version", 1L, "ciphertext", b64(ENVELOPE)));
        Path in = Files.write(dir.resolve("secret.txt"), SECRET);
        Path out = dir.resolve("secret.enc");

        Run r = kmsctl("encrypt", "k", "--in", in.toString(), "--out", out.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals(b64(SECRET), server.lastParameters(KMS + ".Encrypt").get("plaintext"));
        assertArrayEquals(ENVELOPE, Files.readAllBytes(out));
        assertEquals("key:         k\nversion:     1\nciphertext:  written to " + out + " (60 bytes)\n", r.stdout());
    }

    @Test
    void encrypt_json_printsTheReplyAsJson() throws Exception {
        Map<String, Object> reply = map("key", "k", "version", 1L, "ciphertext", b64(ENVELOPE));
        server.reply(KMS + ".Encrypt", reply);

        assertEquals(reply, parseJson(kmsctl("--json", "encrypt", "k", "--text", "x").stdout()));
    }

    @Test
    void encrypt_inAndText_exits2() {
        Run r = kmsctl("encrypt", "k", "--text", "x", "--in", "f");

        assertEquals(2, r.code());
        assertTrue(r.stderr().contains("mutually exclusive"), r.stderr());
    }

    @Test
    void encrypt_missingInFile_exits1NamingTheFile() {
        Path missing = dir.resolve("missing.txt");

        Run r = kmsctl("encrypt", "k", "--in", missing.toString());

        assertEquals(1, r.code());
        assertEquals("kmsctl: cannot read " + missing + ": no such file\n", r.stderr());
        assertEquals(List.of(), server.received());
    }

    // --------------------------------------------------------------------- decrypt

    @Test
    void decrypt_base64Argument_writesRawPlaintextToStdout() {
        replyDecrypt();

        Run r = kmsctl("decrypt", b64(ENVELOPE), "--context", "model=m");

        assertEquals(0, r.code(), r.stderr());
        assertArrayEquals(SECRET, r.out());
        assertEquals(map("ciphertext", b64(ENVELOPE), "context", map("model", "m")), server.lastParameters(KMS + ".Decrypt"));
    }

    @Test
    void decrypt_binaryFileAndBase64File_sendTheSameEnvelope() throws Exception {
        replyDecrypt();
        Path binary = Files.write(dir.resolve("e.bin"), ENVELOPE);
        Path text = Files.writeString(dir.resolve("e.b64"), b64(ENVELOPE) + "\n");

        assertEquals(0, kmsctl("decrypt", "--in", binary.toString()).code());
        assertEquals(b64(ENVELOPE), server.lastParameters(KMS + ".Decrypt").get("ciphertext"));
        assertEquals(0, kmsctl("decrypt", "--in", text.toString()).code());
        assertEquals(b64(ENVELOPE), server.lastParameters(KMS + ".Decrypt").get("ciphertext"));
    }

    @Test
    void decrypt_stdinBase64_andBase64Flag_printsBase64() {
        replyDecrypt();

        Run r = kmsctlIn((b64(ENVELOPE) + "\n").getBytes(StandardCharsets.US_ASCII), "decrypt", "--base64");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(b64(SECRET) + "\n", r.stdout());
        assertEquals(b64(ENVELOPE), server.lastParameters(KMS + ".Decrypt").get("ciphertext"));
    }

    @Test
    void decrypt_out_writesPlaintextToOwnerOnlyFile() throws Exception {
        replyDecrypt();
        Path out = dir.resolve("plain");

        Run r = kmsctl("decrypt", b64(ENVELOPE), "--out", out.toString());

        assertEquals(0, r.code(), r.stderr());
        assertArrayEquals(SECRET, Files.readAllBytes(out));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        assertFalse(r.stdout().contains(b64(SECRET)) || r.stdout().contains("the secret"), r.stdout());
        assertTrue(r.stdout().contains("plaintext:  written to " + out + " (11 bytes)"), r.stdout());
    }

    @Test
    void decrypt_json_printsTheReplyAsJson() throws Exception {
        replyDecrypt();

        assertEquals(map("key", "api-tokens", "version", 3L, "plaintext", b64(SECRET)),
                parseJson(kmsctl("--json", "decrypt", b64(ENVELOPE)).stdout()));
    }

    @Test
    void decrypt_argumentNotBase64_exits2() {
        Run r = kmsctl("decrypt", "not*base64");

        assertEquals(2, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: CIPHERTEXT_B64 is not valid base64\n"), r.stderr());
    }

    @Test
    void decrypt_argumentAndIn_exits2() {
        assertEquals(2, kmsctl("decrypt", b64(ENVELOPE), "--in", "f").code());
    }

    @Test
    void decrypt_decryptionFailed_exits4WithShortNameAndMessage() {
        server.on(KMS + ".Decrypt", p -> { throw ContractServer.error(KMS + ".DecryptionFailed", "message", "decryption failed"); });

        Run r = kmsctl("decrypt", b64(ENVELOPE));

        assertEquals(4, r.code());
        assertEquals("kmsctl: DecryptionFailed: decryption failed\n", r.stderr());
        assertEquals("", r.stdout());
    }

    @Test
    void kmsError_json_alsoPrintsTheErrorReplyOnStdout() throws Exception {
        server.on(KMS + ".Decrypt", p -> { throw ContractServer.error(KMS + ".KeyNotFound", "key", "k", "message", "no key 'k'"); });

        Run r = kmsctl("--json", "decrypt", b64(ENVELOPE));

        assertEquals(4, r.code());
        assertEquals(map("error", KMS + ".KeyNotFound", "parameters", map("key", "k", "message", "no key 'k'")),
                parseJson(r.stdout()));
        assertEquals("kmsctl: KeyNotFound: no key 'k'\n", r.stderr());
    }

    @Test
    void daemonInternalError_exits4WithoutStackTrace() {
        server.on(KMS + ".Status", p -> { throw new IllegalStateException("boom"); });

        Run r = kmsctl("status");

        assertEquals(4, r.code());
        assertEquals("kmsctl: InternalError: internal error; see the daemon log\n", r.stderr());
    }

    // --------------------------------------------------------------- decrypt-batch

    @Test
    void decryptBatch_mixedResults_printsOneLinePerEnvelopeAndExits4() throws Exception {
        server.reply(KMS + ".DecryptBatch", map("results", List.of(
                map("plaintext", b64(bytes(32, 1)), "key", "k", "version", 1L),
                map("error", "DecryptionFailed", "message", "decryption failed"),
                map("plaintext", b64(bytes(32, 3)), "key", "k", "version", 2L))));
        Path file = Files.writeString(dir.resolve("batch"), b64(bytes(40, 1)) + "\n\n" + b64(bytes(40, 2))
                + "\r\n" + b64(bytes(40, 3)) + "\n");

        Run r = kmsctl("decrypt-batch", file.toString(), "--context", "model=m");

        assertEquals(4, r.code());
        assertEquals(map("ciphertexts", List.of(b64(bytes(40, 1)), b64(bytes(40, 2)), b64(bytes(40, 3))),
                "context", map("model", "m")), server.lastParameters(KMS + ".DecryptBatch"));
        assertEquals("ok k 1 " + b64(bytes(32, 1)) + "\nerror DecryptionFailed decryption failed\nok k 2 "
                + b64(bytes(32, 3)) + "\n", r.stdout());
        assertEquals("kmsctl: 1 of 3 envelopes failed to decrypt\n", r.stderr());
    }

    @Test
    void decryptBatch_allDecrypted_exits0_jsonIsTheReply() throws Exception {
        Map<String, Object> reply = map("results", List.of(map("plaintext", b64(bytes(32, 1)), "key", "k", "version", 1L)));
        server.reply(KMS + ".DecryptBatch", reply);

        Run r = kmsctlIn((b64(bytes(40, 1)) + "\n").getBytes(StandardCharsets.US_ASCII), "--json", "decrypt-batch", "-");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(reply, parseJson(r.stdout()));
    }

    @Test
    void decryptBatch_lineNotBase64_exits2NamingTheLine() throws Exception {
        Path file = Files.writeString(dir.resolve("batch"), b64(bytes(40, 1)) + "\n%%%\n");

        Run r = kmsctl("decrypt-batch", file.toString());

        assertEquals(2, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: " + file + " line 2 is not valid base64"), r.stderr());
    }

    // -------------------------------------------------------------------- sign/verify

    private void replySign() {
        server.reply(KMS + ".Sign", map("key", "release", "version", 2L, "algorithm", "EC_P256_SHA256",
                "signature", b64(bytes(71, 0x30))));
    }

    @Test
    void sign_inFile_sendsMessage_printsSignatureBase64() throws Exception {
        replySign();
        Path in = Files.write(dir.resolve("artifact"), SECRET);

        Run r = kmsctl("sign", "release", "--in", in.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals(b64(bytes(71, 0x30)) + "\n", r.stdout());
        assertEquals(map("key", "release", "message", b64(SECRET)), server.lastParameters(KMS + ".Sign"));
    }

    @Test
    void sign_digestHex_sendsDigest() {
        replySign();
        String hex = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";

        assertEquals(0, kmsctl("sign", "release", "--digest", hex).code());

        assertEquals(map("key", "release", "digest", b64(HexFormat.of().parseHex(hex))), server.lastParameters(KMS + ".Sign"));
    }

    @Test
    void sign_digestB64_sendsDigest() {
        replySign();

        assertEquals(0, kmsctl("sign", "release", "--digest-b64", b64(bytes(32, 7))).code());

        assertEquals(b64(bytes(32, 7)), server.lastParameters(KMS + ".Sign").get("digest"));
    }

    @Test
    void sign_oddHex_exits2() {
        Run r = kmsctl("sign", "release", "--digest", "abc");

        assertEquals(2, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: --digest is not valid hex"), r.stderr());
    }

    @Test
    void sign_noInput_exits2() {
        assertEquals(2, kmsctl("sign", "release").code());
    }

    @Test
    void sign_outAndJson_writesRawSignatureAndReplyWithoutIt() throws Exception {
        replySign();
        Path out = dir.resolve("sig");

        Run r = kmsctl("--json", "sign", "release", "--digest-b64", b64(bytes(32, 7)), "--out", out.toString());

        assertEquals(0, r.code(), r.stderr());
        assertArrayEquals(bytes(71, 0x30), Files.readAllBytes(out));
        assertEquals(map("key", "release", "version", 2L, "algorithm", "EC_P256_SHA256", "out", out.toString()),
                parseJson(r.stdout()));
    }

    @Test
    void verify_validSignatureFromBinaryFile_printsValidExits0() throws Exception {
        server.reply(KMS + ".Verify", map("valid", true));
        Path sig = Files.write(dir.resolve("sig"), bytes(71, 0x80));
        Path in = Files.write(dir.resolve("artifact"), SECRET);

        Run r = kmsctl("verify", "release", "--version", "2", "--signature", sig.toString(), "--in", in.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals("valid\n", r.stdout());
        assertEquals(map("key", "release", "version", 2L, "signature", b64(bytes(71, 0x80)), "message", b64(SECRET)),
                server.lastParameters(KMS + ".Verify"));
    }

    @Test
    void verify_invalidSignatureAsBase64_printsInvalidExits1() {
        server.reply(KMS + ".Verify", map("valid", false));

        Run r = kmsctl("verify", "release", "--version", "1", "--signature", b64(bytes(64, 1)),
                "--digest", "00".repeat(32));

        assertEquals(1, r.code());
        assertEquals("invalid\n", r.stdout());
        assertEquals(map("key", "release", "version", 1L, "signature", b64(bytes(64, 1)), "digest", b64(new byte[32])),
                server.lastParameters(KMS + ".Verify"));
    }

    @Test
    void verify_base64SignatureFile_isDecoded_jsonKeepsExitCode() throws Exception {
        server.reply(KMS + ".Verify", map("valid", false));
        Path sig = Files.writeString(dir.resolve("sig.b64"), b64(bytes(64, 1)) + "\n");

        Run r = kmsctl("--json", "verify", "release", "--version", "1", "--signature", sig.toString(),
                "--digest-b64", b64(new byte[32]));

        assertEquals(1, r.code());
        assertEquals(map("valid", false), parseJson(r.stdout()));
        assertEquals(b64(bytes(64, 1)), server.lastParameters(KMS + ".Verify").get("signature"));
    }

    @Test
    void verify_signatureNeitherFileNorBase64_exits2() {
        Run r = kmsctl("verify", "release", "--version", "1", "--signature", "no-such-file.sig", "--digest", "00");

        assertEquals(2, r.code());
        assertTrue(r.stderr().contains("is neither a file nor valid base64"), r.stderr());
    }

    @Test
    void verify_withoutVersion_exits2() {
        assertEquals(2, kmsctl("verify", "release", "--signature", "AA==", "--digest", "00").code());
    }

    // ---------------------------------------------------------------------- pubkey

    private static final String PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
            + "-----END PUBLIC KEY-----\n";

    @Test
    void pubkey_default_printsPemOfPrimary() {
        server.reply(KMS + ".GetPublicKey", map("key", "release", "version", 2L, "algorithm", "ED25519", "pem", PEM));

        Run r = kmsctl("pubkey", "release");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(PEM, r.stdout());
        assertEquals(map("key", "release"), server.lastParameters(KMS + ".GetPublicKey"));
    }

    @Test
    void pubkey_versionAndOut_sendsVersionWritesFile() throws Exception {
        server.reply(KMS + ".GetPublicKey", map("key", "release", "version", 1L, "algorithm", "ED25519", "pem", PEM));
        Path out = dir.resolve("release.pem");

        Run r = kmsctl("pubkey", "release", "--version", "1", "--out", out.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("key", "release", "version", 1L), server.lastParameters(KMS + ".GetPublicKey"));
        assertEquals(PEM, Files.readString(out));
    }

    // -------------------------------------------------------------------- reencrypt

    private static final byte[] NEW_ENVELOPE = bytes(70, 0xa0);

    private void replyReEncrypt(boolean rewrapped) {
        server.reply(KMS + ".ReEncrypt", map("key", "model-weights", "version", 4L, "source_key", "model-weights",
                "source_version", rewrapped ? 2L : 4L, "rewrapped", rewrapped,
                "ciphertext", b64(rewrapped ? NEW_ENVELOPE : ENVELOPE)));
    }

    @Test
    void reencrypt_base64Argument_sendsContext_printsNewEnvelope() {
        replyReEncrypt(true);

        Run r = kmsctl("reencrypt", b64(ENVELOPE), "--context", "model=m");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(b64(NEW_ENVELOPE) + "\n", r.stdout());
        assertEquals(map("ciphertext", b64(ENVELOPE), "context", map("model", "m")),
                server.lastParameters(KMS + ".ReEncrypt"));
    }

    @Test
    void reencrypt_toKeyNewContextFromBinaryFileToOut_writesBinaryAndSummary() throws Exception {
        replyReEncrypt(true);
        Path in = Files.write(dir.resolve("old.bin"), ENVELOPE);
        Path out = dir.resolve("new.bin");

        Run r = kmsctl("reencrypt", "--in", in.toString(), "--context", "model=m", "--to-key", "model-weights",
                "--new-context", "model=m2", "--new-context", "tier=gold", "--out", out.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("ciphertext", b64(ENVELOPE), "context", map("model", "m"), "key", "model-weights",
                "new_context", map("model", "m2", "tier", "gold")), server.lastParameters(KMS + ".ReEncrypt"));
        assertArrayEquals(NEW_ENVELOPE, Files.readAllBytes(out));
        assertEquals("""
                key:         model-weights
                version:     4
                source:      model-weights version 2
                rewrapped:   yes
                ciphertext:  written to %s (70 bytes)
                """.formatted(out), r.stdout());
    }

    @Test
    void reencrypt_stdinAlreadyCurrent_jsonSaysNotRewrapped() throws Exception {
        replyReEncrypt(false);

        Run r = kmsctlIn((b64(ENVELOPE) + "\n").getBytes(StandardCharsets.US_ASCII), "--json", "reencrypt");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("key", "model-weights", "version", 4L, "source_key", "model-weights", "source_version", 4L,
                "rewrapped", false, "ciphertext", b64(ENVELOPE)), parseJson(r.stdout()));
    }

    @Test
    void reencrypt_newContextKeyTwice_exits2WithoutCalling() {
        Run r = kmsctl("reencrypt", b64(ENVELOPE), "--new-context", "a=1", "--new-context", "a=2");

        assertEquals(2, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: --new-context: key 'a' given twice"), r.stderr());
        assertEquals(List.of(), server.received());
    }

    @Test
    void reencrypt_revokedWithoutGrant_exits4WithShortName() {
        server.on(KMS + ".ReEncrypt", p -> { throw ContractServer.error(KMS + ".KeyVersionDestroyed", "key", "k",
                "version", 1L, "destroyed", "2026-03-15T00:00:00Z",
                "message", "version 1 of key 'k' was destroyed on 2026-03-15T00:00:00Z"); });

        Run r = kmsctl("reencrypt", b64(ENVELOPE));

        assertEquals(4, r.code());
        assertEquals("kmsctl: KeyVersionDestroyed: version 1 of key 'k' was destroyed on 2026-03-15T00:00:00Z\n",
                r.stderr());
    }

    // ---------------------------------------------------------------------- pubkeys

    private static final String PEM2 = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAm0bRxDzy8cGpxaV3WSeBJ3bvQLpvvPHKtrWtD4lQcMc=\n"
            + "-----END PUBLIC KEY-----\n";

    private void replyPublicKeys(String key) {
        server.reply(KMS + ".GetPublicKeys", map("key", key, "algorithm", "ED25519", "versions", List.of(
                map("version", 1L, "state", "ENABLED", "primary", true, "pem", PEM),
                map("version", 2L, "state", "PENDING", "primary", false, "pem", PEM2))));
    }

    @Test
    void pubkeys_default_printsTableThenEachPem() {
        replyPublicKeys("release");

        Run r = kmsctl("pubkeys", "release");

        assertEquals(0, r.code(), r.stderr());
        assertEquals(map("key", "release"), server.lastParameters(KMS + ".GetPublicKeys"));
        assertEquals("""
                key:        release
                algorithm:  ED25519

                VERSION  STATE    PRIMARY
                1        ENABLED  *
                2        PENDING

                # release version 1 (ENABLED, primary)
                """ + PEM + """

                # release version 2 (PENDING)
                """ + PEM2, r.stdout());
    }

    @Test
    void pubkeys_outDir_writesKeyVersionPemFiles_slashInNameBecomesUnderscore() throws Exception {
        replyPublicKeys("tenant-a/release");
        Path out = dir.resolve("keys");

        Run r = kmsctl("pubkeys", "tenant-a/release", "--out-dir", out.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals(PEM, Files.readString(out.resolve("tenant-a_release-v1.pem")));
        assertEquals(PEM2, Files.readString(out.resolve("tenant-a_release-v2.pem")));
        try (var listing = Files.list(out)) {
            assertEquals(2, listing.count());
        }
        assertTrue(r.stdout().contains("2        PENDING           " + out.resolve("tenant-a_release-v2.pem") + "\n"),
                r.stdout());
        assertFalse(r.stdout().contains("BEGIN PUBLIC KEY"), r.stdout());
    }

    @Test
    void pubkeys_json_printsTheReplyAsJson() throws Exception {
        replyPublicKeys("release");

        Run r = kmsctl("--json", "pubkeys", "release");

        assertEquals(map("key", "release", "algorithm", "ED25519", "versions", List.of(
                map("version", 1L, "state", "ENABLED", "primary", true, "pem", PEM),
                map("version", 2L, "state", "PENDING", "primary", false, "pem", PEM2))), parseJson(r.stdout()));
    }

    // ------------------------------------------------------- socket, usage, help

    @Test
    void cannotConnect_exits3NamingTheSocket() {
        Path absent = dir.resolve("absent.sock");

        Run r = runWith(new byte[0], Map.of(), "--socket", absent.toString(), "status");

        assertEquals(3, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: cannot connect to " + absent), r.stderr());
        assertEquals(1, r.stderr().lines().count(), r.stderr());
    }

    @Test
    void socketFromEnvironment_isUsedWithoutOption() {
        server.reply(KMS + ".Status", statusReply());

        Run r = runWith(new byte[0], Map.of("ENCLAVE_KMS_SOCKET", socket), "status");

        assertEquals(0, r.code(), r.stderr());
    }

    @Test
    void socketOption_winsOverEnvironment() {
        server.reply(KMS + ".Status", statusReply());

        Run r = runWith(new byte[0], Map.of("ENCLAVE_KMS_SOCKET", dir.resolve("absent").toString()),
                "--socket", socket, "status");

        assertEquals(0, r.code(), r.stderr());
    }

    @Test
    void globalOptionsAfterSubcommand_areHonoured() throws Exception {
        server.reply(KMS + ".Status", statusReply());

        Run r = runWith(new byte[0], Map.of(), "status", "--json", "--socket", socket);

        assertEquals(0, r.code(), r.stderr());
        assertEquals(statusReply(), parseJson(r.stdout()));
    }

    @Test
    void unknownCommand_exits2WithSuggestion() {
        Run r = kmsctl("stauts");

        assertEquals(2, r.code());
        assertTrue(r.stderr().contains("Did you mean: kmsctl status"), r.stderr());
    }

    @Test
    void noCommand_exits2() {
        assertEquals(2, kmsctl().code());
    }

    @Test
    void help_exits0AndDocumentsExitCodes() {
        Run r = kmsctl("--help");

        assertEquals(0, r.code());
        assertTrue(r.stdout().contains("Exit codes:"), r.stdout());
        assertTrue(r.stdout().contains("3   cannot connect to the daemon"), r.stdout());
    }

    @Test
    void subcommandHelp_exits0AndDocumentsExitCodes() {
        Run r = kmsctl("verify", "--help");

        assertEquals(0, r.code());
        assertTrue(r.stdout().startsWith("Usage: kmsctl verify"), r.stdout());
        assertTrue(r.stdout().contains("1   verify: the signature is invalid"), r.stdout());
    }
}
