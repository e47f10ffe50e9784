package dev.enclavekms.applet;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.CryptoException;
import javacard.security.ECPublicKey;
import javacard.security.KeyPair;
import javacard.security.RandomData;
import javacard.security.Signature;

/**
 * KeyVault: master keys on a card (docs/javacard.md). This class installs the applet and
 * dispatches commands; state and crypto live in {@link KeySlots}, {@link Pins},
 * {@link TransientState}, {@link SecureChannel} and {@link AeadStream}. Every object is
 * allocated here, at install; {@code process} allocates nothing.
 */
public final class KeyVault extends Applet implements Constants {

    final TransientState ram;
    final Pins pins;
    final SecureChannel channel;
    final KeySlots slots;
    final AeadStream aead;
    private final RandomData random;
    private final Signature ecdsa;
    /** Null when the card lacks HMAC-SHA256 (detected at install; feature bit 2 off). */
    private final Signature hmac;
    private final short features;

    private KeyVault() {
        ram = new TransientState();
        pins = new Pins();
        channel = new SecureChannel(ram);
        random = bestRandom();
        ecdsa = Signature.getInstance(Signature.ALG_ECDSA_SHA_256, false);
        hmac = optionalHmac();
        slots = new KeySlots(hmac != null);
        aead = new AeadStream(ram);
        features = (short) (FEATURE_AES_256 | FEATURE_EC_P256 | (hmac != null ? FEATURE_HMAC_SHA256 : 0));
    }

    /** Install parameters (GP install data or none at all, as jcardsim passes) are not used. */
    public static void install(byte[] parameters, short offset, byte length) {
        KeyVault applet = new KeyVault();
        if (length > 0 && parameters[offset] > 0) {
            applet.register(parameters, (short) (offset + 1), parameters[offset]);
        } else {
            applet.register();
        }
    }

    private static RandomData bestRandom() {
        try {
            return RandomData.getInstance(RandomData.ALG_TRNG);
        } catch (CryptoException e) {
            return RandomData.getInstance(RandomData.ALG_SECURE_RANDOM);
        }
    }

    private static Signature optionalHmac() {
        try {
            return Signature.getInstance(Signature.ALG_HMAC_SHA_256, false);
        } catch (CryptoException e) {
            return null;
        }
    }

    @Override
    public boolean select() {
        forgetSession();
        return true;
    }

    @Override
    public void deselect() {
        forgetSession();
    }

    private void forgetSession() {
        channel.close();
        pins.forget();
        endStream();
    }

    @Override
    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        byte cla = buf[ISO7816.OFFSET_CLA];
        if (cla == CLA_PLAIN) {
            short length = apdu.setIncomingAndReceive();
            short out = plain(buf, length);
            Util.arrayCopyNonAtomic(ram.out, (short) 0, buf, (short) 0, out);
            ram.wipeOut();
            apdu.setOutgoingAndSend((short) 0, out);
        } else if (cla == CLA_SECURE) {
            short length = apdu.setIncomingAndReceive();
            short inner = channel.unwrap(buf, length);
            short sw = ISO7816.SW_NO_ERROR;
            short out = 0;
            try {
                out = secure(buf, inner);
            } catch (ISOException e) {
                sw = e.getReason();
            } catch (RuntimeException e) {
                // CryptoException, TransactionException, a bug: answered inside the channel,
                // which stays open (the counter already moved on).
                sw = ISO7816.SW_UNKNOWN;
            } finally {
                if (JCSystem.getTransactionDepth() != 0) {
                    JCSystem.abortTransaction();
                }
                // The command's plaintext (PINs, data to encrypt) leaves the APDU buffer now.
                Util.arrayFillNonAtomic(buf, ISO7816.OFFSET_CDATA, inner, (byte) 0);
            }
            if (sw != ISO7816.SW_NO_ERROR) {
                out = 0;
                if (ram.state[TransientState.STREAM_INS] != 0) {
                    endStream();
                }
            }
            apdu.setOutgoingAndSend((short) 0, channel.wrap(ram.out, out, sw, buf));
        } else {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
    }

