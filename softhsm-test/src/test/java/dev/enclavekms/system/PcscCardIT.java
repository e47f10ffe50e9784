package dev.enclavekms.system;

import dev.enclavekms.applet.KeyVault;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.enclave.javacard.CardIdentity;
import dev.enclavekms.enclave.javacard.JavaCardEnclave;
import dev.enclavekms.enclave.javacard.CardReaders;
import org.junit.jupiter.api.Test;

import javax.smartcardio.CardTerminal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link JavaCardEnclave} on the real PC/SC path: the JDK's SunPCSC provider, libpcsclite,
 * the tests' pcscd, vpcd and the KeyVault applet in a jcardsim card JVM — the reader found
 * by name as the daemon finds it ({@link CardReaders#find}). A workload of
 * encrypt/decrypt and sign runs while the card is pulled out and pushed back in: while it is
 * out every call fails with {@link EnclaveException.Unavailable} and nothing else; once it is
 * back, calls work again (the enclave reopens: reconnect, select, secure channel, PIN) and
 * the keys made before are still there.
 */
class PcscCardIT {
    private static final char[] PIN = "4711-0815".toCharArray();
    private static final char[] ADMIN_PIN = "admin-pin-0001".toCharArray();
    private static final Duration PHASE = Duration.ofSeconds(60);

    private final List<String> unexpected = Collections.synchronizedList(new ArrayList<>());
    private final AtomicInteger successes = new AtomicInteger();
    private final AtomicInteger unavailable = new AtomicInteger();

    @Test
    void cardRemovedMidWorkload_callsFailUnavailable_thenWorkAgainAfterReinsertion() throws Exception {
        VirtualPcscReader reader = VirtualPcscReader.shared();
        byte[] aid = JavaCardEnclave.defaultAid();
        try (VirtualPcscReader.Card card = reader.insert(aid, KeyVault.class, new byte[0])) {
            CardTerminal terminal = CardReaders.find(reader.readerName());
            CardIdentity identity = JavaCardEnclave.readIdentity(terminal, aid);
            JavaCardEnclave.personalise(terminal, aid, identity, PIN, ADMIN_PIN);
            try (JavaCardEnclave enclave = JavaCardEnclave.open(terminal, aid, PIN, identity)) {
                ObjectId aes = ObjectId.random();
                ObjectId p256 = ObjectId.random();
                enclave.generate(aes, KeyAlgorithm.AES_256_GCM, "workload aes");
                PublicKey publicKey = enclave.generate(p256, KeyAlgorithm.EC_P256_SHA256, "workload p256");
                byte[] aad = "model=llama-3-8b".getBytes(StandardCharsets.UTF_8);
                byte[] keptSecret = "sealed before the card was pulled".getBytes(StandardCharsets.UTF_8);
                Sealed sealedBefore = enclave.encrypt(aes, aad, keptSecret);

                AtomicBoolean stop = new AtomicBoolean();
                Thread worker = new Thread(() -> workload(enclave, aes, p256, publicKey, aad, stop), "workload");
                worker.start();
                try {
                    awaitCount("50 operations before removal", successes, 50);
                    card.remove();
                    int before = successes.get();
                    awaitCount("calls failing while the card is out", unavailable, 3);
                    assertTrue(successes.get() <= before + 1, "at most the call in flight succeeded while the card was"
                            + " being pulled");
                    card.reinsert();
                    int back = successes.get();
                    awaitCount("50 operations after re-insertion", successes, back + 50);
                } finally {
                    stop.set(true);
                    worker.join(PHASE.toMillis());
                }
                System.out.println("PC/SC workload: " + successes + " operations, " + unavailable
                        + " refused as Unavailable while the card was out, " + enclave.reopenCount() + " reopens");
                assertEquals(List.of(), unexpected, "every failure while the card was out is Unavailable");
                try (SecretBytes plain = enclave.decrypt(aes, aad, sealedBefore)) {
                    assertArrayEquals(keptSecret, plain.reveal(), "a key made before the removal still decrypts");
                }
                assertTrue(enclave.reopenCount() >= 1, "the enclave reopened its connection");
                enclave.destroy(aes);
                enclave.destroy(p256);
            }
        }
    }

    /** Encrypt, decrypt, sign and verify until stopped; sorts every outcome. */
    private void workload(JavaCardEnclave enclave, ObjectId aes, ObjectId p256, PublicKey publicKey, byte[] aad,
                          AtomicBoolean stop) {
        byte[] message = new byte[48];
        int i = 0;
        while (!stop.get()) {
            try {
                message[0] = (byte) i++;
                Sealed s = enclave.encrypt(aes, aad, message);
                try (SecretBytes plain = enclave.decrypt(aes, aad, s)) {
                    if (!Arrays.equals(message, plain.reveal())) {
                        unexpected.add("decrypt returned other bytes");
                    }
                }
                byte[] digest = MessageDigest.getInstance("SHA-256").digest(message);
                byte[] sig = enclave.sign(p256, KeyAlgorithm.EC_P256_SHA256, digest);
                Signature v = Signature.getInstance("SHA256withECDSA");
                v.initVerify(publicKey);
                v.update(message);
                if (!v.verify(sig)) {
                    unexpected.add("a signature did not verify");
                }
                successes.incrementAndGet();
            } catch (EnclaveException.Unavailable e) {
                unavailable.incrementAndGet();
                java.util.concurrent.locks.LockSupport.parkNanos(Duration.ofMillis(20).toNanos());
            } catch (Exception | Error e) {
                unexpected.add(e.toString());
            }
        }
    }

    private void awaitCount(String what, AtomicInteger counter, int target) throws Exception {
        Await.until(what + " (unexpected so far: " + unexpected + ")", PHASE, () -> counter.get() >= target);
    }
}
