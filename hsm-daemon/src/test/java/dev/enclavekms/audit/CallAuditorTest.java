package dev.enclavekms.audit;

import dev.enclavekms.client.VarlinkIdl;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a call's record holds — and, above all, what it never holds. */
class CallAuditorTest {
    private static final String KMS = "dev.enclavekms.Kms.";
    private static final String ADMIN = "dev.enclavekms.Admin.";
    private final StringHasher hasher = AuditFixtures.jcaHasher();
    private final CallAuditor auditor = new CallAuditor(hasher);

    private Map<String, Object> record(String method, Map<String, Object> params, Map<String, Object> reply, String error)
            throws Exception {
        return auditor.record(new CallAuditor.CallFacts("alice", "inference", 7, Map.of(), method, params, reply,
                error, false));
    }

    private static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    @Test
    void generateDataKey_keyVersionAndHmacdContext_neverThePlaintextOrCiphertext() throws Exception {
        Map<String, Object> r = record(KMS + "GenerateDataKey",
                map("key", "weights", "context", map("model", "llama-3-8b"), "bytes", 32L),
                map("key", "weights", "version", 3L, "plaintext", "c2VjcmV0LWRhdGEta2V5", "ciphertext", "AAEC"), null);

        assertEquals(map("type", "call", "user", "alice", "group", "inference", "conn", 7L,
                "method", KMS + "GenerateDataKey", "key", "weights", "context",
                map("model", hasher.hmac("llama-3-8b")), "bytes", 32L, "version", 3L, "outcome", "ok"), r);
        String text = CanonicalJson.write(r);
        for (String secret : List.of("c2VjcmV0LWRhdGEta2V5", "AAEC", "llama-3-8b", "plaintext", "ciphertext")) {
            assertFalse(text.contains(secret), secret + " in " + text);
        }
    }

    @Test
    void sessionCalls_idNameOffsetSize_neverTheMaterial() throws Exception {
        String id = "0123456789abcdef0123456789abcdef0123456789abcdef";
        String data = "ZXZhbHVhdGlvbi1rZXktYnl0ZXM=";
        Map<String, Object> put = record(KMS + "PutSessionMaterial",
                map("session", id, "name", "evk", "data", data, "offset", 1024L, "final", true),
                map("name", "evk", "size", 1044L, "final", true), null);
        assertEquals(map("type", "call", "user", "alice", "group", "inference", "conn", 7L,
                "method", KMS + "PutSessionMaterial", "session", id, "material", "evk", "offset", 1024L,
                "final", true, "size", 1044L, "outcome", "ok"), put);
        Map<String, Object> get = record(KMS + "GetSessionMaterial", map("session", id, "name", "evk"),
                map("name", "evk", "data", data, "offset", 0L, "size", 1044L), null);
        assertEquals(1044L, get.get("size"));
        Map<String, Object> open = record(KMS + "OpenSession", map("ttl_seconds", 60L),
                map("session", id, "tenant", "acme", "expires", "2026-01-01T00:00:00Z", "ttl_seconds", 60L), null);
        assertEquals(id, open.get("session"));
        Map<String, Object> revoke = record(ADMIN + "RevokeSessions", map("tenant", "acme"),
                map("tenant", "acme", "revoked", 3L), null);
        assertEquals("acme", revoke.get("sessions_tenant"));
        assertEquals(3L, revoke.get("revoked"));
        for (Map<String, Object> r : List.of(put, get, open, revoke)) {
            String text = CanonicalJson.write(r);
            assertFalse(text.contains(data), text);
            assertFalse(text.contains("\"data\""), text);
        }
        // Whatever a caller sends as a session id, only a real id is shown in clear.
        String junk = "pasted secret, not an id";
        assertEquals(hasher.hmac(junk), record(KMS + "CloseSession", map("session", junk), null,
                KMS + "SessionNotFound").get("session"));
        Map<String, Object> ended = auditor.sessionEnded(id, "acme", "expired");
        assertEquals(map("type", "session", "session", id, "tenant", "acme", "event", "expired"), ended);
    }

