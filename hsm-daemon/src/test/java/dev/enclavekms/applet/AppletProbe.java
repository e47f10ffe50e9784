package dev.enclavekms.applet;

import javacard.framework.Applet;
import javacard.security.ECPrivateKey;

/**
 * Test-only window into a KeyVault instance running in jcardsim: its RAM buffers (for the wipe
 * tests) and the bytes of its keys (the reference the no-key-bytes scan looks for). A card
 * offers no such window; this reads the simulator's Java objects.
 */
public final class AppletProbe {

    private final KeyVault vault;

    public AppletProbe(Applet applet) {
        this.vault = (KeyVault) applet;
    }

    public byte[] state() {
        return vault.ram.state;
    }

    public byte[] scratch() {
        return vault.ram.scratch;
    }

    public byte[] out() {
        return vault.ram.out;
    }

    public static final int CTR_BLOCK = TransientState.CTR_BLOCK;
    public static final int KEYSTREAM = TransientState.KEYSTREAM;
    public static final int STREAM_INS = TransientState.STREAM_INS;
    public static final int SLOT_COUNT = Constants.SLOT_COUNT;

    /** The slot's algorithm code, 0 when free. */
    public int algorithm(int slot) {
        return vault.slots.algorithm((short) slot);
    }

    /** Encryption key ‖ MAC key of an AES slot. */
    public byte[] aesKeys(int slot) {
        byte[] b = new byte[64];
        vault.slots.encryptionKeys[slot].getKey(b, (short) 0);
        vault.slots.macKeys[slot].getKey(b, (short) 32);
        return b;
    }

    public byte[] hmacKey(int slot) {
        byte[] b = new byte[32];
        vault.slots.hmacKeys[slot].getKey(b, (short) 0);
        return b;
    }

    public byte[] ecPrivate(int slot) {
        return scalar((ECPrivateKey) vault.slots.pairs[slot].getPrivate());
    }

    public byte[] identityPrivate() {
        return scalar((ECPrivateKey) vault.channel.identity.getPrivate());
    }

    /** The three session keys of the open channel, 96 bytes. */
    public byte[] sessionKeys() {
        byte[] b = new byte[96];
        vault.channel.sEnc.getKey(b, (short) 0);
        vault.channel.sMac.getKey(b, (short) 32);
        vault.channel.sRmac.getKey(b, (short) 64);
        return b;
    }

    public boolean sessionKeysSet() {
        return vault.channel.sEnc.isInitialized() || vault.channel.sMac.isInitialized()
                || vault.channel.sRmac.isInitialized();
    }

    public boolean ephemeralPrivateSet() {
        return vault.channel.ephemeral.getPrivate().isInitialized();
    }

    public boolean receiptKeySet() {
        return vault.channel.kReceipt.isInitialized();
    }

    private static byte[] scalar(ECPrivateKey key) {
        byte[] b = new byte[32];
        short n = key.getS(b, (short) 0);
        return java.util.Arrays.copyOf(b, n);
    }
}
