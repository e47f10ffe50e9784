package dev.enclavekms.enclave.javacard;

import org.junit.jupiter.api.Test;

import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import javax.smartcardio.CommandAPDU;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.Signature;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static dev.enclavekms.enclave.javacard.KeyVaultHarness.bytes;
import static dev.enclavekms.enclave.javacard.KeyVaultHarness.concat;
import static dev.enclavekms.enclave.javacard.KeyVaultHarness.lvs;
import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The KeyVault applet command by command, in jcardsim, through the host's real secure channel:
 * every command, every status word, the PIN life cycle, the AEAD construction against an
 * independent computation (JDK AES-CTR + Bouncy Castle CMAC), and a scan of every response
 * for key bytes.
 */
class KeyVaultAppletTest {

    private static final int ALG_AES = 1;
    private static final int ALG_P256 = 2;
    private static final int ALG_P384 = 3;
    private static final int ALG_HMAC = 6;

    // ---------------------------------------------------------------- before the channel

    @Test
    void status_plainOnFreshCard_reportsVersionFeaturesTriesSlots() {
        KeyVaultHarness card = new KeyVaultHarness();
        var r = card.plain(INS_STATUS, 0, 0, new byte[0]);
        assertEquals(SW_OK, r.getSW());
        CardStatus s = CardStatus.parse(r.getData());
        assertEquals("1.0", s.version());
        assertEquals(FEATURE_AES_256 | FEATURE_EC_P256 | FEATURE_HMAC_SHA256, s.features());
        assertEquals(3, s.pinTriesLeft());
        assertEquals(3, s.adminPinTriesLeft());
        assertEquals(32, s.slotsTotal());
        assertEquals(32, s.slotsFree());
        assertFalse(s.personalised());
    }

    @Test
    void plainCommands_otherThanStatusIdentityOpen_answer6982() {
        KeyVaultHarness card = new KeyVaultHarness();
        for (int ins : new int[] {INS_PERSONALISE, INS_VERIFY, INS_CHANGE_REFERENCE_DATA, INS_RESET_RETRY_COUNTER,
                INS_GENERATE, INS_DELETE, INS_LIST, INS_PUBLIC_KEY, INS_RANDOM, INS_SIGN, INS_HMAC, INS_ENCRYPT,
                INS_DECRYPT}) {
            assertEquals(SW_SECURITY_STATUS, card.plain(ins, 0, 0, new byte[] {1, 2, 3}).getSW(), "INS " + ins);
        }
    }

    @Test
    void unknownClass_answers6E00() {
        KeyVaultHarness card = new KeyVaultHarness();
        assertEquals(0x6E00, card.transmit(new CommandAPDU(0x90, INS_STATUS, 0, 0, 256)).getSW());
    }

