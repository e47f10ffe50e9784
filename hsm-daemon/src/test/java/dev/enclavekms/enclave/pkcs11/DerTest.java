package dev.enclavekms.enclave.pkcs11;

import org.junit.jupiter.api.Test;

import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class DerTest {

    private static byte[] hex(String s) {
        return HexFormat.of().parseHex(s);
    }

    @Test
    void ecdsaSignature_highBitsAndLeadingZeros_minimalIntegers() {
        // r has its top bit set (needs 0x00), s has leading zero bytes (must be dropped).
        byte[] raw = hex("80" + "00".repeat(31) + "0000" + "01".repeat(30));
        byte[] der = Der.ecdsaSignature(raw, 32);
        assertArrayEquals(hex("3043" + "022100" + "80" + "00".repeat(31) + "021e" + "01".repeat(30)), der);
    }

    @Test
    void ecdsaSignature_zeroHalf_encodedAsSingleZeroByte() {
        byte[] der = Der.ecdsaSignature(new byte[64], 32);
        assertArrayEquals(hex("3006020100020100"), der);
    }

    @Test
    void ecdsaSignature_wrongLength_rejected() {
        assertThrows(IllegalArgumentException.class, () -> Der.ecdsaSignature(new byte[63], 32));
    }

    @Test
    void ecPoint_wrappedOrBare_givesTheBarePoint() {
        byte[] point = hex("04" + "11".repeat(64));
        assertArrayEquals(point, Der.ecPoint(point, 65));
        assertArrayEquals(point, Der.ecPoint(hex("0441" + "04" + "11".repeat(64)), 65));
        byte[] ed = hex("22".repeat(32));
        assertArrayEquals(ed, Der.ecPoint(hex("0420" + "22".repeat(32)), 32));
        // P-521-sized points use a two-byte length.
        byte[] big = hex("04" + "33".repeat(132));
        assertArrayEquals(big, Der.ecPoint(hex("048185" + "04" + "33".repeat(132)), 133));
    }

    @Test
    void ecPoint_otherLengths_rejected() {
        assertThrows(IllegalArgumentException.class, () -> Der.ecPoint(new byte[64], 65));
        assertThrows(IllegalArgumentException.class, () -> Der.ecPoint(hex("0440" + "11".repeat(64)), 65));
        assertThrows(IllegalArgumentException.class, () -> Der.ecPoint(hex("0341" + "04" + "11".repeat(64)), 65));
    }
}
