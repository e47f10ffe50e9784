package dev.enclavekms.server;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.InvalidParameterException;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.ReEncryptResult;
import dev.enclavekms.client.ReEncrypted;
import dev.enclavekms.json.Json;
import dev.enclavekms.testing.InProcessDaemon;
import dev.enclavekms.varlink.FrameReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DecryptBatch and ReEncryptBatch through a real daemon on a real token, at the wire:
 * the reply text DecryptBatch encodes entry by entry is the compact JSON of the same
 * entries; a bad ciphertext fails the call as before even though it is decoded late; and
 * ReEncryptBatch, which decides once per key version, gives every entry the outcome the
 * single ReEncrypt gives it — mixed versions, a denied key among allowed ones, a REVOKED
 * version with and without the re-encryption grant, garbage, a target key.
 */
class BatchCallsDaemonTest {
    private static final Map<String, String> CONTEXT = Map.of("app", "batch");

    @TempDir
    Path dir;

    @Test
    void decryptBatch_replyIsTheCompactJsonOfItsEntries_andBadEntriesFailTheCallAsBefore() throws Exception {
        try (InProcessDaemon d = InProcessDaemon.start(dir, "batch-wire", Clock.systemUTC());
             KmsClient admin = d.client()) {
            admin.createKey("wire", "ENCRYPT");
            List<DataKey> keys = admin.generateDataKeys("wire", 300, CONTEXT);
            List<String> cts = new ArrayList<>();
            for (DataKey k : keys) cts.add(b64(k.ciphertext()));
            cts.set(7, b64(new byte[] {1, 2, 3}));        // not an envelope: a per-entry error
            cts.set(299, cts.get(299).substring(4));       // a tampered envelope, still base64

            String reply = call(d.socket(), "DecryptBatch", Map.of("ciphertexts", cts, "context", CONTEXT));
            @SuppressWarnings("unchecked")
            List<Map<String, Object>> results = (List<Map<String, Object>>)
                    ((Map<?, ?>) Json.parseObject(reply).get("parameters")).get("results");
            assertEquals(300, results.size());
            // Byte for byte what the writer makes of the parsed reply: compact, fields in the IDL's order.
            assertEquals(Json.write(Map.of("parameters", Map.of("results", results))), reply);
            for (int i = 0; i < 300; i++) {
                Map<String, Object> e = results.get(i);
                if (i == 7 || i == 299) {
                    assertEquals(List.of("error", "message"), List.copyOf(e.keySet()), "entry " + i);
                    assertEquals("DecryptionFailed", e.get("error"));
                } else {
                    assertEquals(List.of("plaintext", "key", "version"), List.copyOf(e.keySet()), "entry " + i);
                    assertArrayEquals(keys.get(i).plaintext(), Base64.getDecoder().decode((String) e.get("plaintext")));
                    assertEquals("wire", e.get("key"));
                    assertEquals(1L, e.get("version"));
                }
            }

            // The audit record counts the entries from the encoded reply as from the list of maps.
            StringBuilder audit = new StringBuilder();
            for (Path p : dev.enclavekms.audit.AuditLog.logFiles(dir.resolve("audit"))) audit.append(Files.readString(p));
            assertTrue(audit.toString().contains("\"count\":300,\"failed\":2"), audit.toString());

            // Not base64 at entry 250: the call fails naming it, after the entries before it were decrypted.
            List<String> bad = new ArrayList<>(cts);
            bad.set(250, "not base64!");
            String failed = call(d.socket(), "DecryptBatch", Map.of("ciphertexts", bad, "context", CONTEXT));
            Map<String, Object> error = Json.parseObject(failed);
            assertEquals("dev.enclavekms.Kms.InvalidParameter", error.get("error"), failed);
            assertEquals("ciphertexts[250]", ((Map<?, ?>) error.get("parameters")).get("parameter"), failed);
            // And it is still reported before an invalid context, as when every entry was decoded first.
            String both = call(d.socket(), "DecryptBatch", Map.of("ciphertexts", bad, "context", Map.of("", "x")));
            assertEquals("ciphertexts[250]", ((Map<?, ?>) Json.parseObject(both).get("parameters")).get("parameter"), both);
            // A bad context alone is reported as such.
            String context = call(d.socket(), "DecryptBatch", Map.of("ciphertexts", cts, "context", Map.of("", "x")));
            assertEquals("context", ((Map<?, ?>) Json.parseObject(context).get("parameters")).get("parameter"), context);

            // The daemon keeps serving, and the client library reads the encoded reply.
            var again = admin.decryptBatch(List.of(keys.get(0).ciphertext()), CONTEXT);
            assertArrayEquals(keys.get(0).plaintext(), ((dev.enclavekms.client.Plaintext) again.getFirst()).plaintext());
            assertThrows(InvalidParameterException.class, () -> admin.decryptBatch(List.of(), Map.of("", "x")));
        }
    }

