package dev.enclavekms.enclave.pkcs11;

import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.ConcurrentLinkedDeque;

import static dev.enclavekms.enclave.pkcs11.CkLayouts.CK_GCM_PARAMS;
import static dev.enclavekms.enclave.pkcs11.CkLayouts.CK_RSA_PKCS_PSS_PARAMS;
import static dev.enclavekms.enclave.pkcs11.CkLayouts.CK_ULONG;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKG_MGF1_SHA256;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_AES_GCM;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_SHA256;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_BUFFER_TOO_SMALL;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_OK;

/**
 * The hot calls straight into the module through java.lang.foreign, on the session and key
 * handles the wrapper obtained. No JNI: the wrapper's per-Init {@code FindClass} (≈ 5.5 µs,
 * docs/performance.md "The PKCS#11 binding's own cost (session 5)") is gone.
 *
 * <p>Native memory: a pool of {@link NativeScratch}, one taken per call and given back,
 * wiped. There are never more in use than the enclave has sessions borrowed, so the pool
 * stays as large as the session pool. (Not one per thread: the daemon runs a lone call on its
 * connection's reader, a virtual thread — per-thread buffers would be per connection.)
 *
 * <p>A downcall, like a JNI call, pins a virtual thread to its carrier for its length; the
 * daemon's device calls run on platform threads (its device workers) except a lone call,
 * which pinned its carrier through JNI just the same.
 */
final class FfmHotCalls implements HotCalls {

    private static final int IV_BITS_PER_BYTE = 8;
    private static final int PSS_SALT_BYTES = 32;

    private final CryptokiFunctions fn;
    private final ConcurrentLinkedDeque<NativeScratch> idle = new ConcurrentLinkedDeque<>();
    private final int firstDataBytes;

    FfmHotCalls(CryptokiFunctions fn) {
        this(fn, NativeScratch.INITIAL_DATA_BYTES);
    }

    /** {@code firstDataBytes}: the first size of a scratch's data buffers (tests start small). */
    FfmHotCalls(CryptokiFunctions fn, int firstDataBytes) {
        this.fn = fn;
        this.firstDataBytes = firstDataBytes;
    }

    @Override
    public Pkcs11Binding binding() {
        return Pkcs11Binding.FFM;
    }

    @Override
    public byte[] encrypt(Session session, long key, byte[] iv, byte[] aad, byte[] plaintext) throws PKCS11Exception {
        long hs = session.getSessionHandle();
        NativeScratch b = take();
        try {
            check(init(fn.encryptInit, hs, gcm(b, iv, aad), key));
            // A real pointer with length 0 for an empty plaintext: SoftHSM takes it (tested),
            // unlike the NULL the JNI layer passes.
            return single(fn.encrypt, hs, b, b.input(plaintext), plaintext.length,
                    plaintext.length + TAG_BITS / 8);
        } finally {
            giveBack(b);
        }
    }

    @Override
    public byte[] decrypt(Session session, long key, byte[] iv, byte[] aad, byte[] ciphertext)
            throws PKCS11Exception {
        long hs = session.getSessionHandle();
        NativeScratch b = take();
        try {
            check(init(fn.decryptInit, hs, gcm(b, iv, aad), key));
            try {
                return single(fn.decrypt, hs, b, b.input(ciphertext), ciphertext.length, ciphertext.length);
            } catch (PKCS11Exception e) {
                throw new OperationFailed(e.getErrorCode());
            }
        } finally {
            giveBack(b); // wipes the plaintext from the output buffer
        }
    }

