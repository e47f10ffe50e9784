package dev.enclavekms.enclave.javacard;

import dev.enclavekms.enclave.KeyAlgorithm;

import java.util.EnumSet;
import java.util.Set;

/**
 * The applet's STATUS answer (docs/javacard.md): version, features, PIN tries left, slots.
 * Not secret; STATUS is the one command that works before VERIFY.
 */
public record CardStatus(int major, int minor, int features, int pinTriesLeft, int adminPinTriesLeft,
                         int slotsTotal, int slotsFree, int flags) {

    static CardStatus parse(byte[] b) {
        if (b.length != 10) {
            throw new IllegalStateException("STATUS returned " + b.length + " bytes, not 10");
        }
        return new CardStatus(b[0] & 0xFF, b[1] & 0xFF, ((b[2] & 0xFF) << 8) | (b[3] & 0xFF), b[4] & 0xFF,
                b[5] & 0xFF, b[6] & 0xFF, b[7] & 0xFF, b[8] & 0xFF);
    }

    public String version() {
        return major + "." + minor;
    }

    public boolean personalised() {
        return (flags & KeyVaultProtocol.FLAG_PERSONALISED) != 0;
    }

    /** The key algorithms the feature bits announce. */
    public Set<KeyAlgorithm> algorithms() {
        Set<KeyAlgorithm> s = EnumSet.noneOf(KeyAlgorithm.class);
        if ((features & KeyVaultProtocol.FEATURE_AES_256) != 0) s.add(KeyAlgorithm.AES_256_GCM);
        if ((features & KeyVaultProtocol.FEATURE_EC_P256) != 0) s.add(KeyAlgorithm.EC_P256_SHA256);
        if ((features & KeyVaultProtocol.FEATURE_HMAC_SHA256) != 0) s.add(KeyAlgorithm.HMAC_SHA256);
        return s;
    }
}
