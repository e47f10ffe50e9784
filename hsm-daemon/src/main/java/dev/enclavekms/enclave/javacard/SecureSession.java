package dev.enclavekms.enclave.javacard;

import org.bouncycastle.crypto.engines.AESEngine;
import org.bouncycastle.crypto.macs.CMac;
import org.bouncycastle.crypto.params.KeyParameter;

import javax.crypto.Cipher;
import javax.crypto.KeyAgreement;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import javax.smartcardio.CommandAPDU;
import javax.smartcardio.ResponseAPDU;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.interfaces.ECPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.util.Arrays;

import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.CLA_PLAIN;
import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.CLA_SECURE;
import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.EC_POINT_BYTES;
import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.INS_OPEN_CHANNEL;
import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.SW_OK;

/**
 * The host's half of the secure channel (docs/javacard.md, "Secure channel"). One instance per
 * opened channel; not thread-safe (the enclave serialises every use of the card). Session
 * keys live in this object only and are wiped by {@link #close}.
 */
final class SecureSession implements AutoCloseable {

    private static final byte[] KDF_LABEL = "KeyVault SC1".getBytes(StandardCharsets.US_ASCII);
    private static final int BLOCK = 16;
    static final ECParameterSpec P256 = p256();

    private final byte[] sEnc;
    private final byte[] sMac;
    private final byte[] sRmac;
    private int counter;

    private SecureSession(byte[] keys) {
        sEnc = Arrays.copyOfRange(keys, 0, 32);
        sMac = Arrays.copyOfRange(keys, 32, 64);
        sRmac = Arrays.copyOfRange(keys, 64, 96);
    }

    /** The OPEN CHANNEL command for a host ephemeral key pair, and how to finish it. */
    record Opening(KeyPair ephemeral, byte[] hostPoint) {
        CommandAPDU command() {
            return new CommandAPDU(CLA_PLAIN, INS_OPEN_CHANNEL, 0, 0, hostPoint, 256);
        }
    }

