package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_AES;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_AES_KEY_GEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_SECRET_KEY;

/**
 * The independent checker: OpenSC's pkcs11-tool, another program with its own PKCS#11
 * code, looks at the token the enclave wrote and must see every key sensitive and never
 * extractable, with only the usages the purpose needs, and must fail to read them out.
 *
 * <p>The PIN reaches pkcs11-tool as {@code --pin env:VAR} (OpenSC 0.23 reads it from the
 * child's environment), not in argv where {@code ps} would show it; it is a test token's
 * PIN in any case. stdin is /dev/null, so a missing PIN fails instead of waiting for input.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class Pkcs11ToolCrossCheckTest {

    private static final String PKCS11_TOOL = "pkcs11-tool";
    private static final String PIN_VARIABLE = "ENCLAVE_KMS_TEST_PIN";

    private TestTokens.TestToken token;
    private Pkcs11Enclave enclave;
    private final Map<KeyAlgorithm, ObjectId> keys = new EnumMap<>(KeyAlgorithm.class);

    @BeforeAll
    void generateOneKeyOfEachAlgorithm() throws Exception {
        token = TestTokens.fresh("p11-crosscheck");
        enclave = token.open();
        for (KeyAlgorithm algorithm : KeyAlgorithm.values()) {
            ObjectId id = ObjectId.random();
            enclave.generate(id, algorithm, "cross " + algorithm);
            keys.put(algorithm, id);
        }
    }

    @AfterAll
    void close() {
        if (enclave != null) {
            enclave.close();
        }
    }

    @Test
    void listObjects_everyEnclaveKey_sensitiveNeverExtractableWithMinimalUsage() throws Exception {
        Run run = pkcs11Tool("--list-objects");
        assertEquals(0, run.exit(), run.output());
        List<ToolObject> objects = ToolObject.parse(run.output());

        for (Map.Entry<KeyAlgorithm, ObjectId> e : keys.entrySet()) {
            KeyAlgorithm algorithm = e.getKey();
            List<ToolObject> mine = objects.stream().filter(o -> e.getValue().hex().equals(o.id())).toList();
            if (algorithm.signs()) {
                assertEquals(List.of("Private Key Object", "Public Key Object"),
                        mine.stream().map(ToolObject::kind).sorted().toList(), algorithm + ":\n" + run.output());
                ToolObject priv = mine.stream().filter(o -> o.kind().equals("Private Key Object")).findFirst().orElseThrow();
                ToolObject pub = mine.stream().filter(o -> o.kind().equals("Public Key Object")).findFirst().orElseThrow();
                assertProtected(algorithm, priv);
                assertEquals(Set.of("sign"), priv.usage(), algorithm + " private usage");
                assertEquals(Set.of("verify"), pub.usage(), algorithm + " public usage");
                assertEquals("cross " + algorithm, pub.label());
            } else {
                assertEquals(1, mine.size(), run.output());
                ToolObject secret = mine.getFirst();
                assertEquals("Secret Key Object", secret.kind());
                boolean mac = algorithm.macs();
                assertTrue(secret.header().contains(mac ? "Generic secret length 32" : "AES length 32"), secret.header());
                assertProtected(algorithm, secret);
                // pkcs11-tool 0.23 lists no "sign" for secret keys (CKA_SIGN=true on the HMAC key is
                // checked raw in Pkcs11EnclaveTest); what matters here is that nothing else shows.
                assertEquals(mac ? Set.of() : Set.of("encrypt", "decrypt"), secret.usage(), algorithm + " usage");
            }
        }
    }

    private static void assertProtected(KeyAlgorithm algorithm, ToolObject o) {
        Set<String> access = o.access();
        assertTrue(access.contains("sensitive"), algorithm + " " + access);
        assertTrue(access.contains("always sensitive"), algorithm + " " + access);
        assertTrue(access.contains("never extractable"), algorithm + " " + access);
        assertFalse(access.contains("extractable"), algorithm + " " + access);
        assertEquals("cross " + algorithm, o.label());
    }

    /**
     * pkcs11-tool 0.23 reads secret keys only ("reading private keys not (yet) supported",
     * with exit status 0), so private keys are checked by their listed access flags above
     * and by the raw CKA_VALUE / CKA_PRIVATE_EXPONENT reads in Pkcs11EnclaveTest.
     */
    @Test
    void readObject_enclaveSecretKey_failsButAWeakKeyIsReadable() throws Exception {
        Run refused = pkcs11Tool("--read-object", "--type", "secrkey", "--id", keys.get(KeyAlgorithm.AES_256_GCM).hex());
        assertNotEquals(0, refused.exit(), "the master key was read out:\n" + refused.output());
        assertTrue(refused.output().contains("CKR_ATTRIBUTE_SENSITIVE"), refused.output());
        // The positive control: the same command reads a key that is not protected, so the
        // failures above are the token's refusals, not a broken command line.
        ObjectId weak = ObjectId.random();
        byte[] weakValue;
        try (TokenInspector t = new TokenInspector(token)) {
            long handle = t.session.generateKey(new Mechanism(CKM_AES_KEY_GEN), new AttributeVector()
                    .class_(CKO_SECRET_KEY).keyType(CKK_AES).valueLen(16).token(true).private_(true)
                    .sensitive(false).extractable(true).encrypt(true).decrypt(true).id(weak.bytes()).label("weak"));
            weakValue = (byte[]) t.attribute(handle, org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_VALUE);
        }
        try {
            Run run = pkcs11ToolBinary("--read-object", "--type", "secrkey", "--id", weak.hex());
            assertEquals(0, run.exit(), run.output());
            assertTrue(Arrays.equals(weakValue, run.stdout()), "pkcs11-tool read the weak key's value");
        } finally {
            enclave.destroy(weak);
        }
    }

    @Test
    void keygenWithPkcs11ToolDefaults_reportedWeakByList() throws Exception {
        ObjectId id = ObjectId.random();
        Run run = pkcs11Tool("--keygen", "--key-type", "AES:32", "--id", id.hex(), "--label", "tool-default");
        assertEquals(0, run.exit(), run.output());
        try {
            EnclaveObject o = enclave.list().stream().filter(x -> x.id().equals(id)).findFirst().orElseThrow();
            assertEquals(KeyAlgorithm.AES_256_GCM, o.algorithm());
            List<String> weaknesses = o.protection().weaknesses(o.algorithm());
            String all = String.join("\n", weaknesses);
            // pkcs11-tool gives encrypt+decrypt+wrap+unwrap and leaves the key modifiable.
            assertTrue(all.contains("wrap and decrypt"), all);
            assertTrue(all.contains("CKA_MODIFIABLE=true"), all);
        } finally {
            enclave.destroy(id);
        }
    }

    // ---------------------------------------------------------------- running pkcs11-tool

    private record Run(int exit, String output, byte[] stdout) {
    }

    private Run pkcs11Tool(String... args) throws Exception {
        return run(true, args);
    }

    /** stdout kept apart from stderr, as bytes: for --read-object, which writes the raw value. */
    private Run pkcs11ToolBinary(String... args) throws Exception {
        return run(false, args);
    }

    private Run run(boolean mergeStderr, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(PKCS11_TOOL, "--module", token.config().library().toString(),
                "--token-label", token.label(), "--login", "--pin", "env:" + PIN_VARIABLE));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(mergeStderr);
        if (!mergeStderr) {
            pb.redirectError(ProcessBuilder.Redirect.DISCARD);
        }
        pb.environment().put("SOFTHSM2_CONF", token.softHsmConf().toString());
        pb.environment().put(PIN_VARIABLE, token.userPin());
        Process p = pb.start();
        byte[] out;
        try {
            out = p.getInputStream().readAllBytes();
        } catch (IOException e) {
            p.destroyForcibly();
            throw e;
        }
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("pkcs11-tool did not finish: " + command);
        }
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8), out);
    }

    /**
     * One object in pkcs11-tool's listing: a header line ("Private Key Object; EC") and
     * indented "name: value" lines.
     */
    private record ToolObject(String header, Map<String, String> fields) {

        static List<ToolObject> parse(String listing) {
            List<ToolObject> out = new ArrayList<>();
            String header = null;
            Map<String, String> fields = null;
            for (String line : listing.split("\n")) {
                if (line.isBlank()) {
                    continue;
                }
                if (!Character.isWhitespace(line.charAt(0))) {
                    if (header != null) {
                        out.add(new ToolObject(header, fields));
                    }
                    header = line.strip();
                    fields = new java.util.LinkedHashMap<>();
                } else if (fields != null && line.contains(":")) {
                    int colon = line.indexOf(':');
                    fields.putIfAbsent(line.substring(0, colon).strip(), line.substring(colon + 1).strip());
                }
            }
            if (header != null) {
                out.add(new ToolObject(header, fields));
            }
            return out;
        }

        String kind() {
            int semi = header.indexOf(';');
            return semi < 0 ? header : header.substring(0, semi);
        }

        String id() {
            return fields.getOrDefault("ID", "").toLowerCase();
        }

        String label() {
            return fields.getOrDefault("label", "");
        }

        Set<String> usage() {
            return list(fields.getOrDefault("Usage", ""));
        }

        Set<String> access() {
            return list(fields.getOrDefault("Access", ""));
        }

        private static Set<String> list(String value) {
            return Arrays.stream(value.split(",")).map(String::strip).filter(s -> !s.isEmpty() && !s.equals("none"))
                    .collect(Collectors.toCollection(TreeSet::new));
        }
    }
}
