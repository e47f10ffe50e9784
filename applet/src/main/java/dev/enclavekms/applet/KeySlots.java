package dev.enclavekms.applet;

import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.AESKey;
import javacard.security.ECPrivateKey;
import javacard.security.ECPublicKey;
import javacard.security.HMACKey;
import javacard.security.KeyBuilder;
import javacard.security.KeyPair;

/**
 * The key slots in persistent memory. A slot is free when its algorithm is
 * {@link Constants#ALG_NONE}; its key objects are allocated at install for every algorithm
 * the card supports, and only those of the slot's algorithm hold a key.
 *
 * <p>Ordering makes a torn update harmless: GENERATE fills the key objects before it writes
 * the slot record (algorithm, id, label) in one transaction, and DELETE clears the record in
 * a transaction before it clears the keys. A slot whose record is free never serves, whatever
 * its key objects hold.
 */
final class KeySlots implements Constants {

    private final byte[] algorithms = new byte[SLOT_COUNT];
    private final byte[] idLengths = new byte[SLOT_COUNT];
    private final byte[] ids = new byte[(short) (SLOT_COUNT * MAX_ID)];
    private final byte[] labelLengths = new byte[SLOT_COUNT];
    private final byte[] labels = new byte[(short) (SLOT_COUNT * MAX_LABEL)];

    final AESKey[] encryptionKeys;
    final AESKey[] macKeys;
    final HMACKey[] hmacKeys;
    final KeyPair[] pairs;

    KeySlots(boolean hmac) {
        encryptionKeys = new AESKey[SLOT_COUNT];
        macKeys = new AESKey[SLOT_COUNT];
        hmacKeys = hmac ? new HMACKey[SLOT_COUNT] : null;
        pairs = new KeyPair[SLOT_COUNT];
        for (short i = 0; i < SLOT_COUNT; i++) {
            encryptionKeys[i] = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES, KeyBuilder.LENGTH_AES_256, false);
            macKeys[i] = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES, KeyBuilder.LENGTH_AES_256, false);
            if (hmac) {
                hmacKeys[i] = (HMACKey) KeyBuilder.buildKey(KeyBuilder.TYPE_HMAC, (short) (HMAC_KEY_BYTES * 8), false);
            }
            ECPrivateKey priv = (ECPrivateKey) KeyBuilder.buildKey(KeyBuilder.TYPE_EC_FP_PRIVATE, KeyBuilder.LENGTH_EC_FP_256, false);
            ECPublicKey pub = (ECPublicKey) KeyBuilder.buildKey(KeyBuilder.TYPE_EC_FP_PUBLIC, KeyBuilder.LENGTH_EC_FP_256, false);
            pairs[i] = new KeyPair(pub, priv);
        }
    }

    byte algorithm(short slot) {
        return algorithms[slot];
    }

    /** The slot holding the key with this id, or -1. */
    short find(byte[] buf, short idOffset, short idLength) {
        for (short i = 0; i < SLOT_COUNT; i++) {
            if (algorithms[i] != ALG_NONE && idLengths[i] == idLength
                    && Util.arrayCompare(ids, (short) (i * MAX_ID), buf, idOffset, idLength) == 0) {
                return i;
            }
        }
        return -1;
    }

    /** The slot holding the key with this id; {@code 6A88} when there is none. */
    short require(byte[] buf, short idOffset, short idLength) {
        short slot = find(buf, idOffset, idLength);
        if (slot < 0) {
            ISOException.throwIt(SW_NOT_FOUND);
        }
        return slot;
    }

    /** A free slot; {@code 6A84} when all are used. */
    short free() {
        for (short i = 0; i < SLOT_COUNT; i++) {
            if (algorithms[i] == ALG_NONE) {
                return i;
            }
        }
        ISOException.throwIt(SW_NO_FREE_SLOT);
        return -1;
    }

    short freeCount() {
        short n = 0;
        for (short i = 0; i < SLOT_COUNT; i++) {
            if (algorithms[i] == ALG_NONE) {
                n++;
            }
        }
        return n;
    }

    /** Writes the record of a slot whose key objects are already filled: one transaction. */
    void commit(short slot, byte algorithm, byte[] buf, short idOffset, short idLength, short labelOffset,
                short labelLength) {
        JCSystem.beginTransaction();
        Util.arrayCopy(buf, idOffset, ids, (short) (slot * MAX_ID), idLength);
        idLengths[slot] = (byte) idLength;
        Util.arrayCopy(buf, labelOffset, labels, (short) (slot * MAX_LABEL), labelLength);
        labelLengths[slot] = (byte) labelLength;
        algorithms[slot] = algorithm;
        JCSystem.commitTransaction();
    }

    /** Frees the slot's record in a transaction, then clears its key objects. */
    void delete(short slot) {
        JCSystem.beginTransaction();
        algorithms[slot] = ALG_NONE;
        idLengths[slot] = 0;
        labelLengths[slot] = 0;
        JCSystem.commitTransaction();
        clearKeys(slot);
    }

    /** Clears every key object of a slot (also used when a GENERATE fails half-way). */
    void clearKeys(short slot) {
        encryptionKeys[slot].clearKey();
        macKeys[slot].clearKey();
        if (hmacKeys != null) {
            hmacKeys[slot].clearKey();
        }
        pairs[slot].getPrivate().clearKey();
        pairs[slot].getPublic().clearKey();
    }

    /** Writes {@code slot, algorithm, len ‖ id, len ‖ label} at {@code offset}; returns the new offset. */
    short writeEntry(short slot, byte[] out, short offset) {
        out[offset++] = (byte) slot;
        out[offset++] = algorithms[slot];
        out[offset++] = idLengths[slot];
        offset = Util.arrayCopyNonAtomic(ids, (short) (slot * MAX_ID), out, offset, idLengths[slot]);
        short labelLength = (short) (labelLengths[slot] & 0xFF);
        out[offset++] = (byte) labelLength;
        return Util.arrayCopyNonAtomic(labels, (short) (slot * MAX_LABEL), out, offset, labelLength);
    }

    short entryLength(short slot) {
        return (short) (4 + idLengths[slot] + (labelLengths[slot] & 0xFF));
    }
}