    @Override
    public byte[] sign(Session session, SignMechanism mechanism, long key, byte[] data) throws PKCS11Exception {
        long hs = session.getSessionHandle();
        NativeScratch b = take();
        try {
            MemorySegment m = b.mechanism;
            m.set(CK_ULONG, CkLayouts.MECHANISM_TYPE, mechanism.ckm);
            if (mechanism == SignMechanism.RSA_PSS_SHA256) {
                MemorySegment p = b.parameter;
                p.set(CK_ULONG, CkLayouts.PSS_HASH_ALG, CKM_SHA256);
                p.set(CK_ULONG, CkLayouts.PSS_MGF, CKG_MGF1_SHA256);
                p.set(CK_ULONG, CkLayouts.PSS_SALT_LEN, PSS_SALT_BYTES);
                m.set(ADDRESS, CkLayouts.MECHANISM_PARAMETER, p);
                m.set(CK_ULONG, CkLayouts.MECHANISM_PARAMETER_LEN, CK_RSA_PKCS_PSS_PARAMS.byteSize());
            } else {
                m.set(ADDRESS, CkLayouts.MECHANISM_PARAMETER, MemorySegment.NULL);
                m.set(CK_ULONG, CkLayouts.MECHANISM_PARAMETER_LEN, 0L);
            }
            check(init(fn.signInit, hs, m, key));
            // Signatures are at most a few hundred bytes (RSA-3072: 384): the first output
            // buffer fits; a longer one is asked for by CKR_BUFFER_TOO_SMALL.
            return single(fn.sign, hs, b, b.input(data), data.length, 0);
        } finally {
            giveBack(b);
        }
    }

    /** For tests: a scratch that waits in the pool, or null. */
    NativeScratch idleScratch() {
        return idle.peekFirst();
    }

    private MemorySegment gcm(NativeScratch b, byte[] iv, byte[] aad) {
        MemorySegment p = b.parameter;
        p.set(ADDRESS, CkLayouts.GCM_IV, b.iv(iv));
        p.set(CK_ULONG, CkLayouts.GCM_IV_LEN, iv.length);
        p.set(CK_ULONG, CkLayouts.GCM_IV_BITS, (long) iv.length * IV_BITS_PER_BYTE);
        p.set(ADDRESS, CkLayouts.GCM_AAD, b.aad(aad));
        p.set(CK_ULONG, CkLayouts.GCM_AAD_LEN, aad.length);
        p.set(CK_ULONG, CkLayouts.GCM_TAG_BITS, TAG_BITS);
        MemorySegment m = b.mechanism;
        m.set(CK_ULONG, CkLayouts.MECHANISM_TYPE, CKM_AES_GCM);
        m.set(ADDRESS, CkLayouts.MECHANISM_PARAMETER, p);
        m.set(CK_ULONG, CkLayouts.MECHANISM_PARAMETER_LEN, CK_GCM_PARAMS.byteSize());
        return m;
    }

    /**
     * A single-part call ({@code C_Encrypt}, {@code C_Decrypt}, {@code C_Sign}) into the
     * output buffer. On CKR_BUFFER_TOO_SMALL the operation stays active and the module has
     * said how much it needs: once more with that much.
     */
    private static byte[] single(MethodHandle call, long hs, NativeScratch b, MemorySegment in, long inLen,
                                 long outBytes) throws PKCS11Exception {
        long rv = call(call, hs, in, inLen, b.output(outBytes), b.length);
        if (rv == CKR_BUFFER_TOO_SMALL) {
            long needed = b.length.get(CK_ULONG, 0);
            rv = call(call, hs, in, inLen, b.output(needed), b.length);
        }
        check(rv);
        return b.outputBytes(b.length.get(CK_ULONG, 0));
    }

    private NativeScratch take() {
        NativeScratch b = idle.pollFirst();
        return b != null ? b : new NativeScratch(firstDataBytes);
    }

    private void giveBack(NativeScratch b) {
        b.wipe();
        idle.offerFirst(b);
    }

    private static void check(long rv) throws PKCS11Exception {
        if (rv != CKR_OK) {
            throw new PKCS11Exception(rv);
        }
    }

    private static long init(MethodHandle h, long hs, MemorySegment mechanism, long key) {
        try {
            return (long) h.invokeExact(hs, mechanism, key);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private static long call(MethodHandle h, long hs, MemorySegment in, long inLen, MemorySegment out,
                             MemorySegment outLen) {
        try {
            return (long) h.invokeExact(hs, in, inLen, out, outLen);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }
}
