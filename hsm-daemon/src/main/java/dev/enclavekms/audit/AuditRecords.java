package dev.enclavekms.audit;

import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The format of the audit log (docs/audit.md): field names, record types, how a record's
 * hash and a checkpoint's signed bytes are computed, and how log files are named. Shared by
 * the writer ({@link AuditLog}) and the verifier ({@link AuditVerifier}), so the two cannot
 * disagree.
 */
public final class AuditRecords {
    /** Format version, in every record as {@value #VERSION_FIELD}. */
    public static final long FORMAT_VERSION = 1;

    public static final String VERSION_FIELD = "v";
    public static final String SEQ = "seq";
    public static final String TIME = "time";
    public static final String TYPE = "type";
    public static final String PREV = "prev";
    public static final String HASH = "hash";
    public static final String SIGNATURE = "signature";

    /** Record types. */
    public static final String TYPE_CALL = "call";
    public static final String TYPE_START = "start";
    public static final String TYPE_CHECKPOINT = "checkpoint";
    public static final String TYPE_RESUMED = "resumed";
    /** A session ended by the daemon (expiry), not by a call: docs/sessions.md. */
    public static final String TYPE_SESSION = "session";
    /** Something the lifecycle sweep did by itself (automatic rotation, destruction, orphan removal). */
    public static final String TYPE_LIFECYCLE = "lifecycle";

    /** Checkpoint fields. */
    public static final String CHECKPOINT_REASON = "reason";
    public static final String CHECKPOINT_HEAD_SEQ = "head_seq";
    public static final String CHECKPOINT_KEY = "key";
    public static final String CHECKPOINT_KEY_VERSION = "key_version";
    public static final String CHECKPOINT_KEY_ID = "key_id";
    public static final String CHECKPOINT_ALGORITHM = "algorithm";
    /** The reason of the checkpoint a daemon writes as it stops: nothing follows it in that run. */
    public static final String REASON_STOP = "stop";

    /** Fields only the log itself sets; a caller's record must not carry them. */
    static final Set<String> RESERVED = Set.of(VERSION_FIELD, SEQ, TIME, PREV, HASH);

    /** What {@code prev} of the very first record names: no record, 64 zeros. */
    public static final String GENESIS = "0".repeat(64);

    /** Longest record line (bytes): records are small; this bounds what one call can write. */
    public static final int MAX_LINE_BYTES = 64 * 1024;

    private static final Pattern FILE_NAME = Pattern.compile("audit-(\\d{20})\\.jsonl");
    private static final Pattern HEX64 = Pattern.compile("[0-9a-f]{64}");

    private AuditRecords() {
    }

    /**
     * Hex SHA-256 of the canonical encoding of {@code record} without its {@code hash}
     * field: what {@code hash} must say, and what the next record's {@code prev} names.
     */
    public static String hash(Map<String, Object> record) {
        Map<String, Object> without = new LinkedHashMap<>(record);
        without.remove(HASH);
        return HexFormat.of().formatHex(sha256(CanonicalJson.bytes(without)));
    }

    /** The bytes a checkpoint's signature covers: the canonical record without hash and signature. */
    public static byte[] signedBytes(Map<String, Object> checkpoint) {
        Map<String, Object> without = new LinkedHashMap<>(checkpoint);
        without.remove(HASH);
        without.remove(SIGNATURE);
        return CanonicalJson.bytes(without);
    }

    /** Cloned per use: cheaper than a provider lookup per record (every call writes one). */
    private static final MessageDigest SHA256 = sha256Prototype();

    private static MessageDigest sha256Prototype() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    public static byte[] sha256(byte[] data) {
        return newSha256().digest(data);
    }

    /** A fresh SHA-256 digest. */
    static MessageDigest newSha256() {
        try {
            return (MessageDigest) SHA256.clone();
        } catch (CloneNotSupportedException e) {
            return sha256Prototype(); // a provider whose digests cannot be cloned
        }
    }

    static boolean isHash(Object o) {
        return o instanceof String s && HEX64.matcher(s).matches();
    }

    /** RFC 3339 UTC with microseconds: fixed width, so that times sort as text. */
    public static String time(Instant t) {
        long second = t.getEpochSecond();
        Second s = lastSecond;
        if (s == null || s.epochSecond() != second) {
            s = new Second(second, SECOND_FORMAT.format(Instant.ofEpochSecond(second)));
            lastSecond = s;
        }
        int micros = t.getNano() / 1000;
        char[] fraction = {'.', '0', '0', '0', '0', '0', '0', 'Z'};
        for (int i = 6; micros > 0; i--, micros /= 10) {
            fraction[i] = (char) ('0' + micros % 10);
        }
        return s.text().concat(new String(fraction));
    }

    /**
     * A record's time to the second, formatted once per second: every call's record has a
     * time, and the formatter works out every field of it each time (CanonicalFieldsTest
     * holds the result to the formatter's).
     */
    private record Second(long epochSecond, String text) {
    }

    private static volatile Second lastSecond;

    private static final java.time.format.DateTimeFormatter SECOND_FORMAT = java.time.format.DateTimeFormatter
            .ofPattern("uuuu-MM-dd'T'HH:mm:ss").withZone(java.time.ZoneOffset.UTC);

    /** The file whose first record has {@code firstSeq}: {@code audit-<20 digits>.jsonl}, sorting by name. */
    public static String fileName(long firstSeq) {
        return String.format("audit-%020d.jsonl", firstSeq);
    }

    /** The first seq a log file's name says it starts with. */
    public static Optional<Long> firstSeqOf(Path file) {
        Matcher m = FILE_NAME.matcher(file.getFileName().toString());
        if (!m.matches()) return Optional.empty();
        try {
            return Optional.of(Long.parseLong(m.group(1)));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }
}
