package dev.enclavekms.applet;

import javacard.framework.Util;
import javacard.security.AESKey;
import javacard.security.Signature;
import javacardx.crypto.Cipher;

/**
 * The card's AEAD (docs/formats.md, "Card AEAD"): AES-256-CTR under the slot's encryption
 * key, then AES-CMAC under its separate MAC key over {@code SHA-256(AAD) ‖ IV ‖ ciphertext}.
 * CTR is computed here from AES-ECB, so the input may arrive in chunks of any length; the
 * counter block is IV (12) ‖ block counter (4, from 1). State lives in TransientState and is
 * wiped by {@link #wipe}.
 */
final class AeadStream implements Constants {

    private final TransientState ram;
    private final Cipher ecb;
    private final Signature cmac;

    AeadStream(TransientState ram) {
        this.ram = ram;
        ecb = Cipher.getInstance(Cipher.ALG_AES_BLOCK_128_ECB_NOPAD, false);
        cmac = Signature.getInstance(Signature.ALG_AES_CMAC_128, false);
    }

    /** Starts a stream: the IV (12 bytes at {@code iv}) and the AAD digest go into the MAC. */
    void begin(AESKey encryptionKey, AESKey macKey, byte[] aadDigest, short aadOffset, byte[] iv, short ivOffset) {
        byte[] st = ram.state;
        Util.arrayCopyNonAtomic(iv, ivOffset, st, TransientState.CTR_BLOCK, IV_BYTES);
        Util.arrayFillNonAtomic(st, (short) (TransientState.CTR_BLOCK + IV_BYTES), (short) 4, (byte) 0);
        st[(short) (TransientState.CTR_BLOCK + 15)] = 1;
        st[TransientState.KEYSTREAM_USED] = (byte) BLOCK;
        ecb.init(encryptionKey, Cipher.MODE_ENCRYPT);
        cmac.init(macKey, Signature.MODE_SIGN);
        cmac.update(aadDigest, aadOffset, DIGEST_BYTES);
        cmac.update(iv, ivOffset, IV_BYTES);
    }

    /** Encrypts {@code length} bytes to {@code out} and MACs the ciphertext. */
    void encrypt(byte[] in, short offset, short length, byte[] out, short outOffset) {
        xorKeystream(in, offset, length, out, outOffset);
        if (length > 0) {
            cmac.update(out, outOffset, length);
        }
    }

    /** MACs {@code length} bytes of ciphertext, then decrypts them to {@code out}. */
    void decrypt(byte[] in, short offset, short length, byte[] out, short outOffset) {
        macOnly(in, offset, length);
        xorKeystream(in, offset, length, out, outOffset);
    }

    /** Adds ciphertext to the MAC without decrypting it (END checks the tag first). */
    void macOnly(byte[] in, short offset, short length) {
        if (length > 0) {
            cmac.update(in, offset, length);
        }
    }

    /** Decrypts ciphertext that {@link #macOnly} already added and {@link #verify} accepted. */
    void decryptAuthentic(byte[] in, short offset, short length, byte[] out, short outOffset) {
        xorKeystream(in, offset, length, out, outOffset);
    }

    /** Ends an encryption: the 16-byte tag to {@code out}. */
    short tag(byte[] out, short outOffset) {
        return cmac.sign(out, outOffset, (short) 0, out, outOffset);
    }

    /** Ends a decryption's MAC: true when the tag at {@code tag} matches (constant time in Signature). */
    boolean verify(byte[] tag, short tagOffset) {
        byte[] st = ram.state;
        short computed = TransientState.CHANNEL_IV; // free while a stream command runs
        cmac.sign(st, computed, (short) 0, st, computed);
        // Compare without an early exit.
        byte diff = 0;
        for (short i = 0; i < TAG_BYTES; i++) {
            diff |= (byte) (st[(short) (computed + i)] ^ tag[(short) (tagOffset + i)]);
        }
        Util.arrayFillNonAtomic(st, computed, TAG_BYTES, (byte) 0);
        return diff == 0;
    }

    /** Wipes counter block and keystream. */
    void wipe() {
        Util.arrayFillNonAtomic(ram.state, TransientState.CTR_BLOCK, (short) (2 * BLOCK), (byte) 0);
        ram.state[TransientState.KEYSTREAM_USED] = 0;
    }

    private void xorKeystream(byte[] in, short offset, short length, byte[] out, short outOffset) {
        byte[] st = ram.state;
        short used = st[TransientState.KEYSTREAM_USED];
        for (short i = 0; i < length; i++) {
            if (used == BLOCK) {
                ecb.doFinal(st, TransientState.CTR_BLOCK, BLOCK, st, TransientState.KEYSTREAM);
                nextCounter(st);
                used = 0;
            }
            out[(short) (outOffset + i)] = (byte) (in[(short) (offset + i)] ^ st[(short) (TransientState.KEYSTREAM + used)]);
            used++;
        }
        st[TransientState.KEYSTREAM_USED] = (byte) used;
    }

    private static void nextCounter(byte[] st) {
        for (short p = (short) (TransientState.CTR_BLOCK + 15); p >= (short) (TransientState.CTR_BLOCK + IV_BYTES); p--) {
            st[p]++;
            if (st[p] != 0) {
                return;
            }
        }
    }
}
