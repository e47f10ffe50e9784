package dev.enclavekms.enclave.javacard;

import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Objects;

/**
 * Where the KeyVault card is and how to trust and unlock it. Not secret: the PIN is only ever
 * read from {@link #pinFile()} (same rules as the PKCS#11 PIN file: mode 0600/0400, owned by
 * this user, or a systemd credential), never carried here.
 *
 * @param reader   the PC/SC reader's name as pcscd reports it
 * @param aidHex   the applet's AID in hex ({@link JavaCardEnclave#defaultAid()} unless re-installed)
 * @param pinFile  file holding the card's user PIN
 * @param identity the card identity pinned by {@code kmsctl provision --card}
 */
public record JavaCardConfig(String reader, String aidHex, Path pinFile, CardIdentity identity) {

    public JavaCardConfig {
        if (reader == null || reader.isBlank()) {
            throw new IllegalArgumentException("name the smart-card reader");
        }
        Objects.requireNonNull(pinFile, "pinFile");
        Objects.requireNonNull(identity, "identity");
        aidHex = aidHex == null ? HexFormat.of().formatHex(KeyVaultProtocol.DEFAULT_AID) : aidHex.toLowerCase();
        if (!aidHex.matches("([0-9a-f]{2}){5,16}")) {
            throw new IllegalArgumentException("an applet AID is 5 to 16 bytes in hex");
        }
    }

    /** The card in {@code reader} with the applet at its default AID. */
    public static JavaCardConfig of(String reader, Path pinFile, CardIdentity identity) {
        return new JavaCardConfig(reader, null, pinFile, identity);
    }

    public byte[] aid() {
        return HexFormat.of().parseHex(aidHex);
    }
}
