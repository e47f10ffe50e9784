package dev.enclavekms.enclave.pkcs11;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Cryptoki structures as 64-bit Linux and macOS lay them out (pkcs11t.h, LP64, natural alignment). */
class CkLayoutsTest {

    @Test
    void mechanism_24BytesTypePointerLength() {
        assertEquals(24, CkLayouts.CK_MECHANISM.byteSize());
        assertEquals(0, CkLayouts.MECHANISM_TYPE);
        assertEquals(8, CkLayouts.MECHANISM_PARAMETER);
        assertEquals(16, CkLayouts.MECHANISM_PARAMETER_LEN);
    }

    @Test
    void gcmParams_48BytesWithIvBits() {
        assertEquals(48, CkLayouts.CK_GCM_PARAMS.byteSize());
        assertEquals(0, CkLayouts.GCM_IV);
        assertEquals(8, CkLayouts.GCM_IV_LEN);
        assertEquals(16, CkLayouts.GCM_IV_BITS);
        assertEquals(24, CkLayouts.GCM_AAD);
        assertEquals(32, CkLayouts.GCM_AAD_LEN);
        assertEquals(40, CkLayouts.GCM_TAG_BITS);
    }

    @Test
    void rsaPssParams_24Bytes() {
        assertEquals(24, CkLayouts.CK_RSA_PKCS_PSS_PARAMS.byteSize());
        assertEquals(0, CkLayouts.PSS_HASH_ALG);
        assertEquals(8, CkLayouts.PSS_MGF);
        assertEquals(16, CkLayouts.PSS_SALT_LEN);
    }

    @Test
    void functionList_versionPaddedThenPointersInHeaderOrder() {
        assertEquals(8, CkLayouts.functionOffset(0)); // C_Initialize
        assertEquals(8 + 29 * 8, CkLayouts.functionOffset(CryptokiFunctions.C_ENCRYPT_INIT));
        assertEquals(8 + 34 * 8, CkLayouts.functionOffset(CryptokiFunctions.C_DECRYPT));
        assertEquals(8 + 43 * 8, CkLayouts.functionOffset(CryptokiFunctions.C_SIGN));
    }

    @Test
    void platform_thisLinuxX64_supported() {
        assertNull(CkLayouts.unsupportedReason(), "the build machine is 64-bit Linux");
        assertNull(CkLayouts.unsupportedReason("Mac OS X", 8, 8));
    }

    @Test
    void platform_windowsOr32Bit_refusedWithReason() {
        String windows = CkLayouts.unsupportedReason("Windows 11", 4, 8);
        assertNotNull(windows);
        assertTrue(windows.contains("Windows 11"), windows);
        String linux32 = CkLayouts.unsupportedReason("Linux", 4, 4);
        assertNotNull(linux32);
        assertTrue(linux32.contains("CK_ULONG of 4 bytes"), linux32);
    }
}