    static Opening begin() {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair eh = g.generateKeyPair();
            return new Opening(eh, point((ECPublicKey) eh.getPublic()));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK cannot make P-256 keys", e);
        }
    }

    /**
     * Finishes the opening with the card's answer; {@code identityPoint} is the pinned card's
     * identity key. Throws {@link ChannelRefused} when the card did not prove it holds that key.
     */
    static SecureSession finish(Opening opening, ResponseAPDU response, byte[] identityPoint) throws ChannelRefused {
        if (response.getSW() != SW_OK) {
            throw new ChannelRefused("OPEN CHANNEL answered " + KeyVaultProtocol.sw(response.getSW()));
        }
        byte[] r = response.getData();
        if (r.length != EC_POINT_BYTES + BLOCK) {
            throw new ChannelRefused("OPEN CHANNEL answered " + r.length + " bytes");
        }
        byte[] cardPoint = Arrays.copyOf(r, EC_POINT_BYTES);
        byte[] secrets = new byte[64];
        byte[] keys = null;
        try {
            KeyAgreement ka = KeyAgreement.getInstance("ECDH");
            ka.init(opening.ephemeral().getPrivate());
            ka.doPhase(publicKey(cardPoint), true);
            System.arraycopy(ka.generateSecret(), 0, secrets, 0, 32);
            ka.init(opening.ephemeral().getPrivate());
            ka.doPhase(publicKey(identityPoint), true);
            System.arraycopy(ka.generateSecret(), 0, secrets, 32, 32);
            keys = kdf(secrets, opening.hostPoint(), cardPoint);
            byte[] receipt = cmac(Arrays.copyOfRange(keys, 96, 128), cardPoint, opening.hostPoint());
            if (!MessageDigest.isEqual(receipt, Arrays.copyOfRange(r, EC_POINT_BYTES, r.length))) {
                throw new ChannelRefused("the card did not prove it holds the pinned identity key");
            }
            return new SecureSession(keys);
        } catch (GeneralSecurityException e) {
            throw new ChannelRefused("the card's ephemeral key is not a P-256 point: " + e.getMessage());
        } finally {
            Arrays.fill(secrets, (byte) 0);
            if (keys != null) {
                Arrays.fill(keys, (byte) 0);
            }
        }
    }

    /** X9.63 KDF with SHA-256: 128 bytes from Ze ‖ Zs, SharedInfo = label ‖ eH ‖ eC. */
    static byte[] kdf(byte[] secrets, byte[] hostPoint, byte[] cardPoint) throws GeneralSecurityException {
        byte[] out = new byte[128];
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        for (int i = 1; i <= 4; i++) {
            sha.update(secrets);
            sha.update(new byte[] {0, 0, 0, (byte) i});
            sha.update(KDF_LABEL);
            sha.update(hostPoint);
            sha.update(cardPoint);
            System.arraycopy(sha.digest(), 0, out, (i - 1) * 32, 32);
        }
        return out;
    }

    /** Wraps an inner command: the next counter, encrypted data, MAC. */
    CommandAPDU wrap(int ins, int p1, int p2, byte[] data) {
        if (data.length > KeyVaultProtocol.MAX_INNER_COMMAND) {
            throw new IllegalArgumentException("inner command of " + data.length + " bytes");
        }
        counter++;
        byte[] b = block(0x00, counter);
        byte[] padded = pad(data);
        try {
            byte[] c = cbc(Cipher.ENCRYPT_MODE, b, padded);
            byte[] t = cmac(sMac, b, new byte[] {(byte) CLA_SECURE, (byte) ins, (byte) p1, (byte) p2}, c);
            byte[] field = Arrays.copyOf(c, c.length + t.length);
            System.arraycopy(t, 0, field, c.length, t.length);
            return new CommandAPDU(CLA_SECURE, ins, p1, p2, field, 256);
        } finally {
            Arrays.fill(padded, (byte) 0);
        }
    }

    /** An unwrapped response: the inner data and the card's real status word. */
    record Reply(byte[] data, int sw) {
        boolean ok() {
            return sw == SW_OK;
        }
    }

    /** Checks and decrypts the response to the last wrapped command. */
    Reply unwrap(ResponseAPDU response) throws ChannelBroken {
        if (response.getSW() != SW_OK) {
            throw new ChannelBroken("the card answered " + KeyVaultProtocol.sw(response.getSW())
                    + " outside the channel");
        }
        byte[] r = response.getData();
        if (r.length < 2 * BLOCK || r.length % BLOCK != 0) {
            throw new ChannelBroken("a wrapped response of " + r.length + " bytes");
        }
        byte[] b = block(0x80, counter);
        byte[] body = Arrays.copyOf(r, r.length - BLOCK);
        byte[] tag = cmac(sRmac, b, body);
        if (!MessageDigest.isEqual(tag, Arrays.copyOfRange(r, r.length - BLOCK, r.length))) {
            throw new ChannelBroken("a response MAC did not verify");
        }
        byte[] plain = cbc(Cipher.DECRYPT_MODE, b, body);
        try {
            int end = plain.length - 1;
            while (end >= 0 && plain[end] == 0) {
                end--;
            }
            if (end < 2 || plain[end] != (byte) 0x80) {
                throw new ChannelBroken("a wrapped response is badly padded");
            }
            int sw = ((plain[end - 2] & 0xFF) << 8) | (plain[end - 1] & 0xFF);
            return new Reply(Arrays.copyOf(plain, end - 2), sw);
        } finally {
            Arrays.fill(plain, (byte) 0);
        }
    }

    @Override
    public void close() {
        Arrays.fill(sEnc, (byte) 0);
        Arrays.fill(sMac, (byte) 0);
        Arrays.fill(sRmac, (byte) 0);
    }

    // ---------------------------------------------------------------- primitives

    /** B(n) (first byte 00) or Br(n) (first byte 80): 16 bytes, n in the last four. */
    private static byte[] block(int first, int n) {
        byte[] b = new byte[BLOCK];
        b[0] = (byte) first;
        b[12] = (byte) (n >>> 24);
        b[13] = (byte) (n >>> 16);
        b[14] = (byte) (n >>> 8);
        b[15] = (byte) n;
        return b;
    }

    /** ISO/IEC 9797-1 method 2. */
    static byte[] pad(byte[] data) {
        byte[] p = new byte[(data.length / BLOCK + 1) * BLOCK];
        System.arraycopy(data, 0, p, 0, data.length);
        p[data.length] = (byte) 0x80;
        return p;
    }

    private byte[] cbc(int mode, byte[] block, byte[] data) {
        try {
            Cipher ecb = Cipher.getInstance("AES/ECB/NoPadding");
            ecb.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(sEnc, "AES"));
            byte[] iv = ecb.doFinal(block);
            Cipher c = Cipher.getInstance("AES/CBC/NoPadding");
            c.init(mode, new SecretKeySpec(sEnc, "AES"), new IvParameterSpec(iv));
            return c.doFinal(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-CBC failed in the JDK", e);
        }
    }

    /** AES-CMAC (NIST SP 800-38B) of the concatenated parts. */
    static byte[] cmac(byte[] key, byte[]... parts) {
        CMac mac = new CMac(AESEngine.newInstance());
        mac.init(new KeyParameter(key));
        for (byte[] p : parts) {
            mac.update(p, 0, p.length);
        }
        byte[] out = new byte[mac.getMacSize()];
        mac.doFinal(out, 0);
        return out;
    }

    /** 04 ‖ X ‖ Y of a P-256 public key. */
    static byte[] point(ECPublicKey key) {
        byte[] p = new byte[EC_POINT_BYTES];
        p[0] = 0x04;
        copyUnsigned(key.getW().getAffineX(), p, 1);
        copyUnsigned(key.getW().getAffineY(), p, 33);
        return p;
    }

    /** The P-256 public key of a 65-byte uncompressed point (checked to be on the curve by the JDK). */
    static ECPublicKey publicKey(byte[] point) throws GeneralSecurityException {
        if (point.length != EC_POINT_BYTES || point[0] != 0x04) {
            throw new GeneralSecurityException("not an uncompressed P-256 point");
        }
        BigInteger x = new BigInteger(1, Arrays.copyOfRange(point, 1, 33));
        BigInteger y = new BigInteger(1, Arrays.copyOfRange(point, 33, 65));
        return (ECPublicKey) KeyFactory.getInstance("EC").generatePublic(new ECPublicKeySpec(new ECPoint(x, y), P256));
    }

    private static void copyUnsigned(BigInteger v, byte[] out, int offset) {
        byte[] b = v.toByteArray();
        int n = Math.min(b.length, 32);
        System.arraycopy(b, b.length - n, out, offset + 32 - n, n);
    }

    private static ECParameterSpec p256() {
        try {
            java.security.AlgorithmParameters p = java.security.AlgorithmParameters.getInstance("EC");
            p.init(new ECGenParameterSpec("secp256r1"));
            return p.getParameterSpec(ECParameterSpec.class);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK lacks P-256", e);
        }
    }

    /** The card did not open a channel to the pinned identity. */
    static final class ChannelRefused extends Exception {
        ChannelRefused(String message) {
            super(message);
        }
    }

    /** The channel no longer works (card reset, removed, MAC failure): reopen. */
    static final class ChannelBroken extends Exception {
        ChannelBroken(String message) {
            super(message);
        }
    }
}
