package dev.enclavekms.applet;

/**
 * Every number of the KeyVault protocol: instruction codes, status words, sizes and
 * algorithm codes. docs/javacard.md is the specification; the host driver mirrors these.
 */
interface Constants {

    byte VERSION_MAJOR = 1;
    byte VERSION_MINOR = 0;

    // ---- classes
    byte CLA_PLAIN = (byte) 0x80;
    byte CLA_SECURE = (byte) 0x84;

    // ---- instructions
    byte INS_SELECT = (byte) 0xA4;
    byte INS_STATUS = (byte) 0x30;
    byte INS_GET_IDENTITY = (byte) 0x32;
    byte INS_OPEN_CHANNEL = (byte) 0x34;
    byte INS_PERSONALISE = (byte) 0x36;
    byte INS_VERIFY = (byte) 0x20;
    byte INS_CHANGE_REFERENCE_DATA = (byte) 0x24;
    byte INS_RESET_RETRY_COUNTER = (byte) 0x2C;
    byte INS_GENERATE = (byte) 0x40;
    byte INS_DELETE = (byte) 0x42;
    byte INS_LIST = (byte) 0x44;
    byte INS_PUBLIC_KEY = (byte) 0x46;
    byte INS_RANDOM = (byte) 0x48;
    byte INS_SIGN = (byte) 0x50;
    byte INS_HMAC = (byte) 0x52;
    byte INS_ENCRYPT = (byte) 0x54;
    byte INS_DECRYPT = (byte) 0x56;

    // ---- P1/P2
    byte P2_PIN = (byte) 0x81;
    byte P2_ADMIN_PIN = (byte) 0x83;
    byte STREAM_BEGIN = (byte) 0x80;
    byte STREAM_END = (byte) 0x01;

    // ---- status words beyond javacard.framework.ISO7816
    short SW_PIN_TRIES_LEFT = (short) 0x63C0;
    short SW_PIN_BLOCKED = (short) 0x6983;
    short SW_SECURE_MESSAGING = (short) 0x6988;
    short SW_TAG_MISMATCH = (short) 0x6984;
    short SW_WRONG_KEY_TYPE = (short) 0x6981;
    short SW_NO_FREE_SLOT = (short) 0x6A84;
    short SW_NOT_FOUND = (short) 0x6A88;
    short SW_ID_IN_USE = (short) 0x6A89;

    // ---- algorithm codes: the same numbers as the daemon's KeyAlgorithm codes
    byte ALG_NONE = 0;
    byte ALG_AES_256 = 1;
    byte ALG_EC_P256 = 2;
    byte ALG_HMAC_SHA256 = 6;

    short FEATURE_AES_256 = 0x0001;
    short FEATURE_EC_P256 = 0x0002;
    short FEATURE_HMAC_SHA256 = 0x0004;

    byte FLAG_PERSONALISED = 0x01;
    byte FLAG_CHANNEL_OPEN = 0x02;
    byte FLAG_PIN_VERIFIED = 0x04;

    // ---- sizes
    short SLOT_COUNT = 32;
    short MAX_ID = 32;
    short MAX_LABEL = 180;
    short AES_KEY_BYTES = 32;
    short HMAC_KEY_BYTES = 32;
    short EC_POINT_BYTES = 65;
    short EC_SCALAR_BYTES = 32;
    short DIGEST_BYTES = 32;
    short IV_BYTES = 12;
    short TAG_BYTES = 16;
    short BLOCK = 16;
    short MAX_RANDOM = 200;
    /** Most text (plaintext or ciphertext) one ENCRYPT/DECRYPT command takes; the host sends 128. */
    short MAX_CHUNK = 192;
    short STATUS_BYTES = 10;
    /** Inner (unwrapped) response data the channel can carry in one short APDU. */
    short MAX_INNER_RESPONSE = 237;
    /** LIST stops adding entries beyond this many response bytes. */
    short LIST_BUDGET = 236;

    byte PIN_TRIES = 3;
    byte ADMIN_PIN_TRIES = 3;
    byte PIN_MIN = 4;
    byte PIN_MAX = 16;
    byte ADMIN_PIN_MIN = 8;
}
