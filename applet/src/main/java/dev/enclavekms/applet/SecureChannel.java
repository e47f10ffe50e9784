package dev.enclavekms.applet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;
import javacard.security.AESKey;
import javacard.security.ECPrivateKey;
import javacard.security.ECPublicKey;
import javacard.security.KeyAgreement;
import javacard.security.KeyBuilder;
import javacard.security.KeyPair;
import javacard.security.MessageDigest;
import javacard.security.Signature;
import javacardx.crypto.Cipher;

/**
 * The card's half of the secure channel (docs/javacard.md, "Secure channel"): ECDH with the
 * host's ephemeral key against a fresh card ephemeral key and the static identity key, an
 * X9.63 KDF to four session keys, then AES-CBC + AES-CMAC wrapping of every command and
 * response under a 32-bit command counter.
 */
final class SecureChannel implements Constants {

    /** "KeyVault SC1": the KDF's label, so these keys are bound to this protocol. */
    private static final byte[] KDF_LABEL = {'K', 'e', 'y', 'V', 'a', 'u', 'l', 't', ' ', 'S', 'C', '1'};

    private final TransientState ram;
    /** The card's static identity, generated once at install. */
    final KeyPair identity;
    final KeyPair ephemeral;
    private final KeyAgreement ecdh;
    private final MessageDigest sha256;
    final AESKey sEnc;
    final AESKey sMac;
    final AESKey sRmac;
    final AESKey kReceipt;
    private final Cipher cbc;
    private final Cipher ecb;
    private final Signature cmac;

