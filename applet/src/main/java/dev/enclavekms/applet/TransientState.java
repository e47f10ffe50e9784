package dev.enclavekms.applet;

import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * Everything the applet keeps in RAM (cleared on deselect by the card), with named offsets.
 * Buffers that ever hold secrets are wiped by their user right after use; each wipe has a
 * test in KeyVaultWipeTest.
 */
final class TransientState {

    // ---- state[]: small fields with named offsets
    /** 1 while a secure channel is open. */
    static final short CHANNEL_OPEN = 0;
    /** The INS of the open stream (HMAC, ENCRYPT, DECRYPT), 0 when none. */
    static final short STREAM_INS = 1;
    /** The slot the open stream uses. */
    static final short STREAM_SLOT = 2;
    /** How many bytes of KEYSTREAM are used up (16 = none left). */
    static final short KEYSTREAM_USED = 3;
    /** The channel's command counter, 4 bytes big-endian: the last accepted command. */
    static final short COUNTER = 4;
    /** CTR counter block of the open AEAD stream: IV (12) and block counter (4). */
    static final short CTR_BLOCK = 8;
    /** The current keystream block of the open AEAD stream. */
    static final short KEYSTREAM = 24;
    /** B(n) / Br(n) of the command being processed. */
    static final short CHANNEL_BLOCK = 40;
    /** The channel IV derived from CHANNEL_BLOCK. */
    static final short CHANNEL_IV = 56;
    static final short STATE_BYTES = 72;

    // ---- scratch[]: secrets for the duration of one command
    /** Fresh AES/HMAC key bytes during GENERATE; ECDH secrets Ze ‖ Zs during OPEN CHANNEL. */
    static final short SECRET = 0;
    static final short SECRET_BYTES = 64;
    /** X9.63 KDF output during OPEN CHANNEL: S-ENC, S-MAC, S-RMAC, K-RECEIPT. */
    static final short KDF = 64;
    static final short KDF_BYTES = 128;
    /** EC private scalar being normalised after key generation. */
    static final short SCALAR = 192;
    static final short SCRATCH_BYTES = 224;

    /** Response data being assembled (before the channel pads and encrypts it in place). */
    static final short OUT_BYTES = 256;

    final byte[] state;
    final byte[] scratch;
    final byte[] out;

    TransientState() {
        state = JCSystem.makeTransientByteArray(STATE_BYTES, JCSystem.CLEAR_ON_DESELECT);
        scratch = JCSystem.makeTransientByteArray(SCRATCH_BYTES, JCSystem.CLEAR_ON_DESELECT);
        out = JCSystem.makeTransientByteArray(OUT_BYTES, JCSystem.CLEAR_ON_DESELECT);
    }

    void wipeScratch(short offset, short length) {
        Util.arrayFillNonAtomic(scratch, offset, length, (byte) 0);
    }

    void wipeOut() {
        Util.arrayFillNonAtomic(out, (short) 0, OUT_BYTES, (byte) 0);
    }
}