    @Test
    void issueCertificate_subjectSansSerialExpiry_neverTheCsrOrCertificateBodies() throws Exception {
        String csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBCSRBODY\n-----END CERTIFICATE REQUEST-----\n";
        String cert = "-----BEGIN CERTIFICATE-----\nMIICERTBODY\n-----END CERTIFICATE-----\n";
        Map<String, Object> r = record(KMS + "IssueCertificate",
                map("key", "edge-ca", "csr", csr, "ttl_seconds", 3600L, "profile", "server"),
                map("key", "edge-ca", "version", 2L, "certificate", cert, "ca_certificate", cert,
                        "serial", "8f3a0c", "subject", "CN=api.example.internal",
                        "sans", List.of("DNS:api.example.internal", "IP:10.0.0.7"),
                        "not_before", "2026-01-01T00:00:00Z", "not_after", "2026-01-02T00:00:00Z",
                        "profile", "server"), null);

        assertEquals(map("type", "call", "user", "alice", "group", "inference", "conn", 7L,
                "method", KMS + "IssueCertificate", "key", "edge-ca", "ttl_seconds", 3600L, "profile", "server",
                "version", 2L, "serial", "8f3a0c", "subject", "CN=api.example.internal",
                "sans", List.of("DNS:api.example.internal", "IP:10.0.0.7"), "not_after", "2026-01-02T00:00:00Z",
                "outcome", "ok"), r);
        String text = CanonicalJson.write(r);
        for (String body : List.of("MIIBCSRBODY", "MIICERTBODY")) {
            assertFalse(text.contains(body), body + " in " + text);
        }
    }

    @Test
    void caAdministration_serialReasonKeyVersion_neverTheChainOrRequestBodies() throws Exception {
        String pem = "-----BEGIN CERTIFICATE-----\nMIICHAINBODY\n-----END CERTIFICATE-----\n";
        Map<String, Object> revoke = record(ADMIN + "RevokeCertificate",
                map("serial", "8f3a0c", "reason", "keyCompromise"),
                map("serial", "8f3a0c", "key", "edge-ca", "version", 2L, "reason", "keyCompromise",
                        "revoked", "2026-01-01T00:00:00Z", "not_after", "2026-01-02T00:00:00Z",
                        "already_revoked", false), null);
        assertEquals(map("type", "call", "user", "alice", "group", "inference", "conn", 7L,
                "method", ADMIN + "RevokeCertificate", "serial", "8f3a0c", "reason", "keyCompromise",
                "key", "edge-ca", "version", 2L, "revocation_reason", "keyCompromise", "already_revoked", false,
                "outcome", "ok"), revoke);

        Map<String, Object> imported = record(ADMIN + "ImportCaCertificate",
                map("key", "edge-int", "version", 1L, "certificate_chain", pem),
                map("key", "edge-int", "version", 1L, "subject", "CN=Edge CA", "issuer", "CN=Root",
                        "not_after", "2027-01-01T00:00:00Z", "root", "CN=Root"), null);
        Map<String, Object> csr = record(ADMIN + "GetCaCsr", map("key", "edge-int", "subject", "CN=Edge CA"),
                map("key", "edge-int", "version", 1L, "subject", "CN=Edge CA", "csr", pem), null);
        Map<String, Object> crl = record(KMS + "GetCrl", map("key", "edge-int"),
                map("key", "edge-int", "crls", List.of(map("pem", pem)), "pem", pem), null);
        assertEquals("CN=Root", imported.get("root"));
        assertEquals(1L, csr.get("version"));
        assertEquals("edge-int", crl.get("key"));
        for (var r : List.of(imported, csr, crl)) {
            assertFalse(CanonicalJson.write(r).contains("MIICHAINBODY"), CanonicalJson.write(r));
        }
    }

    @Test
    void decryptBatch_countsOnly() throws Exception {
        Map<String, Object> r = record(KMS + "DecryptBatch", map("ciphertexts", List.of("AAEC", "AAED")),
                map("results", List.of(map("plaintext", "c2VjcmV0", "key", "k", "version", 1L),
                        map("error", "DecryptionFailed", "message", "decryption failed"))), null);

        assertEquals(2L, r.get("count"));
        assertEquals(1L, r.get("failed"));
        assertFalse(CanonicalJson.write(r).contains("c2VjcmV0"));
        assertFalse(CanonicalJson.write(r).contains("AAEC"));
    }

    @Test
    void failedCall_errorNameFromTheRequestOnly_noMessage() throws Exception {
        Map<String, Object> r = record(KMS + "Encrypt", map("key", "weights", "plaintext", "c2VjcmV0"), null,
                KMS + "PermissionDenied");

        assertEquals(KMS + "PermissionDenied", r.get("outcome"));
        assertEquals("weights", r.get("key"));
        assertFalse(r.containsKey("version"));
        assertFalse(CanonicalJson.write(r).contains("c2VjcmV0"));
    }

