package dev.enclavekms.audit;

import dev.enclavekms.json.JsonException;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.security.Signature;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Checks audit log files offline, reading them directly (no daemon needed): every line is a
 * canonical record whose hash matches its content; sequence numbers run on without gap or
 * repetition, also across files; every record names its predecessor's hash; every
 * checkpoint's signature verifies with the given public key. The first record that fails is
 * reported with its file, line, seq and what is wrong — and checking stops there, because
 * nothing after a break in the chain can be trusted to be in place.
 *
 * <h2>What is detected, and what is not</h2>
 * <ul>
 *   <li>An edited record: its hash no longer matches. Edited with its hash recomputed: the
 *       next record's {@code prev} no longer matches; with the rest of the chain recomputed
 *       too: the next checkpoint's signature fails (the rewriter has no enclave key), and the
 *       records since the checkpoint before it are the suspects.</li>
 *   <li>A deleted record: a gap in the sequence. A moved (reordered) record: a gap where it
 *       was taken from, or a step back where it was put. An inserted record: it breaks the
 *       chain, or the record after it links past it (named as inserted).</li>
 *   <li>Checkpoints re-signed with another key: the signature fails with the exported key.</li>
 *   <li>Truncation: records cut from the middle or the end of a file that is followed by
 *       another are a gap. Records cut from the very end of the log are <em>not</em> visible
 *       in the files alone once the cut is at a record boundary — unless the verifier knows
 *       where the log must end: a daemon that stopped cleanly wrote a {@code stop}
 *       checkpoint as its last record (a log that does not end with one is reported as
 *       {@link Status#INCOMPLETE}), and {@code expectedHead} (the running daemon's head, or
 *       a head saved elsewhere) must be found in the log with its hash. What a verifier that
 *       knows neither can prove is the log up to its last checkpoint.</li>
 * </ul>
 */
public final class AuditVerifier {

    public enum Status {
        /** Every record checked, every signature verified, and the log's end is accounted for. */
        INTACT,
        /** A record failed: {@link Report#problem()} says which and why. */
        TAMPERED,
        /** Nothing failed, but not everything is proven (no public key, or an end no signature or head covers). */
        INCOMPLETE
    }

    /** The first bad record: where it is and what is wrong. {@code seq} is null when the line has none. */
    public record Problem(Path file, long line, Long seq, String reason) {
        @Override
        public String toString() {
            return file + ":" + line + (seq == null ? "" : " (seq " + seq + ")") + ": " + reason;
        }
    }

    /** Where the log must reach: a record with this seq and hash. */
    public record ExpectedHead(long seq, String hash) {
    }

    /**
     * @param lastCheckpointSeq the last checkpoint (verified, when a key was given); null for none
     * @param uncovered         records after the last checkpoint, which no signature covers
     * @param stopped           the log ends with the stop checkpoint of a cleanly stopped daemon
     */
    public record Report(Status status, Problem problem, long records, Long firstSeq, Long lastSeq, String lastHash,
                         int checkpoints, int signaturesVerified, Long lastCheckpointSeq, long uncovered,
                         boolean stopped, List<String> notes) {
    }

    private AuditVerifier() {
    }

    /**
     * @param inputs       log files and directories (a directory stands for its
     *                     {@code audit-*.jsonl} files); checked in seq order
     * @param publicKey    the exported audit public key, or null to check the chain only
     * @param expectedHead where the log must reach, or null
     * @throws IOException when a file cannot be read at all
     */
    public static Report verify(List<Path> inputs, PublicKey publicKey, ExpectedHead expectedHead) throws IOException {
        return new Run(publicKey, expectedHead).verify(files(inputs));
    }

    /** The files to check, in the order the chain runs through them. */
    static List<Path> files(List<Path> inputs) throws IOException {
        LinkedHashSet<Path> out = new LinkedHashSet<>();
        for (Path p : inputs) {
            if (Files.isDirectory(p)) {
                out.addAll(AuditLog.logFiles(p));
            } else if (Files.exists(p)) {
                out.add(p);
            } else {
                throw new IOException(p + " does not exist");
            }
        }
        List<Path> files = new ArrayList<>(out);
        if (files.stream().allMatch(f -> AuditRecords.firstSeqOf(f).isPresent())) {
            files.sort((a, b) -> Long.compare(AuditRecords.firstSeqOf(a).orElseThrow(),
                    AuditRecords.firstSeqOf(b).orElseThrow()));
        }
        return files;
    }

    /** One verification: the chain state as it walks the records. */
    private static final class Run {
        private final PublicKey key;
        private final String keyId;
        private final ExpectedHead expectedHead;
        private final List<String> notes = new ArrayList<>();

        private long records;
        private Long firstSeq;
        private long prevSeq;
        private String prevHash;
        private Path prevFile;
        private long prevLine;
        private String beforePrevHash;
        private int checkpoints;
        private int verified;
        private Long lastCheckpointSeq;
        private long uncovered;
        private boolean stopped;
        private boolean headFound;

        Run(PublicKey key, ExpectedHead expectedHead) {
            this.key = key;
            this.keyId = key == null ? null : AuditKeys.keyId(key);
            this.expectedHead = expectedHead;
        }

        Report verify(List<Path> files) throws IOException {
            for (Path f : files) {
                Problem p = verifyFile(f);
                if (p != null) {
                    return report(Status.TAMPERED, p);
                }
            }
            if (records == 0) {
                notes.add("no audit records found");
                return report(Status.INCOMPLETE, null);
            }
            if (expectedHead != null && !headFound) {
                if (prevSeq < expectedHead.seq()) {
                    return report(Status.TAMPERED, new Problem(prevFile, prevLine, prevSeq, "the log ends at seq "
                            + prevSeq + ", but the head it must reach is seq " + expectedHead.seq() + ": records "
                            + range(prevSeq + 1, expectedHead.seq()) + " were cut off"));
                }
                notes.add("the expected head seq " + expectedHead.seq() + " comes before the first record checked");
                return report(Status.INCOMPLETE, null);
            }
            Status status = Status.INTACT;
            if (key == null) {
                notes.add(checkpoints + " checkpoint signatures were not checked: no public key given");
                status = Status.INCOMPLETE;
            }
            if (headFound) {
                notes.add("the log reaches the expected head (seq " + expectedHead.seq() + ")");
            } else if (!stopped) {
                String tail = uncovered == 0
                        ? "it ends with a checkpoint (seq " + lastCheckpointSeq + "), but records after it could have"
                        + " been cut off unnoticed"
                        : uncovered + " record(s) after " + (lastCheckpointSeq == null ? "the start"
                        : "the last checkpoint (seq " + lastCheckpointSeq + ")") + " are covered by no signature,"
                        + " and cutting them off would go unnoticed";
                notes.add("the log does not end with a stop checkpoint (the daemon is running, did not stop"
                        + " cleanly, or its end was cut off): " + tail + "; check against the daemon's head"
                        + " (--daemon) or a saved head (--head)");
                status = Status.INCOMPLETE;
            }
            return report(status, null);
        }

        private Report report(Status status, Problem problem) {
            return new Report(status, problem, records, firstSeq, records == 0 ? null : prevSeq, prevHash, checkpoints,
                    verified, lastCheckpointSeq, uncovered, stopped, List.copyOf(notes));
        }

        private Problem verifyFile(Path f) throws IOException {
            Long nameSeq = AuditRecords.firstSeqOf(f).orElse(null);
            try (InputStream in = new BufferedInputStream(Files.newInputStream(f), 1 << 16)) {
                long line = 0;
                while (true) {
                    Line l = readLine(in);
                    if (l != null && l.padding() != Padding.NONE && l.bytes().length == 0) {
                        // Zero bytes where a record would begin: the preallocated end of the file (AuditPadding).
                        if (l.padding() == Padding.DATA_AFTER) {
                            return new Problem(f, line + 1, null, "zero bytes followed by more data after the last"
                                    + " record: a write torn by a crash (the daemon cuts it at its next start) or a"
                                    + " damaged file");
                        }
                        notes.add(f + " ends in zero padding after its last record (the daemon is writing it, or did"
                                + " not stop cleanly)");
                        l = null;
                    }
                    if (l == null) {
                        if (line == 0) {
                            notes.add(f + " is empty");
                        }
                        return null;
                    }
                    line++;
                    if (l.tooLong()) {
                        return new Problem(f, line, null, "the line is longer than " + AuditRecords.MAX_LINE_BYTES
                                + " bytes: not an audit record");
                    }
                    if (l.padding() != Padding.NONE) {
                        return new Problem(f, line, null, l.padding() == Padding.TO_THE_END
                                ? "the last line is incomplete (zero padding before its line end): a torn write"
                                : "zero bytes inside the line, followed by more data: a write torn by a crash (the"
                                + " daemon cuts it at its next start) or a damaged file");
                    }
                    if (!l.terminated()) {
                        return new Problem(f, line, null, "the last line is incomplete (no line end): a torn write"
                                + " or a truncated file");
                    }
                    Problem p = verifyRecord(f, line, l.bytes(), line == 1 ? nameSeq : null);
                    if (p != null) {
                        return p;
                    }
                }
            }
        }

        private Problem verifyRecord(Path f, long line, byte[] bytes, Long nameSeq) {
            String text;
            try {
                text = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString();
            } catch (CharacterCodingException e) {
                return new Problem(f, line, null, "the line is not UTF-8: the record was altered");
            }
            Map<String, Object> r;
            try {
                r = CanonicalJson.parseCanonical(text);
            } catch (JsonException e) {
                return new Problem(f, line, null, "not a canonical audit record (" + e.getMessage()
                        + "): the line was altered");
            }
            Long seq = r.get(AuditRecords.SEQ) instanceof Long n && n > 0 ? n : null;
            if (seq == null) {
                return new Problem(f, line, null, "the record has no valid seq: the line was altered");
            }
            if (!Long.valueOf(AuditRecords.FORMAT_VERSION).equals(r.get(AuditRecords.VERSION_FIELD))) {
                return new Problem(f, line, seq, "unknown record format version " + r.get(AuditRecords.VERSION_FIELD));
            }
            for (String field : List.of(AuditRecords.TYPE, AuditRecords.TIME)) {
                if (!(r.get(field) instanceof String)) {
                    return new Problem(f, line, seq, "the record has no " + field + ": the line was altered");
                }
            }
            if (!AuditRecords.isHash(r.get(AuditRecords.PREV)) || !AuditRecords.isHash(r.get(AuditRecords.HASH))) {
                return new Problem(f, line, seq, "the record's prev or hash is malformed: the line was altered");
            }
            String hash = (String) r.get(AuditRecords.HASH);
            String prev = (String) r.get(AuditRecords.PREV);
            if (!AuditRecords.hash(r).equals(hash)) {
                return new Problem(f, line, seq, "the record does not match its hash: it was edited");
            }
            Problem link = checkLink(f, line, seq, prev);
            if (link != null) {
                return link;
            }
            if (nameSeq != null && nameSeq.longValue() != seq) {
                return new Problem(f, line, seq, "the file is named for seq " + nameSeq + " but starts with seq " + seq
                        + ": records were removed from its start, or the file was renamed");
            }
            String type = (String) r.get(AuditRecords.TYPE);
            boolean checkpoint = AuditRecords.TYPE_CHECKPOINT.equals(type);
            if (checkpoint) {
                Problem p = checkCheckpoint(f, line, seq, r);
                if (p != null) {
                    return p;
                }
            }
            if (expectedHead != null && seq == expectedHead.seq()) {
                if (!hash.equals(expectedHead.hash())) {
                    return new Problem(f, line, seq, "this is not the record the expected head names (its hash is "
                            + hash + ", the head's " + expectedHead.hash() + "): the log was rewritten up to here");
                }
                headFound = true;
            }
            records++;
            if (firstSeq == null) {
                firstSeq = seq;
            }
            beforePrevHash = prevHash;
            prevHash = hash;
            prevSeq = seq;
            prevFile = f;
            prevLine = line;
            uncovered = checkpoint ? 0 : uncovered + 1;
            stopped = checkpoint && AuditRecords.REASON_STOP.equals(r.get(AuditRecords.CHECKPOINT_REASON));
            return null;
        }

        /** Does this record follow the previous one in the chain? Names the first bad record when not. */
        private Problem checkLink(Path f, long line, long seq, String prev) {
            if (prevHash == null) {
                if (seq == 1) {
                    if (!prev.equals(AuditRecords.GENESIS)) {
                        return new Problem(f, line, seq, "the first record names a predecessor: records before it"
                                + " were removed");
                    }
                } else {
                    notes.add("checking starts at seq " + seq + ": the records before it were not given (archived?),"
                            + " and its link to them is not checked");
                }
                return null;
            }
            if (!prev.equals(prevHash)) {
                if (prev.equals(beforePrevHash)) {
                    return new Problem(prevFile, prevLine, prevSeq, "this record was inserted: the record after it ("
                            + f.getFileName() + ":" + line + ", seq " + seq + ") links past it to the one before");
                }
                if (seq > prevSeq + 1) {
                    return new Problem(f, line, seq, "record" + (seq - prevSeq > 2 ? "s " : " ")
                            + range(prevSeq + 1, seq - 1) + (seq - prevSeq > 2 ? " are" : " is")
                            + " missing before this one (deleted, or moved elsewhere)");
                }
                if (seq <= prevSeq) {
                    return new Problem(f, line, seq, "seq " + seq + " comes after seq " + prevSeq
                            + ": records are out of order (moved) or this one was inserted");
                }
                return new Problem(prevFile, prevLine, prevSeq, "the record after this one (" + f.getFileName() + ":"
                        + line + ", seq " + seq + ") names another predecessor: this record was altered and its hash"
                        + " recomputed, or the one after it was forged");
            }
            if (seq != prevSeq + 1) {
                return new Problem(f, line, seq, "seq " + seq + " follows seq " + prevSeq
                        + " although it links to it: the sequence number was forged");
            }
            return null;
        }

        private Problem checkCheckpoint(Path f, long line, long seq, Map<String, Object> r) {
            if (!(r.get(AuditRecords.CHECKPOINT_HEAD_SEQ) instanceof Long head) || head != seq - 1) {
                return new Problem(f, line, seq, "the checkpoint's head_seq is not the record before it");
            }
            checkpoints++;
            if (key != null) {
                String since = lastCheckpointSeq == null ? "the start of the log" : "the checkpoint at seq "
                        + lastCheckpointSeq;
                if (!(r.get(AuditRecords.SIGNATURE) instanceof String sig64)) {
                    return new Problem(f, line, seq, "the checkpoint has no signature: records after " + since
                            + " up to here cannot be trusted");
                }
                boolean valid;
                try {
                    Signature v = Signature.getInstance(CheckpointSigner.JCA_ALGORITHM);
                    v.initVerify(key);
                    v.update(AuditRecords.signedBytes(r));
                    valid = v.verify(Base64.getDecoder().decode(sig64));
                } catch (GeneralSecurityException | IllegalArgumentException e) {
                    valid = false;
                }
                if (!valid) {
                    String signer = Objects.equals(r.get(AuditRecords.CHECKPOINT_KEY_ID), keyId) ? ""
                            : " (it names key " + r.get(AuditRecords.CHECKPOINT_KEY_ID) + ", the given key is " + keyId + ")";
                    return new Problem(f, line, seq, "the checkpoint's signature does not verify with the given public"
                            + " key" + signer + ": the records after " + since + " up to here may have been rewritten");
                }
                verified++;
            }
            lastCheckpointSeq = seq;
            return null;
        }
    }

    private static String range(long from, long to) {
        return from == to ? String.valueOf(from) : from + ".." + to;
    }

    /** Whether a line ran into a NUL byte, and what followed it. */
    private enum Padding {
        /** No NUL byte. */
        NONE,
        /** A NUL byte, and nothing but NUL bytes to the end of the file: the preallocated padding. */
        TO_THE_END,
        /** A NUL byte, and later more data. */
        DATA_AFTER
    }

    private record Line(byte[] bytes, boolean terminated, boolean tooLong, Padding padding) {
    }

    /**
     * The next line without its '\n'; null at the end of the input. A NUL byte ends the line
     * and the records (a record never contains one): the rest of the input is read to tell
     * padding from damage.
     */
    private static Line readLine(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream(512);
        int c;
        while ((c = in.read()) >= 0) {
            if (c == '\n') {
                return new Line(b.toByteArray(), true, false, Padding.NONE);
            }
            if (c == AuditPadding.PAD) {
                while ((c = in.read()) >= 0) {
                    if (c != AuditPadding.PAD) {
                        return new Line(b.toByteArray(), false, false, Padding.DATA_AFTER);
                    }
                }
                return new Line(b.toByteArray(), false, false, Padding.TO_THE_END);
            }
            if (b.size() >= AuditRecords.MAX_LINE_BYTES) {
                return new Line(null, false, true, Padding.NONE);
            }
            b.write(c);
        }
        return b.size() == 0 ? null : new Line(b.toByteArray(), false, false, Padding.NONE);
    }
}
