package dev.enclavekms.service;

import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.format.Envelope;
import dev.enclavekms.registry.KeyRecord;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One ReEncryptBatch call: {@link CryptoService#reEncrypt} for every entry, in order, with
 * its decisions made once per call as DecryptBatch makes them ({@link BatchDecryption}):
 * the policy decision, registry lookup and state check of each source key version an
 * envelope names (and its AAD), of each key entries are sealed under, and of that key's
 * primary version. The first entry that needs a decision takes it; an error is remembered
 * too, so every entry that needs a refused decision gets the same error. Each entry still
 * goes through the same steps in the same order, so it fails where and as it did when every
 * entry decided for itself: bad envelope, source refused, not authentic, target refused,
 * primary unusable, usage limit (counted per entry). A fault of the service fails the call.
 *
 * <p>The device work stays one entry at a time (a decryption, then an encryption, on one
 * session): SoftHSM serialises operations on a token key, so more threads add nothing.
 */
final class BatchReEncryption {
    private final CryptoService service;
    private final EncryptionContext context;
    /** The call's target key, decided before the batch; null: each entry stays under its own key. */
    private final KeyRecord target;
    private final boolean mayUseRevoked;

    private record Header(String keyName, int keyVersion, Envelope.SealingScheme scheme) { }

    private record Opening(CryptoService.Source source, byte[] aad) { }

    /** Per source key version: an {@link Opening} or the caller's error. */
    private final Map<Header, Object> openings = new HashMap<>();
    /** Per source key name (no target): the key to seal under, or the caller's error. */
    private final Map<String, Object> destinations = new HashMap<>();
    /** Per key sealed under: its {@link CryptoService.Sealing} or the caller's error. */
    private final Map<String, Object> sealings = new HashMap<>();

    BatchReEncryption(CryptoService service, EncryptionContext context, KeyRecord target, boolean mayUseRevoked) {
        this.service = service;
        this.context = context;
        this.target = target;
        this.mayUseRevoked = mayUseRevoked;
    }

    List<CryptoService.ReEncryptEntry> run(List<byte[]> ciphertexts) throws KmsError {
        List<CryptoService.ReEncryptEntry> out = new ArrayList<>(ciphertexts.size());
        for (byte[] c : ciphertexts) {
            try {
                out.add(new CryptoService.ReEncryptEntry(reEncrypt(c), null));
            } catch (KmsError.CallerError e) {
                out.add(new CryptoService.ReEncryptEntry(null, e));
            }
        }
        return out;
    }

    /** {@link CryptoService#reEncrypt} with no new context, its steps in the same order. */
    private CryptoService.ReEncrypted reEncrypt(byte[] ciphertext) throws KmsError {
        Envelope env = CryptoService.envelope(ciphertext);
        Opening o = decided(openings, new Header(env.keyName(), env.keyVersion(), env.scheme()),
                () -> new Opening(service.reEncryptionSource(env, context, mayUseRevoked), env.aad(context)));
        try (CryptoService.Decrypted d = service.unseal(o.source(), env, o.aad())) {
            KeyRecord to = target != null ? target
                    : decided(destinations, d.key(), () -> service.reEncryptionTarget(d.key(), context));
            if (to.name().equals(d.key()) && to.primaryVersion() == d.version()) {
                return new CryptoService.ReEncrypted(to.name(), d.version(), d.key(), d.version(), false, ciphertext.clone());
            }
            CryptoService.Sealing s = decided(sealings, to.name(), () -> service.sealing(to, context));
            byte[] plain = d.plaintext().reveal();
            try {
                CryptoService.Encrypted e = service.seal(s, plain);
                return new CryptoService.ReEncrypted(e.key(), e.version(), d.key(), d.version(), true, e.ciphertext());
            } finally {
                Arrays.fill(plain, (byte) 0);
            }
        }
    }

    @FunctionalInterface
    private interface Decision<T> {
        T make() throws KmsError;
    }

    /** The decision under {@code key}, made now if it was not yet; a caller's error is remembered, a fault is not. */
    @SuppressWarnings("unchecked")
    private static <K, T> T decided(Map<K, Object> decisions, K key, Decision<T> decision) throws KmsError {
        Object known = decisions.get(key);
        if (known == null) {
            try {
                known = decision.make();
            } catch (KmsError.CallerError e) {
                known = e;
            }
            decisions.put(key, known);
        }
        if (known instanceof KmsError.CallerError e) {
            throw e;
        }
        return (T) known;
    }
}
