package dev.enclavekms.format;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * The caller's encryption context (e.g. {@code model=llama-3-8b, tier=hot}): a map of
 * strings bound to a ciphertext as additional authenticated data, like AWS KMS's
 * encryption context. It is not secret and not stored in the ciphertext; decryption
 * must present the same map.
 *
 * <p>Canonical encoding (docs/formats.md): {@code u16 count}, then for each entry in
 * ascending order of the key's UTF-8 bytes (unsigned): {@code u16 len, key bytes,
 * u16 len, value bytes}, all lengths big-endian. The order the caller sent the map in
 * therefore never matters.
 */
public final class EncryptionContext {
    public static final int MAX_ENTRIES = 64;
    public static final int MAX_LENGTH = 1024;
    public static final EncryptionContext EMPTY = new EncryptionContext(Map.of());

    private final TreeMap<String, String> entries;

    private EncryptionContext(Map<String, String> entries) {
        this.entries = new TreeMap<>(EncryptionContext::compareUtf8);
        this.entries.putAll(entries);
    }

    /** @throws IllegalArgumentException when the map exceeds the limits or has an empty key */
    public static EncryptionContext of(Map<String, String> entries) {
        if (entries == null || entries.isEmpty()) {
            return EMPTY;
        }
        if (entries.size() > MAX_ENTRIES) {
            throw new IllegalArgumentException("context has more than " + MAX_ENTRIES + " entries");
        }
        for (Map.Entry<String, String> e : entries.entrySet()) {
            if (e.getKey().isEmpty()) {
                throw new IllegalArgumentException("context keys must not be empty");
            }
            if (utf8Length(e.getKey()) > MAX_LENGTH || utf8Length(e.getValue()) > MAX_LENGTH) {
                throw new IllegalArgumentException("context entries are limited to " + MAX_LENGTH + " bytes");
            }
        }
        return new EncryptionContext(entries);
    }

    public Map<String, String> entries() {
        return Collections.unmodifiableMap(entries);
    }

    public boolean containsKey(String key) {
        return entries.containsKey(key);
    }

    public byte[] canonicalEncoding() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(16 + entries.size() * 32);
        writeU16(out, entries.size());
        for (Map.Entry<String, String> e : entries.entrySet()) {
            writeField(out, e.getKey());
            writeField(out, e.getValue());
        }
        return out.toByteArray();
    }

    private static void writeField(ByteArrayOutputStream out, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        writeU16(out, b.length);
        out.write(b, 0, b.length);
    }

    private static void writeU16(ByteArrayOutputStream out, int v) {
        out.write(v >>> 8);
        out.write(v);
    }

    private static int utf8Length(String s) {
        return s.getBytes(StandardCharsets.UTF_8).length;
    }

    private static int compareUtf8(String a, String b) {
        return Arrays.compareUnsigned(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof EncryptionContext other && entries.equals(other.entries);
    }

    @Override
    public int hashCode() {
        return entries.hashCode();
    }

    @Override
    public String toString() {
        return entries.toString();
    }
}