    /** Commands allowed without a channel; returns the length of the response in {@code ram.out}. */
    private short plain(byte[] buf, short length) {
        switch (buf[ISO7816.OFFSET_INS]) {
            case INS_STATUS:
                return processStatus();
            case INS_GET_IDENTITY:
                return channel.identity(ram.out, (short) 0);
            case INS_OPEN_CHANNEL:
                pins.forget();
                endStream();
                return channel.open(buf, ISO7816.OFFSET_CDATA, length, ram.out);
            default:
                ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
                return 0;
        }
    }

    /** Unwrapped commands; the inner data is at OFFSET_CDATA. Returns the response length in {@code ram.out}. */
    private short secure(byte[] buf, short length) {
        byte ins = buf[ISO7816.OFFSET_INS];
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte p2 = buf[ISO7816.OFFSET_P2];
        short data = ISO7816.OFFSET_CDATA;
        // Any command but a continuation of the open stream ends it.
        if (ram.state[TransientState.STREAM_INS] != 0
                && (ins != ram.state[TransientState.STREAM_INS] || (p1 & STREAM_BEGIN) != 0)) {
            endStream();
        }
        switch (ins) {
            case INS_STATUS:
                return processStatus();
            case INS_PERSONALISE:
                pins.personalise(buf, data, length);
                return 0;
            case INS_VERIFY:
                requireP2(p2, P2_PIN);
                pins.verify(buf, data, length);
                return 0;
            case INS_CHANGE_REFERENCE_DATA:
                if (p2 != P2_PIN && p2 != P2_ADMIN_PIN) {
                    ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
                }
                pins.change(p2 == P2_ADMIN_PIN, buf, data, length);
                return 0;
            case INS_RESET_RETRY_COUNTER:
                requireP2(p2, P2_PIN);
                pins.reset(buf, data, length);
                return 0;
            default:
                break;
        }
        pins.requireVerified();
        switch (ins) {
            case INS_GENERATE:
                return processGenerate(p1, buf, data, length);
            case INS_DELETE:
                slots.delete(slots.require(buf, (short) (data + 1), idLength(buf, data, length)));
                return 0;
            case INS_LIST:
                return processList(p1);
            case INS_PUBLIC_KEY:
                return ((ECPublicKey) pairOf(slot(buf, data, length, ALG_EC_P256)).getPublic()).getW(ram.out, (short) 0);
            case INS_RANDOM:
                return processRandom(p1);
            case INS_SIGN:
                return processSign(buf, data, length);
            case INS_HMAC:
                return processHmac(p1, buf, data, length);
            case INS_ENCRYPT:
            case INS_DECRYPT:
                return processAead(ins, p1, buf, data, length);
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
                return 0;
        }
    }

    private short processStatus() {
        byte[] out = ram.out;
        out[0] = VERSION_MAJOR;
        out[1] = VERSION_MINOR;
        Util.setShort(out, (short) 2, features);
        out[4] = pins.pin.getTriesRemaining();
        out[5] = pins.admin.getTriesRemaining();
        out[6] = (byte) SLOT_COUNT;
        out[7] = (byte) slots.freeCount();
        out[8] = (byte) ((pins.personalised() ? FLAG_PERSONALISED : 0) | (channel.isOpen() ? FLAG_CHANNEL_OPEN : 0)
                | (pins.pin.isValidated() ? FLAG_PIN_VERIFIED : 0));
        out[9] = 0;
        return STATUS_BYTES;
    }