    @Test
    void keyNameThatIsNoName_hmacd() throws Exception {
        String junk = "not a name; maybe a pasted secret ABCD";
        Map<String, Object> r = record(KMS + "Encrypt", map("key", junk), null, KMS + "InvalidParameter");

        assertEquals(hasher.hmac(junk), r.get("key"));
    }

    @Test
    void contextKeyThatIsNoName_hmacdToo() throws Exception {
        Map<String, Object> r = record(KMS + "Decrypt", map("context", map("user id", "u-1")), null, KMS + "KeyNotFound");

        assertEquals(map(hasher.hmac("user id"), hasher.hmac("u-1")), r.get("context"));
    }

    @Test
    void unlistedMethod_identityMethodAndOutcomeOnly() throws Exception {
        Map<String, Object> r = record(KMS + "Authenticate", map("token", "ekms_secret_token_value"),
                map("identity", "ci-runner", "token_id", "t-1"), null);

        assertEquals(map("type", "call", "user", "alice", "group", "inference", "conn", 7L,
                "method", KMS + "Authenticate", "outcome", "ok"), r);
    }

    @Test
    void sessionAttributes_tokenIdAndTenantRecorded_otherAttributesNever() throws Exception {
        Map<String, Object> session = map(CallAuditor.TOKEN_ID_ATTRIBUTE, "tok-42", CallAuditor.TENANT_ATTRIBUTE, "tenant-a",
                "token", "ekms_secret_token_value", "policy.identity", "ci-runner");
        Map<String, Object> r = auditor.record(new CallAuditor.CallFacts("alice", "inference", 7, session,
                KMS + "Status", null, map(), null, false));

        assertEquals("tok-42", r.get("token_id"));
        assertEquals("tenant-a", r.get("tenant"));
        assertFalse(CanonicalJson.write(r).contains("ekms_secret_token_value"));
        assertFalse(CanonicalJson.write(r).contains("ci-runner"));
    }

    @Test
    void rotateKey_newVersionFromTheReply() throws Exception {
        Map<String, Object> r = record(ADMIN + "RotateKey", map("name", "weights", "pending", true),
                map("key", map("name", "weights", "versions", List.of(map("version", 1L), map("version", 2L)))), null);

        assertEquals("weights", r.get("key"));
        assertEquals(2L, r.get("version"));
        assertEquals(true, r.get("pending"));
    }

    @Test
    void streamedCall_marked() throws Exception {
        Map<String, Object> r = auditor.record(new CallAuditor.CallFacts("alice", "inference", 7, Map.of(),
                KMS + "Status", null, map(), null, true));

        assertEquals(true, r.get("stream"));
    }

    @Test
    void allowlist_everyMethodIsInTheShippedIdl() {
        Set<String> served = new TreeSet<>();
        for (String iface : List.of("dev.enclavekms.Kms", "dev.enclavekms.Admin")) {
            VarlinkIdl idl = VarlinkIdl.parse(VarlinkIdl.resourceText(iface));
            idl.methods().keySet().forEach(m -> served.add(iface + "." + m));
        }
        List<String> unknown = new ArrayList<>();
        for (String m : List.of(CallAuditor.PARAMETERS.keySet(), CallAuditor.REPLIES.keySet()).stream()
                .flatMap(Set::stream).toList()) {
            if (!served.contains(m)) unknown.add(m);
        }
        assertEquals(List.of(), unknown, "allowlist entries for methods the daemon does not serve (typos?)");
    }

    @Test
    void allowlist_noFieldThatCarriesSecretsOrPayload() {
        Set<String> never = Set.of("plaintext", "ciphertext", "ciphertexts", "token", "pin", "data", "message",
                "digest", "signature", "value", "pem", "keys", "results", "csr", "material");
        List<String> found = new ArrayList<>();
        for (var table : List.of(CallAuditor.PARAMETERS, CallAuditor.REPLIES)) {
            table.forEach((method, fields) -> fields.forEach(f -> {
                if (never.contains(f.from())) found.add(method + " " + f.from());
            }));
        }
        assertEquals(List.of(), found);
        assertTrue(CallAuditor.PARAMETERS.containsKey(KMS + "Decrypt"));
    }
}
