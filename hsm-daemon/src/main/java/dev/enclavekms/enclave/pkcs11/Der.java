package dev.enclavekms.enclave.pkcs11;

import java.io.ByteArrayOutputStream;
import java.util.Arrays;

/**
 * The little DER this package needs: ECDSA signatures (PKCS#11 returns r‖s, JCA and OpenSSL
 * want X9.62 DER), CKA_EC_POINT (an OCTET STRING around the point in PKCS#11 2.40/3.0, bare
 * in some modules) and the Ed25519 SubjectPublicKeyInfo.
 */
final class Der {

    private static final int SEQUENCE = 0x30;
    private static final int INTEGER = 0x02;
    private static final int OCTET_STRING = 0x04;

    /** SubjectPublicKeyInfo header for Ed25519 (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (32 bytes) }. */
    private static final byte[] ED25519_SPKI_PREFIX = {
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

    private Der() {
    }

    /**
     * Converts a raw ECDSA signature r‖s (each half {@code fieldLength} bytes, as CKM_ECDSA
     * returns it) into DER {@code SEQUENCE { INTEGER r, INTEGER s }}.
     */
    static byte[] ecdsaSignature(byte[] raw, int fieldLength) {
        if (raw.length != 2 * fieldLength) {
            throw new IllegalArgumentException("raw ECDSA signature has " + raw.length + " bytes, expected "
                    + 2 * fieldLength);
        }
        byte[] r = integer(Arrays.copyOfRange(raw, 0, fieldLength));
        byte[] s = integer(Arrays.copyOfRange(raw, fieldLength, raw.length));
        ByteArrayOutputStream body = new ByteArrayOutputStream(r.length + s.length);
        body.writeBytes(r);
        body.writeBytes(s);
        return tlv(SEQUENCE, body.toByteArray());
    }

    /**
     * The bare point of a CKA_EC_POINT value: PKCS#11 wraps it in a DER OCTET STRING, some
     * modules (and the IAIK wrapper, which unwraps it already) give it bare. Both are
     * recognised by length, which is unambiguous because the wrapped form is always longer.
     */
    static byte[] ecPoint(byte[] value, int rawLength) {
        if (value.length == rawLength) {
            return value.clone();
        }
        int header = rawLength < 128 ? 2 : rawLength < 256 ? 3 : 4;
        if (value.length == rawLength + header && (value[0] & 0xff) == OCTET_STRING
                && Arrays.equals(lengthOctets(rawLength), Arrays.copyOfRange(value, 1, header))) {
            return Arrays.copyOfRange(value, header, value.length);
        }
        throw new IllegalArgumentException("CKA_EC_POINT has " + value.length + " bytes; expected a "
                + rawLength + "-byte point, bare or in an OCTET STRING");
    }

    /** The X.509 SubjectPublicKeyInfo of a 32-byte Ed25519 public key. */
    static byte[] ed25519SubjectPublicKeyInfo(byte[] point) {
        if (point.length != 32) {
            throw new IllegalArgumentException("Ed25519 public key must be 32 bytes");
        }
        byte[] out = Arrays.copyOf(ED25519_SPKI_PREFIX, ED25519_SPKI_PREFIX.length + 32);
        System.arraycopy(point, 0, out, ED25519_SPKI_PREFIX.length, 32);
        return out;
    }

    /** A DER INTEGER of a certificate serial number (CKA_SERIAL_NUMBER holds the DER encoding). */
    static byte[] integer(java.math.BigInteger serial) {
        return tlv(INTEGER, serial.toByteArray());
    }

    /** A DER INTEGER of an unsigned big-endian magnitude: minimal, with a 0x00 before a set top bit. */
    private static byte[] integer(byte[] unsigned) {
        int i = 0;
        while (i < unsigned.length - 1 && unsigned[i] == 0) {
            i++;
        }
        byte[] magnitude = Arrays.copyOfRange(unsigned, i, unsigned.length);
        if ((magnitude[0] & 0x80) != 0) {
            byte[] padded = new byte[magnitude.length + 1];
            System.arraycopy(magnitude, 0, padded, 1, magnitude.length);
            magnitude = padded;
        }
        return tlv(INTEGER, magnitude);
    }

    private static byte[] tlv(int tag, byte[] content) {
        byte[] len = lengthOctets(content.length);
        byte[] out = new byte[1 + len.length + content.length];
        out[0] = (byte) tag;
        System.arraycopy(len, 0, out, 1, len.length);
        System.arraycopy(content, 0, out, 1 + len.length, content.length);
        return out;
    }

    private static byte[] lengthOctets(int length) {
        if (length < 128) {
            return new byte[] {(byte) length};
        }
        if (length < 256) {
            return new byte[] {(byte) 0x81, (byte) length};
        }
        if (length < 65536) {
            return new byte[] {(byte) 0x82, (byte) (length >> 8), (byte) length};
        }
        throw new IllegalArgumentException("DER length too large");
    }
}
