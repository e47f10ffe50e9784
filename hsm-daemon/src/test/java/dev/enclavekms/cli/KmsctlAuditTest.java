package dev.enclavekms.cli;

import dev.enclavekms.audit.AuditKeys;
import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.audit.CheckpointSigner;
import dev.enclavekms.cli.KmsctlRunner.Run;
import dev.enclavekms.client.ContractServer;
import dev.enclavekms.json.Json;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.enclavekms.client.ContractServer.ADMIN;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code kmsctl audit ...}: verify over real log files (written by {@link AuditLog} with a
 * software P-256 key standing in for the enclave's), and the Admin audit methods against a
 * server that holds kmsctl to the IDL.
 */
@Timeout(60)
class KmsctlAuditTest {
    @TempDir
    Path dir;
    ContractServer server;
    Path auditDir;
    Path pem;
    AuditLog.Head head;

    /** The enclave's signing key, in software: same algorithm and encoding. */
    static final class SoftwareSigner implements CheckpointSigner {
        final KeyPair pair;

        SoftwareSigner() throws GeneralSecurityException {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            pair = g.generateKeyPair();
        }

        @Override
        public Map<String, Object> keyFields() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("key", AuditKeys.SIGNING_KEY);
            m.put("key_version", 1L);
            m.put("key_id", AuditKeys.keyId(pair.getPublic()));
            m.put("algorithm", "EC_P256_SHA256");
            return m;
        }

        @Override
        public byte[] sign(byte[] message) throws GeneralSecurityException {
            Signature s = Signature.getInstance(JCA_ALGORITHM);
            s.initSign(pair.getPrivate());
            s.update(message);
            return s.sign();
        }

        @Override
        public PublicKey publicKey() {
            return pair.getPublic();
        }
    }

    @BeforeEach
    void writeLogAndStartServer() throws Exception {
        server = ContractServer.start(dir.resolve("kms.sock"));
        auditDir = dir.resolve("audit");
        SoftwareSigner signer = new SoftwareSigner();
        AuditLog log = AuditLog.open(AuditLog.Options.defaults(auditDir).withCheckpoints(5, Duration.ofHours(1))
                .withMaxFileBytes(4096), signer, Clock.systemUTC(), Map.of());
        for (int i = 0; i < 40; i++) {
            log.append(Map.of("type", "call", "method", "dev.enclavekms.Kms.Decrypt", "user", "svc", "outcome", "ok",
                    "i", (long) i));
        }
        log.close();
        head = log.head();
        pem = dir.resolve("audit.pem");
        Files.writeString(pem, "-----BEGIN PUBLIC KEY-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
                .encodeToString(signer.publicKey().getEncoded()) + "\n-----END PUBLIC KEY-----\n");
    }

    @AfterEach
    void stop() {
        server.close();
        server.assertNoViolations();
    }

    private Run kmsctl(String... args) {
        List<String> all = new ArrayList<>(List.of("--socket", server.socket().toString()));
        all.addAll(List.of(args));
        return KmsctlRunner.run(new byte[0], Map.of(), false, false, all.toArray(String[]::new));
    }

    @Test
    void verify_untouchedRotatedLog_exit0Intact() {
        Run r = kmsctl("audit", "verify", "--public-key", pem.toString(), auditDir.toString());

        assertEquals(0, r.code(), r.stdout() + r.stderr());
        assertTrue(r.stdout().startsWith("result:       INTACT\n"), r.stdout());
        assertTrue(r.stdout().contains("\nhead:         " + head.seq() + ":" + head.hash() + "\n"), r.stdout());
    }

    @Test
    void verify_editedRecord_exit1NamingFileLineAndSeq() throws Exception {
        Path second = AuditLog.logFiles(auditDir).get(1);
        List<String> lines = Files.readAllLines(second);
        lines.set(2, lines.get(2).replace("\"user\":\"svc\"", "\"user\":\"eve\""));
        Files.write(second, lines);
        long seq = (Long) Json.parseObject(lines.get(2)).get("seq");

        Run r = kmsctl("audit", "verify", "--public-key", pem.toString(), auditDir.toString());

        assertEquals(1, r.code(), r.stdout() + r.stderr());
        assertTrue(r.stdout().contains("first bad record:  " + second + " line 3 (seq " + seq + ")"), r.stdout());
        assertTrue(r.stdout().contains("reason:            the record does not match its hash: it was edited"), r.stdout());
    }

    @Test
    void verify_json_reportsTheFirstBadRecord() throws Exception {
        Path first = AuditLog.logFiles(auditDir).getFirst();
        List<String> lines = Files.readAllLines(first);
        lines.remove(3);
        Files.write(first, lines);

        Run r = kmsctl("--json", "audit", "verify", "--public-key", pem.toString(), auditDir.toString());

        assertEquals(1, r.code());
        Map<String, Object> m = Json.parseObject(r.stdout().strip());
        assertEquals("TAMPERED", m.get("status"));
        @SuppressWarnings("unchecked")
        Map<String, Object> bad = (Map<String, Object>) m.get("first_bad_record");
        assertEquals(4L, bad.get("line"));
        assertEquals(5L, bad.get("seq"));
        assertTrue(((String) bad.get("reason")).contains("record 4 is missing"), (String) bad.get("reason"));
    }

    @Test
    void verify_withoutPublicKey_exit5SayingWhatIsUnproven() {
        Run r = kmsctl("audit", "verify", auditDir.toString());

        assertEquals(5, r.code(), r.stdout() + r.stderr());
        assertTrue(r.stdout().contains("INCOMPLETE"), r.stdout());
        assertTrue(r.stdout().contains("no public key given"), r.stdout());
    }

    @Test
    void verify_headBeyondTheEnd_exit1RecordsCutOff() {
        Run r = kmsctl("audit", "verify", "--public-key", pem.toString(), "--head",
                (head.seq() + 3) + ":" + "ab".repeat(32), auditDir.toString());

        assertEquals(1, r.code(), r.stdout() + r.stderr());
        assertTrue(r.stdout().contains("were cut off"), r.stdout());
    }

    @Test
    void verify_daemonHead_askedForACheckpointAndFound() {
        server.reply(ADMIN + ".AuditCheckpoint", Map.of("seq", head.seq(), "hash", head.hash(),
                "time", head.time(), "file", head.file().toString()));

        Run r = kmsctl("audit", "verify", "--public-key", pem.toString(), "--daemon", auditDir.toString());

        assertEquals(0, r.code(), r.stdout() + r.stderr());
        assertTrue(r.stdout().contains("note: head from the daemon: checkpoint seq " + head.seq()), r.stdout());
    }

    @Test
    void verify_badHeadOrMissingFile_usageOrLocalFailure() {
        assertEquals(2, kmsctl("audit", "verify", "--head", "12", auditDir.toString()).code());
        Run missing = kmsctl("audit", "verify", dir.resolve("nope").toString());
        assertEquals(1, missing.code());
        assertTrue(missing.stderr().contains("does not exist"), missing.stderr());
    }

    @Test
    void hmac_valueFromStdin_sentAndPrinted() {
        server.on(ADMIN + ".AuditHmac", p -> Map.of("hmac", "hmac-sha256:" + "0f".repeat(32)));

        Run r = KmsctlRunner.run("llama-3-8b\n".getBytes(StandardCharsets.UTF_8), Map.of(), false, false,
                "--socket", server.socket().toString(), "audit", "hmac");

        assertEquals(0, r.code(), r.stderr());
        assertEquals("hmac-sha256:" + "0f".repeat(32) + "\n", r.stdout());
        assertEquals(Map.of("value", "llama-3-8b"), server.lastParameters(ADMIN + ".AuditHmac"));
    }

    @Test
    void publicKey_out_writesThePem() throws Exception {
        String text = Files.readString(pem);
        server.reply(ADMIN + ".AuditPublicKey", Map.of("key", "_audit/signing", "version", 1L,
                "algorithm", "EC_P256_SHA256", "key_id", "sha256:" + "00".repeat(32), "pem", text));
        Path out = dir.resolve("exported.pem");

        Run r = kmsctl("audit", "public-key", "--out", out.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals(text, Files.readString(out));
    }

    @Test
    void checkpoint_printsSeqColonHash() {
        server.reply(ADMIN + ".AuditCheckpoint", Map.of("seq", 77L, "hash", "cd".repeat(32), "time",
                "2026-01-01T00:00:00.000000Z", "file", "/var/lib/enclave-kms/audit/audit-00000000000000000001.jsonl"));

        Run r = kmsctl("audit", "checkpoint");

        assertEquals(0, r.code(), r.stderr());
        assertEquals("77:" + "cd".repeat(32) + "\n", r.stdout());
    }
}
