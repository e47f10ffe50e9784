package dev.enclavekms.enclave.javacard;

/**
 * The KeyVault applet's numbers as the host sees them (docs/javacard.md is the
 * specification; the applet's {@code Constants} is the card's copy).
 */
final class KeyVaultProtocol {

    private KeyVaultProtocol() {
    }

    /** F0 "ENCKMS" 01: the applet's AID. */
    static final byte[] DEFAULT_AID = {(byte) 0xF0, 0x45, 0x4E, 0x43, 0x4B, 0x4D, 0x53, 0x01};

    static final int CLA_ISO = 0x00;
    static final int CLA_PLAIN = 0x80;
    static final int CLA_SECURE = 0x84;

    static final int INS_SELECT = 0xA4;
    static final int INS_STATUS = 0x30;
    static final int INS_GET_IDENTITY = 0x32;
    static final int INS_OPEN_CHANNEL = 0x34;
    static final int INS_PERSONALISE = 0x36;
    static final int INS_VERIFY = 0x20;
    static final int INS_CHANGE_REFERENCE_DATA = 0x24;
    static final int INS_RESET_RETRY_COUNTER = 0x2C;
    static final int INS_GENERATE = 0x40;
    static final int INS_DELETE = 0x42;
    static final int INS_LIST = 0x44;
    static final int INS_PUBLIC_KEY = 0x46;
    static final int INS_RANDOM = 0x48;
    static final int INS_SIGN = 0x50;
    static final int INS_HMAC = 0x52;
    static final int INS_ENCRYPT = 0x54;
    static final int INS_DECRYPT = 0x56;

    static final int P2_PIN = 0x81;
    static final int P2_ADMIN_PIN = 0x83;
    static final int STREAM_BEGIN = 0x80;
    static final int STREAM_END = 0x01;

    static final int SW_OK = 0x9000;
    static final int SW_PIN_BLOCKED = 0x6983;
    static final int SW_SECURITY_STATUS = 0x6982;
    static final int SW_CONDITIONS = 0x6985;
    static final int SW_SECURE_MESSAGING = 0x6988;
    static final int SW_TAG_MISMATCH = 0x6984;
    static final int SW_WRONG_KEY_TYPE = 0x6981;
    static final int SW_WRONG_DATA = 0x6A80;
    static final int SW_FUNC_NOT_SUPPORTED = 0x6A81;
    static final int SW_NO_FREE_SLOT = 0x6A84;
    static final int SW_INCORRECT_P1P2 = 0x6A86;
    static final int SW_NOT_FOUND = 0x6A88;
    static final int SW_ID_IN_USE = 0x6A89;
    static final int SW_WRONG_LENGTH = 0x6700;

    static final int FEATURE_AES_256 = 0x0001;
    static final int FEATURE_EC_P256 = 0x0002;
    static final int FEATURE_HMAC_SHA256 = 0x0004;

    static final int FLAG_PERSONALISED = 0x01;

    static final int MAX_ID = 32;
    static final int MAX_LABEL = 180;
    static final int MAX_RANDOM = 200;
    static final int EC_POINT_BYTES = 65;
    static final int IV_BYTES = 12;
    static final int TAG_BYTES = 16;
    /** Text bytes per ENCRYPT/DECRYPT command: with the BEGIN header and a tag it fits 223. */
    static final int AEAD_CHUNK = 128;
    /** Message bytes per HMAC command. */
    static final int HMAC_CHUNK = 184;
    /** Largest inner command data the channel can wrap in a short APDU. */
    static final int MAX_INNER_COMMAND = 223;

    /** A status word as four hex digits, for messages. */
    static String sw(int sw) {
        return String.format("%04X", sw);
    }
}