    @Test
    void identity_isStableAndAP256Point() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness();
        byte[] a = card.plain(INS_GET_IDENTITY, 0, 0, new byte[0]).getData();
        byte[] b = card.plain(INS_GET_IDENTITY, 0, 0, new byte[0]).getData();
        assertArrayEquals(a, b);
        SecureSession.publicKey(a); // on the curve, or the JDK refuses it
    }

    @Test
    void openChannel_notAPoint_answers6A80() {
        KeyVaultHarness card = new KeyVaultHarness();
        assertEquals(SW_WRONG_DATA, card.plain(INS_OPEN_CHANNEL, 0, 0, bytes(64)).getSW());
        byte[] offCurve = new byte[65];
        offCurve[0] = 4;
        offCurve[64] = 7;
        assertEquals(SW_WRONG_DATA, card.plain(INS_OPEN_CHANNEL, 0, 0, offCurve).getSW());
    }

    @Test
    void openChannel_toAnotherIdentity_receiptDoesNotVerify() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness();
        SecureSession.Opening opening = SecureSession.begin();
        var answer = card.transmit(opening.command());
        // A valid P-256 key that is not the card's identity: the card cannot make that receipt.
        var g = java.security.KeyPairGenerator.getInstance("EC");
        g.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
        byte[] wrong = SecureSession.point((java.security.interfaces.ECPublicKey) g.generateKeyPair().getPublic());
        assertThrows(SecureSession.ChannelRefused.class, () -> SecureSession.finish(opening, answer, wrong));
    }

    @Test
    void wrappedCommand_withoutChannel_answers6988() {
        KeyVaultHarness card = new KeyVaultHarness();
        assertEquals(SW_SECURE_MESSAGING, card.transmit(new CommandAPDU(CLA_SECURE, INS_STATUS, 0, 0, bytes(32), 256)).getSW());
    }

    // ---------------------------------------------------------------- personalisation and PINs

    @Test
    void beforePersonalise_verifyAndKeyCommands_answer6985() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness().open();
        assertEquals(SW_CONDITIONS, card.sw(INS_VERIFY, 0, P2_PIN, "123456".getBytes(StandardCharsets.UTF_8)));
        assertEquals(SW_CONDITIONS, card.sw(INS_RANDOM, 16, 0, new byte[0]));
        assertEquals(SW_CONDITIONS, card.sw(INS_GENERATE, ALG_AES, 0, lvs(KeyVaultHarness.newId(), new byte[0])));
        assertEquals(SW_OK, card.sw(INS_STATUS, 0, 0, new byte[0]), "STATUS works wrapped too");
    }

    @Test
    void personalise_badLengthsOrTwice_refused() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness().open();
        byte[] admin = "admin-pin-1".getBytes(StandardCharsets.UTF_8);
        assertEquals(SW_WRONG_DATA, card.sw(INS_PERSONALISE, 0, 0, lvs("123".getBytes(StandardCharsets.UTF_8), admin)), "PIN too short");
        assertEquals(SW_WRONG_DATA, card.sw(INS_PERSONALISE, 0, 0, lvs(bytes(17), admin)), "PIN too long");
        assertEquals(SW_WRONG_DATA, card.sw(INS_PERSONALISE, 0, 0, lvs("1234".getBytes(StandardCharsets.UTF_8), bytes(7))), "admin too short");
        assertEquals(SW_WRONG_DATA, card.sw(INS_PERSONALISE, 0, 0, concat(lvs("1234".getBytes(StandardCharsets.UTF_8), admin), new byte[] {0})), "trailing byte");
        card.personalise();
        assertEquals(SW_CONDITIONS, card.sw(INS_PERSONALISE, 0, 0, lvs("9999".getBytes(StandardCharsets.UTF_8), admin)));
        assertTrue(CardStatus.parse(card.ok(INS_STATUS, 0, 0, new byte[0])).personalised());
    }

    @Test
    void keyCommands_beforeVerify_answer6982() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness().open().personalise();
        for (int ins : new int[] {INS_GENERATE, INS_DELETE, INS_LIST, INS_PUBLIC_KEY, INS_RANDOM, INS_SIGN, INS_HMAC,
                INS_ENCRYPT, INS_DECRYPT}) {
            assertEquals(SW_SECURITY_STATUS, card.sw(ins, 0x81, 0, lvs(KeyVaultHarness.newId())), "INS " + ins);
        }
    }

    @Test
    void verify_wrongPinThreeTimes_countsDownThenBlocks_adminResetUnblocks() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness().open().personalise();
        byte[] wrong = "000000".getBytes(StandardCharsets.UTF_8);
        assertEquals(0x63C3, card.sw(INS_VERIFY, 0, P2_PIN, new byte[0]), "empty VERIFY reports tries left");
        assertEquals(0x63C2, card.sw(INS_VERIFY, 0, P2_PIN, wrong));
        assertEquals(0x63C1, card.sw(INS_VERIFY, 0, P2_PIN, wrong));
        assertEquals(SW_PIN_BLOCKED, card.sw(INS_VERIFY, 0, P2_PIN, wrong));
        byte[] right = KeyVaultHarness.PIN.getBytes(StandardCharsets.UTF_8);
        assertEquals(SW_PIN_BLOCKED, card.sw(INS_VERIFY, 0, P2_PIN, right), "blocked even for the right PIN");
        assertEquals(SW_SECURITY_STATUS, card.sw(INS_RANDOM, 8, 0, new byte[0]));
        assertEquals(0, CardStatus.parse(card.ok(INS_STATUS, 0, 0, new byte[0])).pinTriesLeft());

        byte[] newPin = "112233".getBytes(StandardCharsets.UTF_8);
        assertEquals(0x63C2, card.sw(INS_RESET_RETRY_COUNTER, 0, P2_PIN, lvs("wrong-admin".getBytes(StandardCharsets.UTF_8), newPin)));
        card.ok(INS_RESET_RETRY_COUNTER, 0, P2_PIN, lvs(KeyVaultHarness.ADMIN_PIN.getBytes(StandardCharsets.UTF_8), newPin));
        CardStatus s = CardStatus.parse(card.ok(INS_STATUS, 0, 0, new byte[0]));
        assertEquals(3, s.pinTriesLeft());
        assertEquals(3, s.adminPinTriesLeft(), "a correct admin PIN restores its own tries");
        assertEquals(0x63C2, card.sw(INS_VERIFY, 0, P2_PIN, right), "the old PIN is gone");
        card.ok(INS_VERIFY, 0, P2_PIN, newPin);
        assertEquals(SW_OK, card.sw(INS_VERIFY, 0, P2_PIN, new byte[0]), "empty VERIFY once verified");
        assertEquals(8, card.ok(INS_RANDOM, 8, 0, new byte[0]).length);
    }

    @Test
    void adminPin_blockedAfterThreeWrongTries() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness().open().personalise();
        byte[] data = lvs("wrong-admin".getBytes(StandardCharsets.UTF_8), "112233".getBytes(StandardCharsets.UTF_8));
        assertEquals(0x63C2, card.sw(INS_RESET_RETRY_COUNTER, 0, P2_PIN, data));
        assertEquals(0x63C1, card.sw(INS_RESET_RETRY_COUNTER, 0, P2_PIN, data));
        assertEquals(SW_PIN_BLOCKED, card.sw(INS_RESET_RETRY_COUNTER, 0, P2_PIN, data));
        byte[] right = lvs(KeyVaultHarness.ADMIN_PIN.getBytes(StandardCharsets.UTF_8), "112233".getBytes(StandardCharsets.UTF_8));
        assertEquals(SW_PIN_BLOCKED, card.sw(INS_RESET_RETRY_COUNTER, 0, P2_PIN, right));
    }

    @Test
    void changeReferenceData_pinAndAdminPin() throws Exception {
        KeyVaultHarness card = new KeyVaultHarness().open().personalise();
        byte[] old = KeyVaultHarness.PIN.getBytes(StandardCharsets.UTF_8);
        byte[] next = "13572468".getBytes(StandardCharsets.UTF_8);
        assertEquals(0x63C2, card.sw(INS_CHANGE_REFERENCE_DATA, 0, P2_PIN, lvs("999999".getBytes(StandardCharsets.UTF_8), next)));
        assertEquals(SW_WRONG_DATA, card.sw(INS_CHANGE_REFERENCE_DATA, 0, P2_PIN, lvs(old, "12".getBytes(StandardCharsets.UTF_8))));
        card.ok(INS_CHANGE_REFERENCE_DATA, 0, P2_PIN, lvs(old, next));
        assertEquals(8, card.ok(INS_RANDOM, 8, 0, new byte[0]).length, "changing the PIN verifies the new one");
        card.ok(INS_VERIFY, 0, P2_PIN, next);

        byte[] admin = KeyVaultHarness.ADMIN_PIN.getBytes(StandardCharsets.UTF_8);
        byte[] nextAdmin = "admin-24680".getBytes(StandardCharsets.UTF_8);
        card.ok(INS_CHANGE_REFERENCE_DATA, 0, P2_ADMIN_PIN, lvs(admin, nextAdmin));
        assertEquals(0x63C2, card.sw(INS_RESET_RETRY_COUNTER, 0, P2_PIN, lvs(admin, next)));
        card.ok(INS_RESET_RETRY_COUNTER, 0, P2_PIN, lvs(nextAdmin, next));
        assertEquals(SW_INCORRECT_P1P2, card.sw(INS_CHANGE_REFERENCE_DATA, 0, 0x82, lvs(admin, nextAdmin)));
    }

    @Test
    void newChannel_forgetsTheVerifiedPin() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        card.open();
        assertEquals(SW_SECURITY_STATUS, card.sw(INS_RANDOM, 8, 0, new byte[0]));
    }

    // ---------------------------------------------------------------- slots

    @Test
    void generate_statusWords() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(ALG_AES);
        assertEquals(SW_ID_IN_USE, card.sw(INS_GENERATE, ALG_HMAC, 0, lvs(id, new byte[0])));
        assertEquals(SW_FUNC_NOT_SUPPORTED, card.sw(INS_GENERATE, ALG_P384, 0, lvs(KeyVaultHarness.newId(), new byte[0])));
        assertEquals(SW_FUNC_NOT_SUPPORTED, card.sw(INS_GENERATE, 0x7F, 0, lvs(KeyVaultHarness.newId(), new byte[0])));
        assertEquals(SW_WRONG_DATA, card.sw(INS_GENERATE, ALG_AES, 0, lvs(new byte[33], new byte[0])), "id too long");
        assertEquals(SW_WRONG_DATA, card.sw(INS_GENERATE, ALG_AES, 0, lvs(new byte[0], new byte[0])), "empty id");
        assertEquals(SW_WRONG_DATA, card.sw(INS_GENERATE, ALG_AES, 0, lvs(KeyVaultHarness.newId())), "no label");
        byte[] p256 = card.ok(INS_GENERATE, ALG_P256, 0, lvs(KeyVaultHarness.newId(), "p".getBytes(StandardCharsets.UTF_8)));
        assertEquals(65, p256.length);
        assertEquals(0, card.ok(INS_GENERATE, ALG_HMAC, 0, lvs(KeyVaultHarness.newId(), new byte[0])).length);
    }

    @Test
    void generate_allSlotsUsed_answers6A84_deleteFreesOne() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] first = null;
        for (int i = 0; i < 32; i++) {
            byte[] id = card.generate(ALG_AES);
            first = first == null ? id : first;
        }
        assertEquals(0, CardStatus.parse(card.ok(INS_STATUS, 0, 0, new byte[0])).slotsFree());
        assertEquals(SW_NO_FREE_SLOT, card.sw(INS_GENERATE, ALG_AES, 0, lvs(KeyVaultHarness.newId(), new byte[0])));
        card.ok(INS_DELETE, 0, 0, lvs(first));
        card.generate(ALG_AES);
    }

    @Test
    void delete_missingOrTwice_answers6A88_andTheKeyIsGone() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(ALG_HMAC);
        int slot = card.slotOf(id);
        card.ok(INS_DELETE, 0, 0, lvs(id));
        assertEquals(0, card.probe.algorithm(slot));
        assertEquals(SW_NOT_FOUND, card.sw(INS_DELETE, 0, 0, lvs(id)));
        assertEquals(SW_NOT_FOUND, card.sw(INS_HMAC, 0x81, 0, lvs(id)));
    }

    @Test
    void list_manyLongLabels_pagesThroughEveryKey() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        Set<String> generated = new HashSet<>();
        for (int i = 0; i < 5; i++) {
            byte[] id = new byte[32];
            id[0] = (byte) i;
            byte[] label = new byte[180];
            Arrays.fill(label, (byte) ('a' + i));
            card.ok(INS_GENERATE, ALG_AES, 0, lvs(id, label));
            generated.add(java.util.HexFormat.of().formatHex(id));
        }
        Set<String> listed = new HashSet<>();
        int next = 0;
        int pages = 0;
        while (next != 0xFF) {
            byte[] page = card.ok(INS_LIST, next, 0, new byte[0]);
            pages++;
            next = page[0] & 0xFF;
            int at = 1;
            while (at < page.length) {
                int idLength = page[at + 2];
                listed.add(java.util.HexFormat.of().formatHex(Arrays.copyOfRange(page, at + 3, at + 3 + idLength)));
                int labelLength = page[at + 3 + idLength] & 0xFF;
                assertEquals(180, labelLength);
                at += 4 + idLength + labelLength;
            }
        }
        assertEquals(generated, listed);
        assertEquals(5, pages, "one 216-byte entry per page");
        assertEquals(SW_INCORRECT_P1P2, card.sw(INS_LIST, 32, 0, new byte[0]));
    }

    @Test
    void wrongKeyType_answers6981() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] aes = card.generate(ALG_AES);
        byte[] ec = card.generate(ALG_P256);
        byte[] hmac = card.generate(ALG_HMAC);
        assertEquals(SW_WRONG_KEY_TYPE, card.sw(INS_SIGN, 0, 0, concat(lvs(aes), new byte[32])));
        assertEquals(SW_WRONG_KEY_TYPE, card.sw(INS_PUBLIC_KEY, 0, 0, lvs(hmac)));
        assertEquals(SW_WRONG_KEY_TYPE, card.sw(INS_HMAC, 0x81, 0, lvs(ec)));
        assertEquals(SW_WRONG_KEY_TYPE, card.sw(INS_ENCRYPT, 0x81, 0, concat(lvs(hmac), new byte[32])));
        assertEquals(SW_WRONG_KEY_TYPE, card.sw(INS_DECRYPT, 0x81, 0, concat(lvs(ec), new byte[60])));
    }

    // ---------------------------------------------------------------- operations

    @Test
    void random_lengthBounds() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        assertEquals(SW_INCORRECT_P1P2, card.sw(INS_RANDOM, 0, 0, new byte[0]));
        assertEquals(SW_INCORRECT_P1P2, card.sw(INS_RANDOM, 201, 0, new byte[0]));
        assertEquals(200, card.ok(INS_RANDOM, 200, 0, new byte[0]).length);
        assertFalse(Arrays.equals(card.ok(INS_RANDOM, 32, 0, new byte[0]), card.ok(INS_RANDOM, 32, 0, new byte[0])));
    }

    @Test
    void sign_verifiesWithJca_andRefusesOtherDigestLengths() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = KeyVaultHarness.newId();
        byte[] point = card.ok(INS_GENERATE, ALG_P256, 0, lvs(id, new byte[0]));
        assertArrayEquals(point, card.ok(INS_PUBLIC_KEY, 0, 0, lvs(id)));
        byte[] message = bytes(100);
        byte[] der = card.ok(INS_SIGN, 0, 0, concat(lvs(id), MessageDigest.getInstance("SHA-256").digest(message)));
        Signature v = Signature.getInstance("SHA256withECDSA");
        v.initVerify(SecureSession.publicKey(point));
        v.update(message);
        assertTrue(v.verify(der));
        assertEquals(SW_WRONG_LENGTH, card.sw(INS_SIGN, 0, 0, concat(lvs(id), new byte[31])));
        assertEquals(SW_WRONG_LENGTH, card.sw(INS_SIGN, 0, 0, concat(lvs(id), new byte[33])));
    }

    @Test
    void hmac_streamed_equalsJdkHmacWithTheCardsKey() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(ALG_HMAC);
        byte[] message = bytes(500);
        card.ok(INS_HMAC, STREAM_BEGIN, 0, concat(lvs(id), Arrays.copyOf(message, 100)));
        card.ok(INS_HMAC, 0, 0, Arrays.copyOfRange(message, 100, 300));
        byte[] mac = card.ok(INS_HMAC, STREAM_END, 0, Arrays.copyOfRange(message, 300, 500));
        Mac jdk = Mac.getInstance("HmacSHA256");
        jdk.init(new SecretKeySpec(card.probe.hmacKey(card.slotOf(id)), "HmacSHA256"));
        assertArrayEquals(jdk.doFinal(message), mac);
    }

    @Test
    void stream_continuationWithoutBegin_orAfterAnotherCommand_answers6985() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(ALG_HMAC);
        assertEquals(SW_CONDITIONS, card.sw(INS_HMAC, 0, 0, bytes(10)));
        card.ok(INS_HMAC, STREAM_BEGIN, 0, lvs(id));
        card.ok(INS_RANDOM, 4, 0, new byte[0]);
        assertEquals(SW_CONDITIONS, card.sw(INS_HMAC, STREAM_END, 0, bytes(10)), "RANDOM aborted the stream");
        card.ok(INS_HMAC, STREAM_BEGIN, 0, lvs(id));
        card.ok(INS_HMAC, STREAM_END, 0, bytes(10));
        assertEquals(SW_CONDITIONS, card.sw(INS_HMAC, STREAM_END, 0, bytes(10)), "END closed it");
    }

    @Test
    void encrypt_matchesTheDocumentedConstruction_andDecryptInverts() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(ALG_AES);
        byte[] aad = "header||context".getBytes(StandardCharsets.UTF_8);
        byte[] digest = MessageDigest.getInstance("SHA-256").digest(aad);
        byte[] plaintext = bytes(300);
        // Three commands with chunk boundaries off the block grid.
        byte[] a = card.ok(INS_ENCRYPT, STREAM_BEGIN, 0, concat(lvs(id), digest, Arrays.copyOf(plaintext, 37)));
        byte[] b = card.ok(INS_ENCRYPT, 0, 0, Arrays.copyOfRange(plaintext, 37, 190));
        byte[] c = card.ok(INS_ENCRYPT, STREAM_END, 0, Arrays.copyOfRange(plaintext, 190, 300));
        byte[] all = concat(a, b, c);
        byte[] iv = Arrays.copyOf(all, 12);
        byte[] ct = Arrays.copyOfRange(all, 12, all.length - 16);
        byte[] tag = Arrays.copyOfRange(all, all.length - 16, all.length);

        byte[] keys = card.probe.aesKeys(card.slotOf(id));
        Cipher ctr = Cipher.getInstance("AES/CTR/NoPadding");
        ctr.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(keys, 0, 32, "AES"),
                new IvParameterSpec(concat(iv, new byte[] {0, 0, 0, 1})));
        assertArrayEquals(ctr.doFinal(plaintext), ct, "AES-256-CTR, counter block IV ‖ 00000001");
        assertArrayEquals(SecureSession.cmac(Arrays.copyOfRange(keys, 32, 64), digest, iv, ct), tag,
                "AES-CMAC(MAC key, SHA-256(AAD) ‖ IV ‖ ciphertext)");

        assertArrayEquals(plaintext, decryptAll(card, id, digest, iv, ct, tag));
    }

    /** DECRYPT in 128-byte chunks; returns the concatenated plaintext. */
    private static byte[] decryptAll(KeyVaultHarness card, byte[] id, byte[] digest, byte[] iv, byte[] ct, byte[] tag)
            throws Exception {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        int at = 0;
        boolean first = true;
        while (true) {
            int n = Math.min(128, ct.length - at);
            boolean last = at + n == ct.length;
            byte[] chunk = Arrays.copyOfRange(ct, at, at + n);
            byte[] data = concat(first ? concat(lvs(id), digest, iv) : new byte[0], chunk, last ? tag : new byte[0]);
            SecureSession.Reply r = card.send(INS_DECRYPT, (first ? STREAM_BEGIN : 0) | (last ? STREAM_END : 0), 0, data);
            if (r.sw() != SW_OK) {
                throw new AssertionError("DECRYPT answered " + sw(r.sw()));
            }
            out.writeBytes(r.data());
            at += n;
            first = false;
            if (last) {
                return out.toByteArray();
            }
        }
    }

    @Test
    void decrypt_tamperedTagOrShort_answers6984_andReleasesNothing() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] id = card.generate(ALG_AES);
        byte[] digest = new byte[32];
        byte[] sealed = card.ok(INS_ENCRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(id), digest, bytes(40)));
        byte[] iv = Arrays.copyOf(sealed, 12);
        byte[] body = Arrays.copyOfRange(sealed, 12, sealed.length);
        body[body.length - 1] ^= 1;
        SecureSession.Reply r = card.send(INS_DECRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(id), digest, iv, body));
        assertEquals(SW_TAG_MISMATCH, r.sw());
        assertEquals(0, r.data().length, "no plaintext with a failed tag");
        assertEquals(SW_TAG_MISMATCH, card.sw(INS_DECRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(id), digest, iv, new byte[15])));
        assertEquals(SW_WRONG_DATA, card.sw(INS_DECRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(id), digest, new byte[5])));
    }

    @Test
    void unknownInstructionInTheChannel_answers6D00_andTooLongAChunk6700() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        assertEquals(0x6D00, card.sw(0x7E, 0, 0, new byte[0]));
        byte[] id = card.generate(ALG_AES);
        card.ok(INS_ENCRYPT, STREAM_BEGIN, 0, concat(lvs(id), new byte[32]));
        assertEquals(SW_WRONG_LENGTH, card.sw(INS_ENCRYPT, 0, 0, bytes(193)), "at most 192 bytes of text per command");
        assertEquals(SW_CONDITIONS, card.sw(INS_ENCRYPT, STREAM_END, 0, bytes(10)), "the failure ended the stream");
    }

    // ---------------------------------------------------------------- secure messaging

    @Test
    void tamperedMac_answers6988_andClosesTheChannel() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        CommandAPDU good = card.session.wrap(INS_RANDOM, 8, 0, new byte[0]);
        byte[] raw = good.getBytes();
        raw[raw.length - 2] ^= 1; // last MAC byte (before Le)
        assertEquals(SW_SECURE_MESSAGING, card.transmit(new CommandAPDU(raw)).getSW());
        assertFalse(card.probe.sessionKeysSet());
        // Even a correctly wrapped next command is refused: the channel is gone.
        assertEquals(SW_SECURE_MESSAGING, card.transmit(card.session.wrap(INS_STATUS, 0, 0, new byte[0])).getSW());
    }

    @Test
    void replayedCommand_answers6988() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        CommandAPDU first = card.session.wrap(INS_RANDOM, 8, 0, new byte[0]);
        assertEquals(SW_OK, card.session.unwrap(card.transmit(first)).sw());
        assertEquals(SW_SECURE_MESSAGING, card.transmit(first).getSW());
    }

    @Test
    void changedHeader_answers6988() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] raw = card.session.wrap(INS_RANDOM, 8, 0, new byte[0]).getBytes();
        raw[2] = 100; // P1: ask for more random bytes than MACed
        assertEquals(SW_SECURE_MESSAGING, card.transmit(new CommandAPDU(raw)).getSW());
    }

    // ---------------------------------------------------------------- no key bytes

    @Test
    void noResponse_everContainsKeyBytes() throws Exception {
        KeyVaultHarness card = KeyVaultHarness.ready();
        byte[] aes = card.generate(ALG_AES);
        byte[] ec = card.generate(ALG_P256);
        byte[] hmac = card.generate(ALG_HMAC);
        byte[] digest = new byte[32];
        byte[] sealed = card.ok(INS_ENCRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(aes), digest, bytes(64)));
        card.ok(INS_DECRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(aes), digest, sealed));
        card.ok(INS_SIGN, 0, 0, concat(lvs(ec), bytes(32)));
        card.ok(INS_PUBLIC_KEY, 0, 0, lvs(ec));
        card.ok(INS_HMAC, STREAM_BEGIN | STREAM_END, 0, concat(lvs(hmac), bytes(64)));
        card.ok(INS_LIST, 0, 0, new byte[0]);
        card.ok(INS_STATUS, 0, 0, new byte[0]);
        card.ok(INS_RANDOM, 200, 0, new byte[0]);
        card.plain(INS_GET_IDENTITY, 0, 0, new byte[0]);
        card.plain(INS_STATUS, 0, 0, new byte[0]);
        // Error paths answer too.
        card.sw(INS_SIGN, 0, 0, concat(lvs(aes), bytes(32)));
        card.sw(INS_DECRYPT, STREAM_BEGIN | STREAM_END, 0, concat(lvs(aes), digest, new byte[28]));

        byte[][] secrets = {
                card.probe.aesKeys(card.slotOf(aes)), card.probe.hmacKey(card.slotOf(hmac)),
                card.probe.ecPrivate(card.slotOf(ec)), card.probe.identityPrivate(), card.probe.sessionKeys()};
        assertTrue(card.responses.size() > 20);
        for (byte[] secret : secrets) {
            for (byte[] response : card.responses) {
                for (int i = 0; i + 8 <= secret.length; i++) {
                    byte[] window = Arrays.copyOfRange(secret, i, i + 8);
                    assertEquals(-1, indexOf(response, window), "a response holds 8 bytes of a key");
                }
            }
        }
    }

    static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
