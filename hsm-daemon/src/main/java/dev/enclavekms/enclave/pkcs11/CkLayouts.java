package dev.enclavekms.enclave.pkcs11;

import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The Cryptoki structures the FFM binding fills, as laid out on 64-bit Linux and macOS:
 * {@code CK_ULONG} is a C {@code unsigned long} (8 bytes, LP64) and structures are naturally
 * aligned. Windows is different — {@code CK_ULONG} has 4 bytes there and the Cryptoki headers
 * pack structures to 1 byte — and is not supported: {@link #unsupportedReason()} says so and
 * the enclave uses the wrapper there.
 */
final class CkLayouts {

    static final ValueLayout.OfLong CK_ULONG = JAVA_LONG;

    /** {@code CK_MECHANISM}: 24 bytes. */
    static final StructLayout CK_MECHANISM = MemoryLayout.structLayout(
            CK_ULONG.withName("mechanism"),
            ADDRESS.withName("pParameter"),
            CK_ULONG.withName("ulParameterLen"));

    /**
     * {@code CK_GCM_PARAMS} of PKCS#11 2.40 errata and 3.0, with {@code ulIvBits}: 48 bytes.
     * Some older modules expect the structure without {@code ulIvBits}; SoftHSM 2.6.1 takes
     * this one (measured). Another module must be tested before FFM is used with it.
     */
    static final StructLayout CK_GCM_PARAMS = MemoryLayout.structLayout(
            ADDRESS.withName("pIv"),
            CK_ULONG.withName("ulIvLen"),
            CK_ULONG.withName("ulIvBits"),
            ADDRESS.withName("pAAD"),
            CK_ULONG.withName("ulAADLen"),
            CK_ULONG.withName("ulTagBits"));

    /** {@code CK_RSA_PKCS_PSS_PARAMS}: 24 bytes. */
    static final StructLayout CK_RSA_PKCS_PSS_PARAMS = MemoryLayout.structLayout(
            CK_ULONG.withName("hashAlg"),
            CK_ULONG.withName("mgf"),
            CK_ULONG.withName("sLen"));

    /**
     * The head of {@code CK_FUNCTION_LIST}: a {@code CK_VERSION} (2 bytes), padded to the
     * alignment of the function pointers that follow in the order of the header.
     */
    static final StructLayout CK_FUNCTION_LIST_HEAD = MemoryLayout.structLayout(
            JAVA_BYTE.withName("major"),
            JAVA_BYTE.withName("minor"),
            MemoryLayout.paddingLayout(ADDRESS.byteAlignment() - 2),
            ADDRESS.withName("C_Initialize"));

    static final long MECHANISM_TYPE = offset(CK_MECHANISM, "mechanism");
    static final long MECHANISM_PARAMETER = offset(CK_MECHANISM, "pParameter");
    static final long MECHANISM_PARAMETER_LEN = offset(CK_MECHANISM, "ulParameterLen");

    static final long GCM_IV = offset(CK_GCM_PARAMS, "pIv");
    static final long GCM_IV_LEN = offset(CK_GCM_PARAMS, "ulIvLen");
    static final long GCM_IV_BITS = offset(CK_GCM_PARAMS, "ulIvBits");
    static final long GCM_AAD = offset(CK_GCM_PARAMS, "pAAD");
    static final long GCM_AAD_LEN = offset(CK_GCM_PARAMS, "ulAADLen");
    static final long GCM_TAG_BITS = offset(CK_GCM_PARAMS, "ulTagBits");

    static final long PSS_HASH_ALG = offset(CK_RSA_PKCS_PSS_PARAMS, "hashAlg");
    static final long PSS_MGF = offset(CK_RSA_PKCS_PSS_PARAMS, "mgf");
    static final long PSS_SALT_LEN = offset(CK_RSA_PKCS_PSS_PARAMS, "sLen");

    /** Where function pointer {@code index} (0 = C_Initialize) of a CK_FUNCTION_LIST is. */
    static long functionOffset(int index) {
        return offset(CK_FUNCTION_LIST_HEAD, "C_Initialize") + index * ADDRESS.byteSize();
    }

    private CkLayouts() {
    }

    /**
     * Null where these layouts are the platform's: 64-bit pointers, an 8-byte C
     * {@code long}, Linux or macOS. Otherwise why not.
     */
    static String unsupportedReason() {
        return unsupportedReason(System.getProperty("os.name", ""),
                Linker.nativeLinker().canonicalLayouts().get("long").byteSize(), ADDRESS.byteSize());
    }

    static String unsupportedReason(String osName, long cLongBytes, long pointerBytes) {
        if (!osName.startsWith("Linux") && !osName.startsWith("Mac")) {
            return "the Cryptoki structure layouts of " + osName + " are not implemented (only 64-bit Linux and macOS)";
        }
        if (cLongBytes != 8 || pointerBytes != 8) {
            return "CK_ULONG of " + cLongBytes + " bytes and pointers of " + pointerBytes
                    + " bytes are not implemented (only 64-bit Linux and macOS)";
        }
        return null;
    }

    private static long offset(StructLayout layout, String field) {
        return layout.byteOffset(groupElement(field));
    }
}
