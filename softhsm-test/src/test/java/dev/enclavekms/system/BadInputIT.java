package dev.enclavekms.system;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.varlink.VarlinkClient;
import dev.enclavekms.varlink.VarlinkError;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad input against the real daemon: each gets its typed error with a clear message,
 * the connection stays usable, and another client is served throughout.
 */
class BadInputIT {
    @TempDir
    static Path dir;
    static DaemonProcess daemon;
    static KmsClient bystander;

    @BeforeAll
    static void start() throws Exception {
        daemon = DaemonProcess.start(dir);
        bystander = KmsClient.connect(daemon.socket());
        bystander.createKey("k", "ENCRYPT");
        bystander.createKey("s", "SIGN");
    }

    @AfterAll
    static void stop() throws Exception {
        bystander.close();
        daemon.close();
    }

    private static void bystanderStillServed() throws Exception {
        byte[] ct = bystander.encrypt("k", "still here".getBytes(StandardCharsets.UTF_8), null).ciphertext();
        assertEquals("still here", new String(bystander.decrypt(ct, null).plaintext(), StandardCharsets.UTF_8));
    }

    private static void expectRaw(String message, String error, String messageFragment) throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(daemon.socket())) {
            c.sendRaw((message + "\0").getBytes(StandardCharsets.UTF_8));
            Map<String, Object> reply = c.receiveRaw();
            assertEquals(error, reply.get("error"), reply.toString());
            @SuppressWarnings("unchecked")
            Map<String, Object> p = (Map<String, Object>) reply.get("parameters");
            assertTrue(((String) p.get("message")).contains(messageFragment), p.toString());
            // Same connection, next call is served.
            assertEquals("enclave-kms", c.call("org.varlink.service.GetInfo", Map.of()).get("vendor"));
        }
        bystanderStillServed();
    }

    private static VarlinkError expectCall(String method, Map<String, ?> params) throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(daemon.socket())) {
            VarlinkError e = assertThrows(VarlinkError.class, () -> c.call(method, params));
            assertTrue(e.humanMessage().length() > 10, e.humanMessage());
            assertEquals("enclave-kms", c.call("org.varlink.service.GetInfo", Map.of()).get("vendor"));
            bystanderStillServed();
            return e;
        }
    }

    @Test
    void malformedJson_isInvalidRequest() throws Exception {
        expectRaw("{\"method\": \"dev.enclavekms.Kms.Status\"", "dev.enclavekms.Kms.InvalidRequest", "malformed JSON");
        expectRaw("[1,2,3]", "dev.enclavekms.Kms.InvalidRequest", "object");
        expectRaw("{\"parameters\":{}}", "dev.enclavekms.Kms.InvalidRequest", "method");
    }

    @Test
    void unknownMethodAndInterface_areNamed() throws Exception {
        assertEquals("org.varlink.service.MethodNotFound", expectCall("dev.enclavekms.Kms.Steal", Map.of()).error());
        assertEquals("org.varlink.service.InterfaceNotFound", expectCall("dev.enclavekms.Nope.Status", Map.of()).error());
    }

    @Test
    void wrongTypes_invalidBase64_oversizedFields_unknownParameters() throws Exception {
        VarlinkError e = expectCall("dev.enclavekms.Kms.Encrypt", Map.of("key", "k", "plaintext", 12));
        assertEquals("dev.enclavekms.Kms.InvalidParameter", e.error());
        assertEquals("plaintext", e.parameters().get("parameter"));

        e = expectCall("dev.enclavekms.Kms.Decrypt", Map.of("ciphertext", "not base64!"));
        assertEquals("dev.enclavekms.Kms.InvalidParameter", e.error());
        assertTrue(e.humanMessage().contains("base64"), e.humanMessage());

        e = expectCall("dev.enclavekms.Kms.Encrypt", Map.of("key", "k",
                "plaintext", Base64.getEncoder().encodeToString(new byte[65537])));
        assertEquals("dev.enclavekms.Kms.InvalidParameter", e.error());

        e = expectCall("dev.enclavekms.Kms.GenerateDataKey", Map.of("key", "k", "contxt", Map.of("model", "x")));
        assertEquals("dev.enclavekms.Kms.InvalidParameter", e.error());
        assertEquals("contxt", e.parameters().get("parameter"));

        e = expectCall("dev.enclavekms.Kms.GenerateDataKey", Map.of("key", "k", "bytes", 1000));
        assertEquals("bytes", e.parameters().get("parameter"));

        e = expectCall("dev.enclavekms.Kms.Sign", Map.of("key", "s", "digest", Base64.getEncoder().encodeToString(new byte[20])));
        assertEquals("dev.enclavekms.Kms.InvalidParameter", e.error());
        assertTrue(e.humanMessage().contains("32 bytes"), e.humanMessage());
    }

    @Test
    void garbageCiphertext_isGenericDecryptionFailure() throws Exception {
        for (byte[] junk : List.of(new byte[0], "EKC".getBytes(StandardCharsets.US_ASCII), new byte[200])) {
            VarlinkError e = expectCall("dev.enclavekms.Kms.Decrypt", Map.of("ciphertext", Base64.getEncoder().encodeToString(junk)));
            assertEquals("dev.enclavekms.Kms.DecryptionFailed", e.error());
        }
    }

    @Test
    void unknownKey_andWrongPurpose_areTyped() throws Exception {
        assertEquals("dev.enclavekms.Kms.KeyNotFound",
                expectCall("dev.enclavekms.Kms.GenerateDataKey", Map.of("key", "nope")).error());
        assertEquals("dev.enclavekms.Kms.InvalidKeyUsage",
                expectCall("dev.enclavekms.Kms.GenerateDataKey", Map.of("key", "s")).error());
        assertEquals("dev.enclavekms.Admin.KeyAlreadyExists",
                expectCall("dev.enclavekms.Admin.CreateKey", Map.of("name", "k", "purpose", "ENCRYPT")).error());
        assertEquals("dev.enclavekms.Admin.InvalidParameter",
                expectCall("dev.enclavekms.Admin.CreateKey", Map.of("name", "x", "purpose", "SIGN", "algorithm", "AES_256_GCM")).error());
    }

    @Test
    void oversizedMessage_isRequestTooLarge_andConnectionSurvives() throws Exception {
        try (VarlinkClient c = VarlinkClient.connect(daemon.socket())) {
            byte[] huge = new byte[17 * 1024 * 1024];
            java.util.Arrays.fill(huge, (byte) 'a');
            huge[huge.length - 1] = 0;
            c.sendRaw(huge);
            assertEquals("dev.enclavekms.Kms.RequestTooLarge", c.receiveRaw().get("error"));
            assertEquals("enclave-kms", c.call("org.varlink.service.GetInfo", Map.of()).get("vendor"));
        }
        bystanderStillServed();
    }

    @Test
    void secondDaemonOnTheSameState_refusesToStart_firstKeepsServing() throws Exception {
        var second = Commands.run(List.of(Commands.repoFile("bin/enclave-kmsd").toString(), "--dev", "--state-dir",
                daemon.stateDir().toString()), Map.of(), null);
        assertEquals(1, second.exit(), second.stdout() + second.stderr());
        assertTrue(second.stderr().contains("another enclave-kmsd is running"), second.stderr());
        assertTrue(java.nio.file.Files.exists(daemon.socket()), "the first daemon's socket is untouched");
        bystanderStillServed();
    }
}
