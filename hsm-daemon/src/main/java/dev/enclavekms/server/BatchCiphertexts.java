package dev.enclavekms.server;

import dev.enclavekms.format.Envelope;
import dev.enclavekms.server.varlink.Params;
import dev.enclavekms.service.CryptoService;
import dev.enclavekms.service.KmsError;
import dev.enclavekms.varlink.VarlinkError;

import java.util.AbstractList;
import java.util.List;

/**
 * A batch call's {@code ciphertexts}, decoded from base64 entry by entry as the batch
 * reaches them: in DecryptBatch's preparing stage, beside the device, instead of all
 * 10,000 before the device starts (strict base64 decodes and re-encodes every entry:
 * ≈ 1.3 ms of a 10,000-key call, on its critical path). The types are checked at once.
 *
 * <p>The caller sees the same errors as when every entry was decoded first: an entry that
 * is not valid base64 fails the whole call with InvalidParameter naming it (whatever the
 * entries before it did, their results are dropped), and it is reported before an invalid
 * parameter checked later ({@link #beforeFailing}).
 */
final class BatchCiphertexts extends AbstractList<byte[]> {
    private final Params params;
    private final List<?> encoded;

    private BatchCiphertexts(Params params, List<?> encoded) {
        this.params = params;
        this.encoded = encoded;
    }

    static BatchCiphertexts of(Params p) throws VarlinkError {
        List<?> items = p.list("ciphertexts", CryptoService.MAX_BATCH);
        for (int i = 0; i < items.size(); i++) {
            if (!(items.get(i) instanceof String)) {
                throw p.invalid("ciphertexts", "entry " + i + " must be a base64 string");
            }
        }
        return new BatchCiphertexts(p, items);
    }

    /** Entry {@code index}, decoded; a bad one throws {@link BadEntry}, which {@link #failingOnBadEntry} turns back into its error. */
    @Override
    public byte[] get(int index) {
        try {
            return decode(index);
        } catch (VarlinkError e) {
            throw new BadEntry(e);
        }
    }

    @Override
    public int size() {
        return encoded.size();
    }

    private byte[] decode(int index) throws VarlinkError {
        return params.decodeBase64("ciphertexts[" + index + "]", (String) encoded.get(index), Envelope.MAX_ENVELOPE_BYTES);
    }

    @FunctionalInterface
    interface Check<T> {
        T get() throws VarlinkError;
    }

    /**
     * Checks another parameter. When it is invalid, the entries are decoded first, so that a
     * bad entry is reported before it, as when the entries were decoded before anything else.
     */
    <T> T beforeFailing(Check<T> check) throws VarlinkError {
        try {
            return check.get();
        } catch (VarlinkError e) {
            for (int i = 0; i < encoded.size(); i++) {
                decode(i);
            }
            throw e;
        }
    }

    @FunctionalInterface
    interface Batch {
        void run() throws KmsError;
    }

    /** Runs the batch over these entries; an entry that turned out not to be base64 fails it with its error. */
    void failingOnBadEntry(Batch batch) throws KmsError, VarlinkError {
        try {
            batch.run();
        } catch (BadEntry e) {
            throw e.error;
        }
    }

    /** Carries an entry's decoding error through the batch's stages (which pass runtime exceptions on). */
    private static final class BadEntry extends RuntimeException {
        private final VarlinkError error;

        BadEntry(VarlinkError error) {
            super(error.getMessage(), null, false, false);
            this.error = error;
        }
    }
}
