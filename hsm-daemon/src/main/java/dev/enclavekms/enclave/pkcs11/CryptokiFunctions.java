package dev.enclavekms.enclave.pkcs11;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Optional;

import static dev.enclavekms.enclave.pkcs11.CkLayouts.CK_FUNCTION_LIST_HEAD;
import static dev.enclavekms.enclave.pkcs11.CkLayouts.CK_ULONG;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Downcall handles for the six hot Cryptoki functions of one loaded module, taken from the
 * module's own function list ({@code C_GetFunctionList}) — some modules, p11-kit's client
 * among them, export nothing else. Made once per library ({@link Pkcs11Library#ffm()}).
 *
 * <p>The library is opened again by its real path, the file the wrapper loaded: the dynamic
 * loader hands back the same, already initialised, library. It is never closed (global
 * arena), as the wrapper never unloads it either.
 */
final class CryptokiFunctions {

    // Positions in CK_FUNCTION_LIST (pkcs11f.h order; the same in PKCS#11 2.x and 3.0's
    // version-2 list).
    static final int C_ENCRYPT_INIT = 29;
    static final int C_ENCRYPT = 30;
    static final int C_DECRYPT_INIT = 33;
    static final int C_DECRYPT = 34;
    static final int C_SIGN_INIT = 42;
    static final int C_SIGN = 43;
    private static final int LAST_USED = C_SIGN;

    /** {@code CK_RV C_xxxInit(hSession, pMechanism, hKey)}. */
    private static final FunctionDescriptor INIT = FunctionDescriptor.of(CK_ULONG, CK_ULONG, ADDRESS, CK_ULONG);
    /** {@code CK_RV C_xxx(hSession, pIn, ulInLen, pOut, pulOutLen)}. */
    private static final FunctionDescriptor SINGLE =
            FunctionDescriptor.of(CK_ULONG, CK_ULONG, ADDRESS, CK_ULONG, ADDRESS, ADDRESS);

    final MethodHandle encryptInit;
    final MethodHandle encrypt;
    final MethodHandle decryptInit;
    final MethodHandle decrypt;
    final MethodHandle signInit;
    final MethodHandle sign;

    private CryptokiFunctions(MemorySegment list, SymbolLookup exported) {
        Linker linker = Linker.nativeLinker();
        encryptInit = linker.downcallHandle(entry(list, C_ENCRYPT_INIT, "C_EncryptInit", exported), INIT);
        encrypt = linker.downcallHandle(entry(list, C_ENCRYPT, "C_Encrypt", exported), SINGLE);
        decryptInit = linker.downcallHandle(entry(list, C_DECRYPT_INIT, "C_DecryptInit", exported), INIT);
        decrypt = linker.downcallHandle(entry(list, C_DECRYPT, "C_Decrypt", exported), SINGLE);
        signInit = linker.downcallHandle(entry(list, C_SIGN_INIT, "C_SignInit", exported), INIT);
        sign = linker.downcallHandle(entry(list, C_SIGN, "C_Sign", exported), SINGLE);
    }

    /**
     * The hot functions of the library at {@code realPath} (already loaded and initialised
     * by the wrapper).
     *
     * @throws Unavailable with a reason (no secrets) when they cannot be had on this platform
     *                     or from this module
     */
    static CryptokiFunctions load(Path realPath) throws Unavailable {
        String platform = CkLayouts.unsupportedReason();
        if (platform != null) {
            throw new Unavailable(platform);
        }
        try {
            SymbolLookup lookup = SymbolLookup.libraryLookup(realPath, Arena.global());
            MemorySegment getFunctionList = lookup.find("C_GetFunctionList")
                    .orElseThrow(() -> new Unavailable("the module exports no C_GetFunctionList"));
            MethodHandle get = Linker.nativeLinker().downcallHandle(getFunctionList,
                    FunctionDescriptor.of(CK_ULONG, ADDRESS));
            MemorySegment holder = Arena.ofAuto().allocate(ADDRESS);
            long rv = (long) get.invokeExact(holder);
            if (rv != 0) {
                throw new Unavailable("C_GetFunctionList returned CKR 0x" + Long.toHexString(rv));
            }
            MemorySegment list = holder.get(ADDRESS, 0);
            if (list.equals(MemorySegment.NULL)) {
                throw new Unavailable("C_GetFunctionList returned no list");
            }
            list = list.reinterpret(CkLayouts.functionOffset(LAST_USED + 1));
            int major = list.get(JAVA_BYTE, CK_FUNCTION_LIST_HEAD.byteOffset(
                    java.lang.foreign.MemoryLayout.PathElement.groupElement("major")));
            if (major != 2 && major != 3) {
                throw new Unavailable("the function list has version " + major + ".x, not 2.x or 3.x");
            }
            return new CryptokiFunctions(list, lookup);
        } catch (Unavailable e) {
            throw e;
        } catch (Throwable e) {
            throw new Unavailable(e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    /**
     * Function pointer {@code index}; where the module also exports the function by name, the
     * two must agree — a check that the list is read at the right places.
     */
    private static MemorySegment entry(MemorySegment list, int index, String name, SymbolLookup exported) {
        MemorySegment fn = list.get(ADDRESS, CkLayouts.functionOffset(index));
        if (fn.equals(MemorySegment.NULL)) {
            throw new IllegalStateException(name + " is missing from the function list");
        }
        Optional<MemorySegment> byName = exported.find(name);
        if (byName.isPresent() && byName.get().address() != fn.address()) {
            throw new IllegalStateException("function list entry " + index + " is not the exported " + name);
        }
        return fn;
    }

    /** FFM cannot be used with this module on this platform; the wrapper serves instead. */
    static final class Unavailable extends Exception {
        Unavailable(String reason) {
            super(reason);
        }
    }
}
