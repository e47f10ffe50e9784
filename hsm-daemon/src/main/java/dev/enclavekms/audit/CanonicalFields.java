package dev.enclavekms.audit;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Map;

/**
 * A record's own fields — all but the chain fields {@code v}, {@code seq}, {@code time},
 * {@code prev} and {@code hash} that the log adds — already in their canonical encoding
 * ({@link CanonicalJson}): sorted, encoded, and split where the chain fields will fall
 * between them; and the record's hash already fed with the bytes that come before its first
 * chain-dependent field ({@code prev}). Made on the caller's thread before the record
 * queues, so that the one writer every call waits behind ({@link AuditLog}) only adds the
 * chain fields, finishes the hash and joins the bytes ({@link #seal}). The line it makes is
 * byte for byte {@code CanonicalJson.write} of the whole record (AuditLogTest checks both
 * ways against each other).
 */
final class CanonicalFields {
    /**
     * The fields the log adds, in canonical order (by key): a record's own fields fall into
     * the six gaps around them.
     */
    private static final String[] CHAIN = {AuditRecords.HASH, AuditRecords.PREV, AuditRecords.SEQ, AuditRecords.TIME,
            AuditRecords.VERSION_FIELD};
    private static final byte[] EMPTY = new byte[0];
    private static final byte[] VERSION_MEMBER = ascii("\"" + AuditRecords.VERSION_FIELD + "\":"
            + AuditRecords.FORMAT_VERSION);
    private static final byte[] PREFIX_HASH = ascii("\"" + AuditRecords.HASH + "\":\"");
    private static final byte[] PREFIX_PREV = ascii("\"" + AuditRecords.PREV + "\":\"");
    private static final String PREFIX_SEQ = "\"" + AuditRecords.SEQ + "\":";
    private static final byte[] PREFIX_TIME = ascii("\"" + AuditRecords.TIME + "\":\"");

    /**
     * {@code gaps[i]}: the members that sort before {@code CHAIN[i]} (and after
     * {@code CHAIN[i - 1]}), comma-separated, UTF-8; empty when there are none.
     */
    private final byte[][] gaps;
    /** SHA-256 fed with {@code {} and every member before {@code prev} (the hash covers the record without {@code hash}). */
    private final MessageDigest beforePrev;

    private CanonicalFields(byte[][] gaps, MessageDigest beforePrev) {
        this.gaps = gaps;
        this.beforePrev = beforePrev;
    }

    /**
     * @throws IllegalArgumentException when a field is one the log sets, or a value has no
     *                                  canonical form (null, a float, a lone surrogate)
     */
    static CanonicalFields of(Map<String, Object> fields) {
        byte[][] gaps = new byte[CHAIN.length + 1][];
        StringBuilder sb = new StringBuilder(256);
        int gap = 0;
        for (Map.Entry<String, Object> e : CanonicalJson.sorted(fields)) {
            String key = e.getKey();
            while (gap < CHAIN.length && key.compareTo(CHAIN[gap]) >= 0) {
                if (key.equals(CHAIN[gap])) { // sorted keys reach every chain field they could equal
                    throw new IllegalArgumentException("an audit record may not set '" + key + "'");
                }
                gaps[gap++] = utf8(sb);
            }
            if (!sb.isEmpty()) sb.append(',');
            CanonicalJson.member(sb, key, e.getValue());
        }
        while (gap <= CHAIN.length) {
            gaps[gap++] = utf8(sb);
        }
        MessageDigest digest = AuditRecords.newSha256();
        digest.update((byte) '{');
        update(digest, gaps[0], gaps[1]);
        if (gaps[0].length + gaps[1].length > 0) digest.update((byte) ','); // prev follows
        return new CanonicalFields(gaps, digest);
    }

    /** A record with its line: the bytes to write (newline included) and what the next record's {@code prev} names. */
    record Line(long seq, String time, String hash, byte[] bytes) {
    }

    /** The record at chain position {@code seq}, after the record whose hash is {@code prev}. */
    Line seal(long seq, String time, String prev) {
        byte[] prevMember = quoted(PREFIX_PREV, prev);
        byte[] seqMember = ascii(PREFIX_SEQ + seq);
        byte[] timeMember = quoted(PREFIX_TIME, time);
        MessageDigest digest;
        try {
            digest = (MessageDigest) beforePrev.clone(); // a record sealed again (file rotation) starts from the same state
        } catch (CloneNotSupportedException e) {
            throw new IllegalStateException("SHA-256 digests clone (AuditRecords.newSha256)", e);
        }
        update(digest, prevMember, gaps[2], seqMember, gaps[3], timeMember, gaps[4], VERSION_MEMBER, gaps[5]);
        digest.update((byte) '}');
        String hash = HexFormat.of().formatHex(digest.digest());
        byte[] hashMember = quoted(PREFIX_HASH, hash);
        byte[][] parts = {gaps[0], hashMember, gaps[1], prevMember, gaps[2], seqMember, gaps[3], timeMember, gaps[4],
                VERSION_MEMBER, gaps[5]};
        byte[] line = new byte[joinedLength(parts) + 3];
        line[0] = '{';
        int end = join(line, 1, parts);
        line[end] = '}';
        line[end + 1] = '\n';
        return new Line(seq, time, hash, line);
    }

    /** Feeds the non-empty parts to the digest, comma-separated. */
    private static void update(MessageDigest digest, byte[]... parts) {
        boolean first = true;
        for (byte[] p : parts) {
            if (p.length == 0) continue;
            if (!first) digest.update((byte) ',');
            first = false;
            digest.update(p);
        }
    }

    private static int joinedLength(byte[][] parts) {
        int n = 0;
        int nonEmpty = 0;
        for (byte[] p : parts) {
            if (p.length == 0) continue;
            n += p.length;
            nonEmpty++;
        }
        return n + Math.max(0, nonEmpty - 1);
    }

    /** Copies the non-empty parts into {@code out} from {@code pos}, comma-separated; returns where they end. */
    private static int join(byte[] out, int pos, byte[][] parts) {
        boolean first = true;
        for (byte[] p : parts) {
            if (p.length == 0) continue;
            if (!first) out[pos++] = ',';
            first = false;
            System.arraycopy(p, 0, out, pos, p.length);
            pos += p.length;
        }
        return pos;
    }

    /**
     * {@code prefix + value + "}: for the chain's own values (a hex hash, a formatted time),
     * which hold nothing that canonical JSON escapes — checked, since a wrong line would
     * break the chain for every verifier.
     */
    private static byte[] quoted(byte[] prefix, String value) {
        byte[] out = new byte[prefix.length + value.length() + 1];
        System.arraycopy(prefix, 0, out, 0, prefix.length);
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
                throw new IllegalArgumentException("a chain value must be printable ASCII without escapes: " + value);
            }
            out[prefix.length + i] = (byte) c;
        }
        out[out.length - 1] = '"';
        return out;
    }

    private static byte[] utf8(StringBuilder sb) {
        if (sb.isEmpty()) return EMPTY;
        byte[] b = sb.toString().getBytes(StandardCharsets.UTF_8);
        sb.setLength(0);
        return b;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