    /** GENERATE: P1 = algorithm; data = len ‖ id ‖ len ‖ label. */
    private short processGenerate(byte algorithm, byte[] buf, short data, short length) {
        short end = (short) (data + length);
        short idLength = idLength(buf, data, length);
        short labelAt = (short) (data + 1 + idLength);
        if (labelAt >= end) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        short labelLength = (short) (buf[labelAt] & 0xFF);
        if (labelLength > MAX_LABEL || (short) (labelAt + 1 + labelLength) != end) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        if (algorithm != ALG_AES_256 && algorithm != ALG_EC_P256 && (algorithm != ALG_HMAC_SHA256 || hmac == null)) {
            ISOException.throwIt(ISO7816.SW_FUNC_NOT_SUPPORTED);
        }
        if (slots.find(buf, (short) (data + 1), idLength) >= 0) {
            ISOException.throwIt(SW_ID_IN_USE);
        }
        short slot = slots.free();
        short out = 0;
        byte[] s = ram.scratch;
        try {
            if (algorithm == ALG_AES_256) {
                // Two independent keys: one encrypts (CTR), one authenticates (CMAC).
                random.generateData(s, TransientState.SECRET, (short) (2 * AES_KEY_BYTES));
                slots.encryptionKeys[slot].setKey(s, TransientState.SECRET);
                slots.macKeys[slot].setKey(s, (short) (TransientState.SECRET + AES_KEY_BYTES));
            } else if (algorithm == ALG_HMAC_SHA256) {
                random.generateData(s, TransientState.SECRET, HMAC_KEY_BYTES);
                slots.hmacKeys[slot].setKey(s, TransientState.SECRET, HMAC_KEY_BYTES);
            } else {
                KeyPair pair = slots.pairs[slot];
                channel.generate(pair);
                out = ((ECPublicKey) pair.getPublic()).getW(ram.out, (short) 0);
            }
        } catch (CryptoException e) {
            slots.clearKeys(slot);
            ISOException.throwIt(ISO7816.SW_UNKNOWN);
        } finally {
            ram.wipeScratch(TransientState.SECRET, TransientState.SECRET_BYTES);
        }
        slots.commit(slot, algorithm, buf, (short) (data + 1), idLength, (short) (labelAt + 1), labelLength);
        return out;
    }

    /** LIST from slot P1: next index (FF = done) ‖ entries, as many as fit. */
    private short processList(byte first) {
        if (first < 0 || first >= SLOT_COUNT) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        byte[] out = ram.out;
        short at = 1;
        short slot = first;
        for (; slot < SLOT_COUNT; slot++) {
            if (slots.algorithm(slot) == ALG_NONE) {
                continue;
            }
            if ((short) (at + slots.entryLength(slot)) > LIST_BUDGET) {
                break;
            }
            at = slots.writeEntry(slot, out, at);
        }
        out[0] = slot == SLOT_COUNT ? (byte) 0xFF : (byte) slot;
        return at;
    }

    private short processRandom(byte p1) {
        short length = (short) (p1 & 0xFF);
        if (length == 0 || length > MAX_RANDOM) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        random.generateData(ram.out, (short) 0, length);
        return length;
    }

    /** SIGN: len ‖ id ‖ SHA-256 digest. */
    private short processSign(byte[] buf, short data, short length) {
        short slot = slot(buf, data, length, ALG_EC_P256);
        short digest = (short) (data + 1 + buf[data]);
        if ((short) (data + length - digest) != DIGEST_BYTES) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        ecdsa.init(pairOf(slot).getPrivate(), Signature.MODE_SIGN);
        return ecdsa.signPreComputedHash(buf, digest, DIGEST_BYTES, ram.out, (short) 0);
    }

    /** HMAC stream: BEGIN data = len ‖ id, then message; END returns the 32-byte MAC. */
    private short processHmac(byte p1, byte[] buf, short data, short length) {
        short end = (short) (data + length);
        if ((p1 & STREAM_BEGIN) != 0) {
            short slot = slot(buf, data, length, ALG_HMAC_SHA256);
            hmac.init(slots.hmacKeys[slot], Signature.MODE_SIGN);
            openStream(INS_HMAC, slot);
            data = (short) (data + 1 + buf[data]);
        } else {
            requireStream(INS_HMAC);
        }
        short n = (short) (end - data);
        if ((p1 & STREAM_END) == 0) {
            if (n > 0) {
                hmac.update(buf, data, n);
            }
            return 0;
        }
        endStream();
        return hmac.sign(buf, data, n, ram.out, (short) 0);
    }