    @Test
    void reEncryptBatch_givesEveryEntryTheOutcomeOfTheSingleCall() throws Exception {
        Path policy = dir.resolve("policy.yaml");
        Files.writeString(policy, """
                version: 1
                tenants:
                  ops:
                    members: ["user:%s"]
                    grants:
                      - name: operators
                        methods: ["Kms.*", "Admin.*"]
                        keys: ["*"]
                        all_tenants: true
                        token_admin: true
                        reencrypt_revoked: true
                  app:
                    key_prefixes: ["app/"]
                    members: ["token:plain", "token:migrator"]
                    grants:
                      - name: rewrap
                        methods: ["Kms.ReEncrypt", "Kms.ReEncryptBatch", "Kms.Decrypt"]
                        keys: ["app/k*"]
                      - name: migrate
                        to: ["token:migrator"]
                        methods: ["Kms.ReEncrypt", "Kms.ReEncryptBatch"]
                        keys: ["app/k*"]
                        reencrypt_revoked: true
                """.formatted(System.getProperty("user.name")));
        try (InProcessDaemon d = InProcessDaemon.start(dir, "batch-reencrypt", Clock.systemUTC(), policy);
             KmsClient admin = d.client();
             KmsClient plain = d.client();
             KmsClient migrator = d.client()) {
            admin.createKey("app/k1", "ENCRYPT");
            admin.createKey("app/k2", "ENCRYPT");
            admin.createKey("app/kt", "ENCRYPT");
            admin.createKey("app/denied", "ENCRYPT");
            List<byte[]> entries = new ArrayList<>();
            entries.add(admin.generateDataKey("app/k1", CONTEXT).ciphertext());     // k1 v1
            entries.add(admin.generateDataKey("app/k2", CONTEXT).ciphertext());     // k2 v1, revoked below
            entries.add(admin.generateDataKey("app/denied", CONTEXT).ciphertext()); // no grant for it
            admin.rotateKey("app/k1");
            admin.rotateKey("app/k2");
            entries.add(admin.generateDataKey("app/k1", CONTEXT).ciphertext());     // k1 v2, current
            entries.add(admin.generateDataKey("app/k2", CONTEXT).ciphertext());     // k2 v2, current
            admin.revokeKeyVersion("app/k2", 1);
            entries.add(new byte[] {1, 2, 3});                                       // not an envelope
            byte[] tampered = entries.get(0).clone();
            tampered[tampered.length - 1] ^= 1;
            entries.add(tampered);
            // The same versions again, after the others: decisions made once serve them too.
            entries.add(entries.get(2));
            entries.add(entries.get(1));
            entries.add(entries.get(0));
            plain.authenticate(admin.createToken("plain", Duration.ofHours(1)).token());
            migrator.authenticate(admin.createToken("migrator", Duration.ofHours(1)).token());

            for (KmsClient who : List.of(plain, migrator)) {
                for (String target : new String[] {null, "app/kt"}) {
                    List<ReEncryptResult> batch = who.reEncryptBatch(entries, CONTEXT, target);
                    assertEquals(entries.size(), batch.size());
                    for (int i = 0; i < entries.size(); i++) {
                        String where = (who == plain ? "plain" : "migrator") + ", target " + target + ", entry " + i;
                        Object single;
                        try {
                            single = who.reEncrypt(entries.get(i), CONTEXT, target, null);
                        } catch (KmsException e) {
                            single = e;
                        }
                        sameOutcome(admin, single, batch.get(i), where);
                    }
                    // What the outcomes are, not only that they agree.
                    boolean mayRevoked = who == migrator;
                    assertInstanceOf(ReEncrypted.class, batch.get(0));
                    assertEquals(mayRevoked, batch.get(1) instanceof ReEncrypted, "revoked source");
                    assertInstanceOf(ReEncryptResult.Failure.class, batch.get(2), "denied key");
                    assertEquals(target != null, ((ReEncrypted) batch.get(3)).rewrapped(), "k1 v2");
                    assertEquals("DecryptionFailed", ((ReEncryptResult.Failure) batch.get(5)).error());
                    assertEquals("DecryptionFailed", ((ReEncryptResult.Failure) batch.get(6)).error());
                    assertEquals(target == null ? 2 : 1, ((ReEncrypted) batch.get(0)).version());
                }
            }
            assertEquals("KeyVersionUnusable", ((ReEncryptResult.Failure) plain.reEncryptBatch(entries, CONTEXT, null)
                    .get(1)).error());
        }
    }

