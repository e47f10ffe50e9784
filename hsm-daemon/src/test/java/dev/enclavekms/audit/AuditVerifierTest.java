package dev.enclavekms.audit;

import dev.enclavekms.audit.AuditFixtures.JcaSigner;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.enclavekms.audit.AuditFixtures.call;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each way of tampering with a log, done to a real log, and the verifier's answer: which
 * record is the first bad one (file, line, seq) and why.
 *
 * <p>The log: a start record and 40 calls with a checkpoint every 10 records (at seq 11,
 * 22, 33 and 44), then the stop checkpoint (46) — 46 records in one file, line n holding
 * seq n.
 */
class AuditVerifierTest {
    @TempDir
    Path dir;
    final JcaSigner signer = new JcaSigner();
    Path file;
    List<String> lines;

    @BeforeEach
    void writeLog() throws Exception {
        AuditLog log = AuditLog.open(AuditLog.Options.defaults(dir).withCheckpoints(10, Duration.ofHours(1)), signer,
                Clock.systemUTC(), Map.of());
        for (int i = 0; i < 40; i++) {
            log.append(call("dev.enclavekms.Kms.Decrypt", "key", "weights", "version", (long) (i % 3 + 1),
                    "outcome", "ok", "user", "svc-" + i));
        }
        log.close();
        file = AuditLog.logFiles(dir).getFirst();
        lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        assertEquals(46, lines.size());
    }

    private AuditVerifier.Report verify() throws Exception {
        return AuditVerifier.verify(List.of(dir), signer.publicKey(), null);
    }

    private void write(List<String> newLines) throws Exception {
        Files.write(file, newLines, StandardCharsets.UTF_8);
    }

    private static Map<String, Object> parse(String line) throws Exception {
        return new LinkedHashMap<>(CanonicalJson.parseCanonical(line));
    }

    /** A record as the attacker rewrites it: hash recomputed (and signature, with their own key, if any). */
    private static String rehash(Map<String, Object> r) {
        r.put("hash", AuditRecords.hash(r));
        return CanonicalJson.write(r);
    }

    private static void assertFirstBad(AuditVerifier.Report report, int line, Long seq, String reason) {
        assertEquals(AuditVerifier.Status.TAMPERED, report.status(), String.valueOf(report));
        assertEquals(line, report.problem().line(), String.valueOf(report.problem()));
        assertEquals(seq, report.problem().seq(), String.valueOf(report.problem()));
        assertTrue(report.problem().reason().contains(reason), report.problem().reason());
    }

    @Test
    void untouched_intactWithEveryCheckpointVerifiedAndTheStop() throws Exception {
        AuditVerifier.Report report = verify();

        assertEquals(AuditVerifier.Status.INTACT, report.status(), String.valueOf(report));
        assertNull(report.problem());
        assertEquals(46, report.records());
        assertEquals(5, report.checkpoints());
        assertEquals(5, report.signaturesVerified());
        assertEquals(46L, report.lastSeq());
        assertTrue(report.stopped());
    }

    @Test
    void editAField_thatRecordNamed() throws Exception {
        lines.set(19, lines.get(19).replace("\"user\":\"svc-17\"", "\"user\":\"svc-99\""));
        write(lines);

        assertFirstBad(verify(), 20, 20L, "does not match its hash");
    }

    @Test
    void editAFieldAndRecomputeItsHash_thatRecordNamed() throws Exception {
        Map<String, Object> r = parse(lines.get(19));
        r.put("user", "svc-99");
        lines.set(19, rehash(r));
        write(lines);

        assertFirstBad(verify(), 20, 20L, "altered and its hash recomputed");
    }

    @Test
    void editAFieldAndRecomputeTheWholeChain_nextCheckpointSignatureFails() throws Exception {
        // The rewriter has no enclave key: the chain can be made consistent, the checkpoints cannot.
        List<String> rewritten = new ArrayList<>(lines.subList(0, 19));
        String prev = (String) parse(lines.get(18)).get("hash");
        for (int i = 19; i < lines.size(); i++) {
            Map<String, Object> r = parse(lines.get(i));
            if (i == 19) r.put("user", "svc-99");
            r.put("prev", prev);
            rewritten.add(rehash(r));
            prev = (String) r.get("hash");
        }
        write(rewritten);

        // The first checkpoint after the edit is the one at seq 22.
        assertFirstBad(verify(), 22, 22L, "signature does not verify");
        assertTrue(verify().problem().reason().contains("after the checkpoint at seq 11"), verify().problem().reason());
    }

    @Test
    void deleteALine_theRecordAfterTheGapNamed() throws Exception {
        lines.remove(19);
        write(lines);

        assertFirstBad(verify(), 20, 21L, "record 20 is missing");
    }