    /**
     * ENCRYPT / DECRYPT stream. BEGIN data = len ‖ id ‖ SHA-256(AAD) [‖ IV for DECRYPT], then
     * text; a DECRYPT END ends with the tag, which is checked before that command's own
     * ciphertext is decrypted.
     */
    private short processAead(byte ins, byte p1, byte[] buf, short data, short length) {
        short end = (short) (data + length);
        byte[] out = ram.out;
        short at = 0;
        boolean encrypt = ins == INS_ENCRYPT;
        if ((p1 & STREAM_BEGIN) != 0) {
            short slot = slot(buf, data, length, ALG_AES_256);
            short aad = (short) (data + 1 + buf[data]);
            short iv = (short) (aad + DIGEST_BYTES);
            if (encrypt) {
                if (iv > end) {
                    ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                }
                random.generateData(out, (short) 0, IV_BYTES);
                aead.begin(slots.encryptionKeys[slot], slots.macKeys[slot], buf, aad, out, (short) 0);
                at = IV_BYTES;
                data = iv;
            } else {
                if ((short) (iv + IV_BYTES) > end) {
                    ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                }
                aead.begin(slots.encryptionKeys[slot], slots.macKeys[slot], buf, aad, buf, iv);
                data = (short) (iv + IV_BYTES);
            }
            openStream(ins, slot);
        } else {
            requireStream(ins);
        }
        boolean last = (p1 & STREAM_END) != 0;
        short n = (short) (end - data);
        if (!encrypt && last) {
            n -= TAG_BYTES;
            if (n < 0) {
                endStream();
                ISOException.throwIt(SW_TAG_MISMATCH);
            }
        }
        if (n > MAX_CHUNK) {
            endStream();
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        if (encrypt) {
            aead.encrypt(buf, data, n, out, at);
            at += n;
            if (last) {
                at += aead.tag(out, at);
                endStream();
            }
            return at;
        }
        if (!last) {
            aead.decrypt(buf, data, n, out, (short) 0);
            return n;
        }
        aead.macOnly(buf, data, n);
        if (!aead.verify(buf, (short) (data + n))) {
            endStream();
            ISOException.throwIt(SW_TAG_MISMATCH);
        }
        // Authentic: only now is this command's ciphertext decrypted.
        aead.decryptAuthentic(buf, data, n, out, (short) 0);
        endStream();
        return n;
    }

    private void openStream(byte ins, short slot) {
        ram.state[TransientState.STREAM_INS] = ins;
        ram.state[TransientState.STREAM_SLOT] = (byte) slot;
    }

    private void requireStream(byte ins) {
        if (ram.state[TransientState.STREAM_INS] != ins) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
    }

    /** Ends (or aborts) the open stream and wipes its state. */
    private void endStream() {
        ram.state[TransientState.STREAM_INS] = 0;
        ram.state[TransientState.STREAM_SLOT] = 0;
        aead.wipe();
    }

    /** The slot whose id is at {@code data} (len ‖ id), which must hold a key of {@code algorithm}. */
    private short slot(byte[] buf, short data, short length, byte algorithm) {
        short slot = slots.require(buf, (short) (data + 1), idLength(buf, data, length));
        if (slots.algorithm(slot) != algorithm) {
            ISOException.throwIt(SW_WRONG_KEY_TYPE);
        }
        return slot;
    }

    private KeyPair pairOf(short slot) {
        return slots.pairs[slot];
    }

    /** The id length byte at {@code data}, checked against MAX_ID and the data length. */
    private static short idLength(byte[] buf, short data, short length) {
        if (length < 2) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        short n = buf[data];
        if (n < 1 || n > MAX_ID || (short) (1 + n) > length) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        return n;
    }

    private static void requireP2(byte p2, byte expected) {
        if (p2 != expected) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
    }
}