    SecureChannel(TransientState ram) {
        this.ram = ram;
        identity = newP256Pair();
        generate(identity);
        ephemeral = newP256Pair();
        ecdh = KeyAgreement.getInstance(KeyAgreement.ALG_EC_SVDP_DH_PLAIN, false);
        sha256 = MessageDigest.getInstance(MessageDigest.ALG_SHA_256, false);
        sEnc = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES_TRANSIENT_DESELECT, KeyBuilder.LENGTH_AES_256, false);
        sMac = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES_TRANSIENT_DESELECT, KeyBuilder.LENGTH_AES_256, false);
        sRmac = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES_TRANSIENT_DESELECT, KeyBuilder.LENGTH_AES_256, false);
        kReceipt = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES_TRANSIENT_DESELECT, KeyBuilder.LENGTH_AES_256, false);
        cbc = Cipher.getInstance(Cipher.ALG_AES_BLOCK_128_CBC_NOPAD, false);
        ecb = Cipher.getInstance(Cipher.ALG_AES_BLOCK_128_ECB_NOPAD, false);
        cmac = Signature.getInstance(Signature.ALG_AES_CMAC_128, false);
    }

    static KeyPair newP256Pair() {
        ECPrivateKey priv = (ECPrivateKey) KeyBuilder.buildKey(KeyBuilder.TYPE_EC_FP_PRIVATE, KeyBuilder.LENGTH_EC_FP_256, false);
        ECPublicKey pub = (ECPublicKey) KeyBuilder.buildKey(KeyBuilder.TYPE_EC_FP_PUBLIC, KeyBuilder.LENGTH_EC_FP_256, false);
        return new KeyPair(pub, priv);
    }

    /** Generates a P-256 pair into {@code pair}, parameters set first and S normalised after. */
    void generate(KeyPair pair) {
        P256.setParameters((ECPrivateKey) pair.getPrivate());
        P256.setParameters((ECPublicKey) pair.getPublic());
        pair.genKeyPair();
        normalise((ECPrivateKey) pair.getPrivate());
    }

    /**
     * Rewrites S as exactly 32 bytes. jcardsim 3.0.6.0 can leave a stale byte in a shorter S
     * after regenerating into the same object (≈6 bad signatures per 1,000); on a card this
     * rewrites the same value.
     */
    private void normalise(ECPrivateKey key) {
        byte[] s = ram.scratch;
        short at = TransientState.SCALAR;
        short length = key.getS(s, at);
        if (length < EC_SCALAR_BYTES) {
            short pad = (short) (EC_SCALAR_BYTES - length);
            Util.arrayCopyNonAtomic(s, at, s, (short) (at + pad), length);
            Util.arrayFillNonAtomic(s, at, pad, (byte) 0);
        }
        key.setS(s, at, EC_SCALAR_BYTES);
        ram.wipeScratch(at, EC_SCALAR_BYTES);
    }

    boolean isOpen() {
        return ram.state[TransientState.CHANNEL_OPEN] != 0;
    }

    /** GET IDENTITY: the identity public key into {@code out}; returns its length. */
    short identity(byte[] out, short offset) {
        return ((ECPublicKey) identity.getPublic()).getW(out, offset);
    }

    /**
     * OPEN CHANNEL: derives the session keys from the host's ephemeral public key at
     * {@code buf[offset..offset+65)}; writes card ephemeral key ‖ receipt to {@code out}.
     */
    short open(byte[] buf, short offset, short length, byte[] out) {
        close();
        if (length != EC_POINT_BYTES || buf[offset] != 0x04) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        byte[] s = ram.scratch;
        generate(ephemeral);
        ((ECPublicKey) ephemeral.getPublic()).getW(out, (short) 0);
        try {
            ecdh.init(ephemeral.getPrivate());
            ecdh.generateSecret(buf, offset, length, s, TransientState.SECRET);
            ecdh.init(identity.getPrivate());
            ecdh.generateSecret(buf, offset, length, s, (short) (TransientState.SECRET + 32));
        } catch (RuntimeException e) {
            // Not a point on P-256: a CryptoException on cards, a library exception in jcardsim.
            wipeOpening();
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        // X9.63 KDF: K_i = SHA-256(Ze ‖ Zs ‖ counter_i ‖ SharedInfo), SharedInfo = label ‖ eH ‖ eC.
        byte[] block = ram.state;
        short c = TransientState.CHANNEL_BLOCK;
        for (byte i = 1; i <= 4; i++) {
            Util.arrayFillNonAtomic(block, c, (short) 4, (byte) 0);
            block[(short) (c + 3)] = i;
            sha256.reset();
            sha256.update(s, TransientState.SECRET, TransientState.SECRET_BYTES);
            sha256.update(block, c, (short) 4);
            sha256.update(KDF_LABEL, (short) 0, (short) KDF_LABEL.length);
            sha256.update(buf, offset, length);
            sha256.doFinal(out, (short) 0, EC_POINT_BYTES, s, (short) (TransientState.KDF + (i - 1) * 32));
        }
        sEnc.setKey(s, TransientState.KDF);
        sMac.setKey(s, (short) (TransientState.KDF + 32));
        sRmac.setKey(s, (short) (TransientState.KDF + 64));
        kReceipt.setKey(s, (short) (TransientState.KDF + 96));
        // receipt = CMAC(K-RECEIPT, eC ‖ eH): proves the card holds the identity key (Zs).
        cmac.init(kReceipt, Signature.MODE_SIGN);
        cmac.update(out, (short) 0, EC_POINT_BYTES);
        short receipt = cmac.sign(buf, offset, length, out, EC_POINT_BYTES);
        wipeOpening();
        Util.arrayFillNonAtomic(ram.state, TransientState.COUNTER, (short) 4, (byte) 0);
        ram.state[TransientState.CHANNEL_OPEN] = 1;
        return (short) (EC_POINT_BYTES + receipt);
    }

    /** Forgets everything an opening derived except the session keys. */
    private void wipeOpening() {
        ram.wipeScratch(TransientState.SECRET, (short) (TransientState.SECRET_BYTES + TransientState.KDF_BYTES));
        kReceipt.clearKey();
        ephemeral.getPrivate().clearKey();
    }

    /** Closes the channel: session keys cleared, counter zeroed. */
    void close() {
        ram.state[TransientState.CHANNEL_OPEN] = 0;
        Util.arrayFillNonAtomic(ram.state, TransientState.COUNTER, (short) 4, (byte) 0);
        sEnc.clearKey();
        sMac.clearKey();
        sRmac.clearKey();
    }

    /**
     * Checks and decrypts a wrapped command in place (data at {@code ISO7816.OFFSET_CDATA});
     * returns the inner data length. Any failure closes the channel and throws {@code 6988}.
     */
    short unwrap(byte[] buf, short length) {
        short cLength = (short) (length - TAG_BYTES);
        if (!isOpen() || length < (short) (BLOCK + TAG_BYTES) || (short) (cLength % BLOCK) != 0) {
            fail();
        }
        byte[] st = ram.state;
        short b = TransientState.CHANNEL_BLOCK;
        // B(n) with n = counter + 1.
        Util.arrayFillNonAtomic(st, b, BLOCK, (byte) 0);
        Util.arrayCopyNonAtomic(st, TransientState.COUNTER, st, (short) (b + 12), (short) 4);
        increment(st, (short) (b + 12));
        short data = ISO7816.OFFSET_CDATA;
        cmac.init(sMac, Signature.MODE_VERIFY);
        cmac.update(st, b, BLOCK);
        cmac.update(buf, (short) 0, (short) 4);
        if (!cmac.verify(buf, data, cLength, buf, (short) (data + cLength), TAG_BYTES)) {
            fail();
        }
        Util.arrayCopyNonAtomic(st, (short) (b + 12), st, TransientState.COUNTER, (short) 4);
        deriveIv();
        cbc.init(sEnc, Cipher.MODE_DECRYPT, st, TransientState.CHANNEL_IV, BLOCK);
        cbc.doFinal(buf, data, cLength, buf, data);
        // ISO/IEC 9797-1 method 2: the last non-zero byte must be 80.
        short end = (short) (data + cLength - 1);
        while (end >= data && buf[end] == 0) {
            end--;
        }
        if (end < data || buf[end] != (byte) 0x80) {
            fail();
        }
        return (short) (end - data);
    }

    /**
     * Wraps {@code out[0..length)} and the status word into {@code buf}: pads and encrypts in
     * place in {@code out}, MACs, wipes {@code out}; returns the response length.
     */
    short wrap(byte[] out, short length, short sw, byte[] buf) {
        out[length++] = (byte) (sw >> 8);
        out[length++] = (byte) sw;
        out[length++] = (byte) 0x80;
        while ((short) (length % BLOCK) != 0) {
            out[length++] = 0;
        }
        byte[] st = ram.state;
        short b = TransientState.CHANNEL_BLOCK;
        // Br(n) = 80 ‖ 00^11 ‖ n, n = the command's counter.
        Util.arrayFillNonAtomic(st, b, (short) 12, (byte) 0);
        st[b] = (byte) 0x80;
        Util.arrayCopyNonAtomic(st, TransientState.COUNTER, st, (short) (b + 12), (short) 4);
        deriveIv();
        cbc.init(sEnc, Cipher.MODE_ENCRYPT, st, TransientState.CHANNEL_IV, BLOCK);
        cbc.doFinal(out, (short) 0, length, buf, (short) 0);
        ram.wipeOut();
        cmac.init(sRmac, Signature.MODE_SIGN);
        cmac.update(st, b, BLOCK);
        return (short) (length + cmac.sign(buf, (short) 0, length, buf, length));
    }

    /** CHANNEL_IV = AES(S-ENC, CHANNEL_BLOCK). */
    private void deriveIv() {
        ecb.init(sEnc, Cipher.MODE_ENCRYPT);
        ecb.doFinal(ram.state, TransientState.CHANNEL_BLOCK, BLOCK, ram.state, TransientState.CHANNEL_IV);
    }

    private void fail() {
        close();
        ISOException.throwIt(SW_SECURE_MESSAGING);
    }

    /** Adds one to the 4-byte big-endian counter at {@code at}; closes the channel on overflow. */
    private void increment(byte[] b, short at) {
        for (short i = 3; i >= 0; i--) {
            short p = (short) (at + i);
            b[p]++;
            if (b[p] != 0) {
                return;
            }
        }
        fail();
    }
}