    @Test
    void swapTwoLines_theFirstOutOfPlaceNamed() throws Exception {
        String a = lines.get(19);
        lines.set(19, lines.get(20));
        lines.set(20, a);
        write(lines);

        assertFirstBad(verify(), 20, 21L, "record 20 is missing");
    }

    @Test
    void insertAForgedLineCopiedFromAnother_itIsNamed() throws Exception {
        lines.add(19, lines.get(5).replace("\"user\":\"svc-4\"", "\"user\":\"intruder\""));
        write(lines);

        assertFirstBad(verify(), 20, 6L, "does not match its hash");
    }

    @Test
    void insertAForgedLineChainedInPlace_itIsNamedAsInserted() throws Exception {
        // The forger chains the forged line to its predecessor and gives it the next seq.
        Map<String, Object> before = parse(lines.get(18));
        Map<String, Object> forged = parse(lines.get(19));
        forged.put("user", "intruder");
        forged.put("prev", before.get("hash"));
        lines.add(19, rehash(forged));
        write(lines);

        assertFirstBad(verify(), 20, 20L, "inserted");
    }

    @Test
    void truncateAfterACheckpoint_recordsItCoveredMissing_gapNamed() throws Exception {
        // Records 13..21 cut out, the checkpoint at 22 that covered them kept.
        List<String> cut = new ArrayList<>(lines.subList(0, 12));
        cut.addAll(lines.subList(21, lines.size()));
        write(cut);

        assertFirstBad(verify(), 13, 22L, "records 13..21 are missing");
    }

    @Test
    void truncateTheTailAfterACheckpoint_incompleteWithoutHead_tamperedAgainstTheHead() throws Exception {
        Map<String, Object> head = parse(lines.getLast());
        write(lines.subList(0, 33)); // ends with the checkpoint at seq 33

        AuditVerifier.Report alone = verify();
        assertEquals(AuditVerifier.Status.INCOMPLETE, alone.status(), String.valueOf(alone));
        assertTrue(alone.notes().stream().anyMatch(n -> n.contains("does not end with a stop checkpoint")), alone.notes().toString());

        AuditVerifier.Report againstHead = AuditVerifier.verify(List.of(dir), signer.publicKey(),
                new AuditVerifier.ExpectedHead((Long) head.get("seq"), (String) head.get("hash")));
        assertFirstBad(againstHead, 33, 33L, "records 34..46 were cut off");
    }

    @Test
    void tornLastLine_named() throws Exception {
        String text = String.join("\n", lines) + "\n";
        Files.writeString(file, text.substring(0, text.length() - 30), StandardCharsets.UTF_8);

        assertFirstBad(verify(), 46, null, "incomplete");
    }

    @Test
    void reSignWithAnotherKey_firstCheckpointFailsWithTheExportedKey() throws Exception {
        JcaSigner attacker = new JcaSigner();
        List<String> resigned = new ArrayList<>();
        String prev = AuditRecords.GENESIS;
        for (String l : lines) {
            Map<String, Object> r = parse(l);
            r.put("prev", prev);
            if ("checkpoint".equals(r.get("type"))) {
                r.putAll(attacker.keyFields());
                r.put("signature", Base64.getEncoder().encodeToString(attacker.sign(AuditRecords.signedBytes(r))));
            }
            resigned.add(rehash(r));
            prev = (String) parse(resigned.getLast()).get("hash");
        }
        write(resigned);

        AuditVerifier.Report report = verify();
        assertFirstBad(report, 11, 11L, "signature does not verify");
        assertTrue(report.problem().reason().contains(AuditKeys.keyId(attacker.publicKey())), report.problem().reason());
        // With the attacker's key it would verify: the signatures are well-formed, just not ours.
        assertEquals(AuditVerifier.Status.INTACT, AuditVerifier.verify(List.of(dir), attacker.publicKey(), null).status());
    }

    @Test
    void noPublicKey_chainCheckedButIncomplete() throws Exception {
        AuditVerifier.Report report = AuditVerifier.verify(List.of(dir), null, null);

        assertEquals(AuditVerifier.Status.INCOMPLETE, report.status());
        assertEquals(0, report.signaturesVerified());
        assertTrue(report.notes().stream().anyMatch(n -> n.contains("no public key")), report.notes().toString());
    }

    @Test
    void fileRenamed_named() throws Exception {
        Files.move(file, dir.resolve(AuditRecords.fileName(7)));

        AuditVerifier.Report report = verify();
        assertEquals(AuditVerifier.Status.TAMPERED, report.status());
        assertTrue(report.problem().reason().contains("named for seq 7"), report.problem().reason());
    }

    @Test
    void nonCanonicalButEqualJson_named() throws Exception {
        lines.set(9, lines.get(9).replace(",", ", "));
        write(lines);

        assertFirstBad(verify(), 10, null, "not a canonical audit record");
    }
}