    /**
     * A batch over many chunks (the first prepared on the calling thread, the last encoded
     * there): every entry's outcome is the single Decrypt's, and a bad entry anywhere — in the
     * first chunk, at a chunk's end, the very last — fails the whole call with the same typed
     * error, and the same audit record, as one at the start: nothing of the entries before it
     * shows.
     */
    @Test
    void decryptBatch_overManyChunks_equalsOneAtATime_andABadEntryAnywhereFailsTheCallTheSameWay() throws Exception {
        try (InProcessDaemon d = InProcessDaemon.start(dir, "batch-chunks", Clock.systemUTC());
             KmsClient admin = d.client()) {
            admin.createKey("one", "ENCRYPT");
            admin.createKey("two", "ENCRYPT");
            int n = 1_500; // chunks of 16, 64, then 256: the last one partly filled
            List<byte[]> cts = new ArrayList<>();
            List<DataKey> ones = admin.generateDataKeys("one", n / 2, CONTEXT);
            admin.rotateKey("two");
            List<DataKey> twos = admin.generateDataKeys("two", n - n / 2, CONTEXT);
            for (int i = 0; i < n; i++) cts.add((i % 2 == 0 ? ones.get(i / 2) : twos.get(i / 2)).ciphertext());
            cts.set(3, new byte[] {1, 2, 3});                                         // not an envelope
            cts.set(16, java.util.Arrays.copyOf(cts.get(16), cts.get(16).length - 1)); // tampered
            cts.set(n - 1, new byte[] {9});                                           // the very last
            List<dev.enclavekms.client.DecryptResult> batch = admin.decryptBatch(cts, CONTEXT);
            assertEquals(n, batch.size());
            for (int i = 0; i < n; i++) {
                Object single;
                try {
                    single = admin.decrypt(cts.get(i), CONTEXT);
                } catch (KmsException e) {
                    single = e;
                }
                if (single instanceof dev.enclavekms.client.Plaintext p) {
                    var b = assertInstanceOf(dev.enclavekms.client.Plaintext.class, batch.get(i), "entry " + i);
                    assertArrayEquals(p.plaintext(), b.plaintext(), "entry " + i);
                    assertEquals(List.of(p.key(), p.version()), List.of(b.key(), b.version()), "entry " + i);
                } else {
                    KmsException e = (KmsException) single;
                    var f = assertInstanceOf(dev.enclavekms.client.DecryptResult.Failure.class, batch.get(i), "entry " + i);
                    assertEquals(List.of(e.shortName(), e.getMessage()), List.of(f.error(), f.message()), "entry " + i);
                }
            }
            assertInstanceOf(dev.enclavekms.client.DecryptResult.Failure.class, batch.get(3));
            assertInstanceOf(dev.enclavekms.client.DecryptResult.Failure.class, batch.get(16));
            assertInstanceOf(dev.enclavekms.client.DecryptResult.Failure.class, batch.get(n - 1));

            List<String> encoded = new ArrayList<>();
            for (byte[] c : cts) encoded.add(b64(c));
            String firstRecord = null;
            for (int at : new int[] {0, 15, 16, 79, 80, n - 2, n - 1}) {
                List<String> bad = new ArrayList<>(encoded);
                bad.set(at, "not base64!");
                int before = auditRecords(dir).size();
                String failed = call(d.socket(), "DecryptBatch", Map.of("ciphertexts", bad, "context", CONTEXT));
                Map<String, Object> error = Json.parseObject(failed);
                assertEquals(List.of("error", "parameters"), List.copyOf(error.keySet()), failed);
                assertEquals("dev.enclavekms.Kms.InvalidParameter", error.get("error"), failed);
                assertEquals(Map.of("parameter", "ciphertexts[" + at + "]",
                                "message", "ciphertexts[" + at + "]: is not valid base64 (standard alphabet, padded)"),
                        error.get("parameters"), failed);
                List<Map<String, Object>> records = auditRecords(dir);
                assertEquals(before + 1, records.size(), "one audit record for the failed call");
                Map<String, Object> record = new LinkedHashMap<>(records.getLast());
                for (String varies : List.of("hash", "prev", "seq", "time", "conn")) record.remove(varies); // chain, clock, connection
                String shape = Json.write(record).replace("ciphertexts[" + at + "]", "ciphertexts[i]");
                if (firstRecord == null) firstRecord = shape;
                assertEquals(firstRecord, shape, "the record of a bad entry at " + at + " is that of one at 0");
            }
            assertTrue(firstRecord.contains("InvalidParameter"), firstRecord);
        }
    }

