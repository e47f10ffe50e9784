package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.params.RSA_PKCS_PSS_PARAMS;

import java.io.File;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKG_MGF1_SHA256;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_ECDSA;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_EDDSA;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_RSA_PKCS_PSS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_SHA256;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_PRIVATE_KEY;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_PUBLIC_KEY;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_SECRET_KEY;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_GENERAL_ERROR;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_KEY_FUNCTION_NOT_PERMITTED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_KEY_HANDLE_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_KEY_TYPE_INCONSISTENT;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_OBJECT_HANDLE_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_SESSION_HANDLE_INVALID;

/**
 * The FFM binding against the wrapper on one real SoftHSM token and the same keys: what one
 * encrypts the other decrypts, both ways; FFM signatures checked by the wrapper (C_Verify) and
 * by OpenSSL; every device error provoked for real comes back with the same CKR and the same
 * shape through both; output buffers that are too small; native plaintext wiped.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FfmBindingTest {

    private static final byte[] AAD = "{\"model\":\"m\",\"tier\":\"hot\"}".getBytes(StandardCharsets.UTF_8);

    private TestTokens.TestToken token;
    private Pkcs11Enclave ffm;
    private Pkcs11Enclave wrapper;
    private TokenInspector inspector;
    private final Map<KeyAlgorithm, ObjectId> keys = new EnumMap<>(KeyAlgorithm.class);
    private final Map<KeyAlgorithm, PublicKey> publicKeys = new EnumMap<>(KeyAlgorithm.class);
    private Path dir;

    @BeforeAll
    void openBothBindingsOnOneToken() throws Exception {
        token = TestTokens.fresh("p11-ffm");
        ffm = token.open(); // the default
        wrapper = Pkcs11Enclave.open(token.config().withBinding(Pkcs11Binding.WRAPPER));
        for (KeyAlgorithm a : KeyAlgorithm.values()) {
            ObjectId id = ObjectId.random();
            PublicKey pk = ffm.generate(id, a, "ffm " + a);
            keys.put(a, id);
            if (pk != null) {
                publicKeys.put(a, pk);
            }
        }
        inspector = new TokenInspector(token);
        dir = Files.createTempDirectory("ffm-binding-test");
    }

    @AfterAll
    void close() throws Exception {
        if (inspector != null) {
            inspector.close();
        }
        ffm.close();
        wrapper.close();
        if (dir != null) {
            try (var files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
            }
        }
    }

    // ---------------------------------------------------------------- selection

    @Test
    void binding_defaultIsFfm_wrapperWhenConfigured() {
        assertEquals(Pkcs11Binding.FFM, ffm.binding());
        assertInstanceOf(FfmHotCalls.class, ffm.hotCalls());
        assertEquals(Pkcs11Binding.WRAPPER, wrapper.binding());
        assertEquals(Pkcs11Binding.FFM, new Pkcs11Config(Pkcs11Config.DEFAULT_LIBRARY, "x", null, Path.of("pin"), 4)
                .binding(), "the five-argument constructor keeps its meaning, with the default binding");
        Pkcs11Config w = token.config().withBinding(Pkcs11Binding.WRAPPER);
        assertEquals(Pkcs11Binding.WRAPPER, w.withSessionPoolSize(2).withLibrary(w.library()).binding());
    }

    @Test
    void functionList_readOncePerLibrary() throws Exception {
        assertNotNull(inspector.library.ffm());
        assertTrue(inspector.library.ffm() == inspector.library.ffm());
    }

    // ---------------------------------------------------------------- encrypt / decrypt across bindings

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 32, 511, 512, 513, 5000, 70_000})
    void encryptDecrypt_acrossBindings_bothWays(int size) throws Exception {
        ObjectId key = keys.get(KeyAlgorithm.AES_256_GCM);
        byte[] plaintext = new byte[size];
        new Random(size).nextBytes(plaintext);
        Sealed byFfm = ffm.encrypt(key, AAD, plaintext);
        Sealed byWrapper = wrapper.encrypt(key, AAD, plaintext);
        assertEquals(size + Pkcs11Enclave.TAG_BYTES, byFfm.ciphertext().length);
        try (SecretBytes a = wrapper.decrypt(key, AAD, byFfm); SecretBytes b = ffm.decrypt(key, AAD, byWrapper);
             SecretBytes c = ffm.decrypt(key, AAD, byFfm)) {
            assertArrayEquals(plaintext, a.reveal());
            assertArrayEquals(plaintext, b.reveal());
            assertArrayEquals(plaintext, c.reveal());
        }
        // No AAD at all is the empty AAD through both.
        Sealed noAad = ffm.encrypt(key, null, plaintext);
        try (SecretBytes d = wrapper.decrypt(key, new byte[0], noAad)) {
            assertArrayEquals(plaintext, d.reveal());
        }
    }

    @Test
    void decrypt_badTagOrOtherAad_authenticationFailedThroughBoth() throws Exception {
        ObjectId key = keys.get(KeyAlgorithm.AES_256_GCM);
        Sealed sealed = ffm.encrypt(key, AAD, new byte[32]);
        byte[] flipped = sealed.ciphertext().clone();
        flipped[flipped.length - 1] ^= 1;
        Sealed bad = new Sealed(sealed.iv(), flipped);
        for (Pkcs11Enclave e : List.of(ffm, wrapper)) {
            assertThrows(EnclaveException.AuthenticationFailed.class, () -> e.decrypt(key, AAD, bad), e.binding().name());
            assertThrows(EnclaveException.AuthenticationFailed.class, () -> e.decrypt(key, new byte[] {1}, sealed),
                    e.binding().name());
            try (SecretBytes ok = e.decrypt(key, AAD, sealed)) {
                assertEquals(32, ok.length(), "the next call works");
            }
        }
    }

    @Test
    void keyOfTheWrongKind_sameTypedFailureThroughBoth() throws Exception {
        for (Pkcs11Enclave e : List.of(ffm, wrapper)) {
            assertThrows(EnclaveException.ObjectNotFound.class,
                    () -> e.encrypt(keys.get(KeyAlgorithm.EC_P256_SHA256), AAD, new byte[1]));
            assertThrows(EnclaveException.BadInput.class,
                    () -> e.encrypt(keys.get(KeyAlgorithm.HMAC_SHA256), AAD, new byte[1]));
            assertThrows(EnclaveException.BadInput.class,
                    () -> e.sign(keys.get(KeyAlgorithm.ED25519), KeyAlgorithm.EC_P256_SHA256, new byte[32]));
        }
    }

    // ---------------------------------------------------------------- signatures

    @ParameterizedTest
    @EnumSource(value = KeyAlgorithm.class, names = {"EC_P256_SHA256", "EC_P384_SHA384", "ED25519", "RSA_3072_PSS_SHA256"})
    void sign_ffmSignature_verifiedByOpenSsl(KeyAlgorithm algorithm) throws Exception {
        byte[] message = ("model manifest for " + algorithm).getBytes(StandardCharsets.UTF_8);
        byte[] input = algorithm.digestName() == null ? message
                : MessageDigest.getInstance(algorithm.digestName()).digest(message);
        byte[] signature = ffm.sign(keys.get(algorithm), algorithm, input);
        assertEquals(Pkcs11Binding.FFM, ffm.binding());
        assertTrue(openSslVerifies(algorithm, message, signature), algorithm + ": OpenSSL rejected the FFM signature");
        message[0] ^= 1;
        assertFalse(openSslVerifies(algorithm, message, signature), "the check can fail");
    }

    @Test
    void sign_ffmRawSignatures_verifiedByTheWrapper() throws Exception {
        FfmHotCalls hot = new FfmHotCalls(inspector.library.ffm());
        byte[] digest = MessageDigest.getInstance("SHA-256").digest(new byte[] {1, 2, 3});
        verifyByWrapper(KeyAlgorithm.EC_P256_SHA256, new Mechanism(CKM_ECDSA), digest,
                hot.sign(inspector.session, HotCalls.SignMechanism.ECDSA, priv(KeyAlgorithm.EC_P256_SHA256), digest));
        byte[] digest384 = MessageDigest.getInstance("SHA-384").digest(new byte[] {1, 2, 3});
        verifyByWrapper(KeyAlgorithm.EC_P384_SHA384, new Mechanism(CKM_ECDSA), digest384,
                hot.sign(inspector.session, HotCalls.SignMechanism.ECDSA, priv(KeyAlgorithm.EC_P384_SHA384), digest384));
        verifyByWrapper(KeyAlgorithm.RSA_3072_PSS_SHA256,
                new Mechanism(CKM_RSA_PKCS_PSS, new RSA_PKCS_PSS_PARAMS(CKM_SHA256, CKG_MGF1_SHA256, 32)), digest,
                hot.sign(inspector.session, HotCalls.SignMechanism.RSA_PSS_SHA256, priv(KeyAlgorithm.RSA_3072_PSS_SHA256),
                        digest));
        byte[] message = "pure Ed25519".getBytes(StandardCharsets.UTF_8);
        verifyByWrapper(KeyAlgorithm.ED25519, new Mechanism(CKM_EDDSA), message,
                hot.sign(inspector.session, HotCalls.SignMechanism.EDDSA, priv(KeyAlgorithm.ED25519), message));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 64, 600})
    void deterministicOutputs_sameBytesThroughBoth(int size) throws Exception {
        byte[] data = new byte[size];
        new Random(size).nextBytes(data);
        assertArrayEquals(wrapper.hmac(keys.get(KeyAlgorithm.HMAC_SHA256), data),
                ffm.hmac(keys.get(KeyAlgorithm.HMAC_SHA256), data), "HMAC, " + size + " bytes");
        if (size > 0) { // Ed25519 over an empty message is refused before either binding
            assertArrayEquals(wrapper.sign(keys.get(KeyAlgorithm.ED25519), KeyAlgorithm.ED25519, data),
                    ffm.sign(keys.get(KeyAlgorithm.ED25519), KeyAlgorithm.ED25519, data), "Ed25519, " + size + " bytes");
        }
    }

    // ---------------------------------------------------------------- errors, raw

    @Test
    void deviceErrors_sameCkrAndShapeThroughBothBindings() throws Exception {
        FfmHotCalls viaFfm = new FfmHotCalls(inspector.library.ffm());
        long aes = inspector.only(CKO_SECRET_KEY, keys.get(KeyAlgorithm.AES_256_GCM));
        long ec = priv(KeyAlgorithm.EC_P256_SHA256);
        long hmacKey = inspector.only(CKO_SECRET_KEY, keys.get(KeyAlgorithm.HMAC_SHA256));
        byte[] iv = new byte[Pkcs11Enclave.IV_BYTES];
        byte[] ct;
        Session s = fresh();
        try {
            ct = viaFfm.encrypt(s, aes, iv, AAD, new byte[32]);
        } finally {
            s.closeSession();
        }
        byte[] badTag = ct.clone();
        badTag[0] ^= 1;

        // A tag that does not verify: C_Decrypt fails, after a successful C_DecryptInit.
        long tag = sameFailure(true, h -> h.decrypt(fresh(), aes, iv, AAD, badTag));
        assertEquals(CKR_GENERAL_ERROR, tag, "SoftHSM 2.6.1's answer to a bad tag");
        // An unknown key handle: C_DecryptInit / C_SignInit fails.
        long unknown = sameFailure(false, h -> h.decrypt(fresh(), 0x7fff_fff0L, iv, AAD, ct));
        assertTrue(unknown == CKR_KEY_HANDLE_INVALID || unknown == CKR_OBJECT_HANDLE_INVALID, Long.toHexString(unknown));
        sameFailure(false, h -> h.sign(fresh(), HotCalls.SignMechanism.ECDSA, 0x7fff_fff0L, new byte[32]));
        // A closed session.
        long closed = sameFailure(false, h -> {
            Session gone = fresh();
            gone.closeSession();
            return h.encrypt(gone, aes, iv, AAD, new byte[1]);
        });
        assertEquals(CKR_SESSION_HANDLE_INVALID, closed);
        sameFailure(false, h -> {
            Session gone = fresh();
            gone.closeSession();
            return h.sign(gone, HotCalls.SignMechanism.ECDSA, ec, new byte[32]);
        });
        // Keys of the wrong type for the mechanism.
        long wrongType = sameFailure(false, h -> h.sign(fresh(), HotCalls.SignMechanism.ECDSA, aes, new byte[32]));
        assertTrue(wrongType == CKR_KEY_TYPE_INCONSISTENT || wrongType == CKR_KEY_FUNCTION_NOT_PERMITTED,
                Long.toHexString(wrongType));
        sameFailure(false, h -> h.decrypt(fresh(), ec, iv, AAD, ct));
        sameFailure(false, h -> h.sign(fresh(), HotCalls.SignMechanism.HMAC_SHA256, aes, new byte[32]));
        // Not provoked: CKM_RSA_PKCS_PSS with an EC key. SoftHSM 2.6.1 accepts the C_SignInit and
        // then crashes the process in C_Sign (BN_num_bits; measured through FFM, and the wrapper
        // makes the same two calls). The enclave never asks: it checks the key's algorithm first.
        sameFailure(false, h -> h.encrypt(fresh(), hmacKey, iv, AAD, new byte[1]));
    }

    @Test
    void sessionsClosedBehindItsBack_ffmEnclaveReopensOnceAndSignsAndDecrypts() throws Exception {
        ObjectId aes = keys.get(KeyAlgorithm.AES_256_GCM);
        Sealed sealed = ffm.encrypt(aes, AAD, new byte[] {4, 5});
        int reopens = ffm.reopenCount();
        inspector.raw.C_CloseAllSessions(inspector.slot.getSlotID());
        try {
            byte[] digest = new byte[32];
            assertNotNull(ffm.sign(keys.get(KeyAlgorithm.EC_P256_SHA256), KeyAlgorithm.EC_P256_SHA256, digest));
            assertEquals(reopens + 1, ffm.reopenCount());
            try (SecretBytes back = ffm.decrypt(aes, AAD, sealed)) {
                assertArrayEquals(new byte[] {4, 5}, back.reveal());
            }
            assertEquals(reopens + 1, ffm.reopenCount());
        } finally {
            // The inspector's own session went too; the wrapper enclave reopens on its next call.
            inspector.close();
            inspector = new TokenInspector(token);
        }
    }

    // ---------------------------------------------------------------- buffers

    @Test
    void outputLongerThanTheBuffer_bufferTooSmallAnsweredAndGrown() throws Exception {
        FfmHotCalls tiny = new FfmHotCalls(inspector.library.ffm(), 16);
        byte[] digest = MessageDigest.getInstance("SHA-256").digest(new byte[] {7});
        verifyByWrapper(KeyAlgorithm.EC_P256_SHA256, new Mechanism(CKM_ECDSA), digest,
                tiny.sign(inspector.session, HotCalls.SignMechanism.ECDSA, priv(KeyAlgorithm.EC_P256_SHA256), digest));
        verifyByWrapper(KeyAlgorithm.RSA_3072_PSS_SHA256,
                new Mechanism(CKM_RSA_PKCS_PSS, new RSA_PKCS_PSS_PARAMS(CKM_SHA256, CKG_MGF1_SHA256, 32)), digest,
                tiny.sign(inspector.session, HotCalls.SignMechanism.RSA_PSS_SHA256,
                        priv(KeyAlgorithm.RSA_3072_PSS_SHA256), digest));
        assertEquals(384, tiny.idleScratch().outputBuffer().byteSize(), "grown to the RSA-3072 signature the module asked for");
        long aes = inspector.only(CKO_SECRET_KEY, keys.get(KeyAlgorithm.AES_256_GCM));
        byte[] iv = new byte[Pkcs11Enclave.IV_BYTES];
        byte[] plaintext = new byte[100];
        new Random(1).nextBytes(plaintext);
        byte[] ct = tiny.encrypt(inspector.session, aes, iv, AAD, plaintext);
        assertArrayEquals(plaintext, WrapperHotCalls.INSTANCE.decrypt(inspector.session, aes, iv, AAD, ct));
    }

    @Test
    void decrypt_nativePlaintextBuffersWipedAfterCopyingOut() throws Exception {
        ObjectId key = keys.get(KeyAlgorithm.AES_256_GCM);
        byte[] plaintext = new byte[48];
        java.util.Arrays.fill(plaintext, (byte) 0x5a);
        Sealed sealed = ffm.encrypt(key, AAD, plaintext);
        try (SecretBytes back = ffm.decrypt(key, AAD, sealed)) {
            assertArrayEquals(plaintext, back.reveal());
        }
        // The one scratch these sequential calls used, back in the pool: the C_Decrypt output
        // (the plaintext) and the C_Encrypt input (the plaintext) are zero now.
        NativeScratch scratch = ((FfmHotCalls) ffm.hotCalls()).idleScratch();
        assertNotNull(scratch);
        assertAllZero(scratch.outputBuffer());
        assertAllZero(scratch.inputBuffer());
    }

    // ---------------------------------------------------------------- helpers

    @FunctionalInterface
    private interface RawCall {
        byte[] run(HotCalls binding) throws PKCS11Exception;
    }

    /**
     * Runs {@code call} through both bindings; both must fail with the same CKR and, both or
     * neither, as a failure of the operation after its Init. Returns the CKR.
     */
    private long sameFailure(boolean afterInit, RawCall call) {
        FfmHotCalls viaFfm = new FfmHotCalls(inspector.library.ffm());
        PKCS11Exception f = assertThrows(PKCS11Exception.class, () -> call.run(viaFfm));
        PKCS11Exception w = assertThrows(PKCS11Exception.class, () -> call.run(WrapperHotCalls.INSTANCE));
        assertEquals(w.getErrorCode(), f.getErrorCode(), "FFM " + f.getErrorName() + ", wrapper " + w.getErrorName());
        assertEquals(afterInit, f instanceof HotCalls.OperationFailed, "FFM: " + f.getErrorName());
        assertEquals(afterInit, w instanceof HotCalls.OperationFailed, "wrapper: " + w.getErrorName());
        return f.getErrorCode();
    }

    /** A new session (logged in: the login belongs to the application). */
    private Session fresh() throws PKCS11Exception {
        return inspector.slot.getToken().openSession(true);
    }

    private long priv(KeyAlgorithm a) throws PKCS11Exception {
        return inspector.only(CKO_PRIVATE_KEY, keys.get(a));
    }

    private void verifyByWrapper(KeyAlgorithm a, Mechanism m, byte[] data, byte[] signature) throws Exception {
        Session s = fresh();
        try {
            s.verifyInit(m, inspector.only(CKO_PUBLIC_KEY, keys.get(a)));
            s.verify(data, signature); // throws CKR_SIGNATURE_INVALID on a bad one
        } finally {
            s.closeSession();
        }
        Session t = fresh();
        try {
            byte[] other = data.clone();
            other[0] ^= 1;
            t.verifyInit(m, inspector.only(CKO_PUBLIC_KEY, keys.get(a)));
            assertThrows(PKCS11Exception.class, () -> t.verify(other, signature), "the check can fail");
        } finally {
            t.closeSession();
        }
    }

    private static void assertAllZero(MemorySegment segment) {
        byte[] bytes = segment.toArray(JAVA_BYTE);
        for (int i = 0; i < bytes.length; i++) {
            assertEquals(0, bytes[i], "native byte " + i + " of " + bytes.length + " not wiped");
        }
    }

    private boolean openSslVerifies(KeyAlgorithm algorithm, byte[] message, byte[] signature) throws Exception {
        Path pem = dir.resolve(algorithm + ".pem");
        Files.writeString(pem, "-----BEGIN PUBLIC KEY-----\n"
                + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(publicKeys.get(algorithm).getEncoded())
                + "\n-----END PUBLIC KEY-----\n");
        Path msg = dir.resolve(algorithm + ".msg");
        Files.write(msg, message);
        Path sig = dir.resolve(algorithm + ".sig");
        Files.write(sig, signature);
        List<String> cmd = new ArrayList<>(switch (algorithm) {
            case EC_P256_SHA256 -> List.of("openssl", "dgst", "-sha256");
            case EC_P384_SHA384 -> List.of("openssl", "dgst", "-sha384");
            case RSA_3072_PSS_SHA256 -> List.of("openssl", "dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                    "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256");
            default -> List.of("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem.toString(), "-rawin",
                    "-in", msg.toString(), "-sigfile", sig.toString());
        });
        if (algorithm != KeyAlgorithm.ED25519) {
            cmd.addAll(List.of("-verify", pem.toString(), "-signature", sig.toString(), msg.toString()));
        }
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "openssl did not finish");
        boolean verified = p.exitValue() == 0 && out.contains("Verified");
        if (!verified) {
            assertTrue(out.contains("Verification failure") || out.contains("Signature Verification Failure")
                    || out.contains("verification failure"), "openssl failed otherwise: " + out);
        }
        return verified;
    }
}
