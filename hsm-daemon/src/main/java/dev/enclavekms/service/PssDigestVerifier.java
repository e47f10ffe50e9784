package dev.enclavekms.service;

import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.interfaces.RSAPublicKey;
import java.util.Arrays;

/**
 * EMSA-PSS verification (RFC 8017 §9.1.2) of a precomputed SHA-256 digest with
 * MGF1-SHA-256 and a 32-byte salt. JCA's RSASSA-PSS always hashes its input, so a
 * caller-supplied digest cannot go through it; this does the few steps of the spec by
 * hand with public values only.
 */
final class PssDigestVerifier {
    private static final int H_LEN = 32;
    private static final int S_LEN = 32;

    private PssDigestVerifier() {
    }

    static boolean verify(RSAPublicKey key, byte[] mHash, byte[] signature) throws GeneralSecurityException {
        int modBits = key.getModulus().bitLength();
        int k = (modBits + 7) / 8;
        if (signature.length != k || mHash.length != H_LEN) {
            return false;
        }
        BigInteger s = new BigInteger(1, signature);
        if (s.compareTo(key.getModulus()) >= 0) {
            return false;
        }
        int emBits = modBits - 1;
        int emLen = (emBits + 7) / 8;
        byte[] em = toFixed(s.modPow(key.getPublicExponent(), key.getModulus()), emLen);
        if (em == null || emLen < H_LEN + S_LEN + 2 || (em[emLen - 1] & 0xff) != 0xbc) {
            return false;
        }
        byte[] maskedDb = Arrays.copyOfRange(em, 0, emLen - H_LEN - 1);
        byte[] h = Arrays.copyOfRange(em, emLen - H_LEN - 1, emLen - 1);
        int unusedBits = 8 * emLen - emBits;
        if ((maskedDb[0] & (0xff << (8 - unusedBits))) != 0) {
            return false;
        }
        byte[] mask = mgf1(h, maskedDb.length);
        byte[] db = new byte[maskedDb.length];
        for (int i = 0; i < db.length; i++) {
            db[i] = (byte) (maskedDb[i] ^ mask[i]);
        }
        db[0] &= (byte) (0xff >>> unusedBits);
        int psLen = emLen - H_LEN - S_LEN - 2;
        for (int i = 0; i < psLen; i++) {
            if (db[i] != 0) return false;
        }
        if (db[psLen] != 1) {
            return false;
        }
        byte[] salt = Arrays.copyOfRange(db, db.length - S_LEN, db.length);
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        sha.update(new byte[8]);
        sha.update(mHash);
        sha.update(salt);
        return MessageDigest.isEqual(sha.digest(), h);
    }

    private static byte[] mgf1(byte[] seed, int length) throws GeneralSecurityException {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        byte[] out = new byte[length];
        int done = 0;
        for (int counter = 0; done < length; counter++) {
            sha.update(seed);
            sha.update(new byte[]{(byte) (counter >>> 24), (byte) (counter >>> 16), (byte) (counter >>> 8), (byte) counter});
            byte[] block = sha.digest();
            int n = Math.min(block.length, length - done);
            System.arraycopy(block, 0, out, done, n);
            done += n;
        }
        return out;
    }

    private static byte[] toFixed(BigInteger v, int len) {
        byte[] b = v.toByteArray();
        if (b.length == len) return b;
        if (b.length == len + 1 && b[0] == 0) return Arrays.copyOfRange(b, 1, b.length);
        if (b.length < len) {
            byte[] out = new byte[len];
            System.arraycopy(b, 0, out, len - b.length, b.length);
            return out;
        }
        return null;
    }
}