    private static List<Map<String, Object>> auditRecords(Path dir) throws Exception {
        List<Map<String, Object>> records = new ArrayList<>();
        for (Path p : dev.enclavekms.audit.AuditLog.logFiles(dir.resolve("audit"))) {
            for (String line : Files.readAllLines(p)) {
                line = line.replace("\0", ""); // the log's preallocated zero padding
                if (!line.isBlank()) records.add(Json.parseObject(line));
            }
        }
        return records;
    }

    private static void sameOutcome(KmsClient admin, Object single, ReEncryptResult batched, String where)
            throws Exception {
        if (single instanceof KmsException e) {
            var f = assertInstanceOf(ReEncryptResult.Failure.class, batched, where + ": single failed with " + e);
            assertEquals(e.shortName(), f.error(), where);
            // A denial names the method called: the batch's own, otherwise the same words.
            assertEquals(e.getMessage().replace("Kms.ReEncrypt ", "Kms.ReEncryptBatch "), f.message(), where);
            return;
        }
        ReEncrypted s = (ReEncrypted) single;
        ReEncrypted b = assertInstanceOf(ReEncrypted.class, batched, where + ": single succeeded");
        assertEquals(List.of(s.key(), s.version(), s.sourceKey(), s.sourceVersion(), s.rewrapped()),
                List.of(b.key(), b.version(), b.sourceKey(), b.sourceVersion(), b.rewrapped()), where);
        if (!s.rewrapped()) {
            assertArrayEquals(s.ciphertext(), b.ciphertext(), where);
        } else {
            assertFalse(java.util.Arrays.equals(s.ciphertext(), b.ciphertext()), where + ": fresh IVs");
            assertArrayEquals(admin.decrypt(s.ciphertext(), CONTEXT).plaintext(),
                    admin.decrypt(b.ciphertext(), CONTEXT).plaintext(), where);
        }
    }

    /** One call on a fresh connection; the reply's text as it came. */
    private static String call(Path socket, String method, Map<String, Object> parameters) throws Exception {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            Map<String, Object> msg = new LinkedHashMap<>();
            msg.put("method", "dev.enclavekms.Kms." + method);
            msg.put("parameters", parameters);
            OutputStream out = Channels.newOutputStream(ch);
            out.write(FrameReader.encode(Json.write(msg)));
            var frame = new FrameReader(Channels.newInputStream(ch), 64 * 1024 * 1024).next();
            return assertInstanceOf(FrameReader.Frame.Text.class, frame).json();
        }
    }

    private static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }
}
