package dev.enclavekms.manifest;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Comparator;

/**
 * The paths a manifest holds: relative to the tree, components separated by {@code /},
 * none empty, {@code .} or {@code ..}, no NUL, valid Unicode (UTF-8 in the file), at most
 * {@link #MAX_BYTES} bytes. So a path read from a manifest can never leave the tree.
 * Ordered by their UTF-8 bytes (unsigned), which is not Java's String order.
 */
public final class ManifestPaths {
    /** Linux's PATH_MAX. */
    public static final int MAX_BYTES = 4096;

    /** By UTF-8 bytes, as the lines of a manifest are sorted. */
    public static final Comparator<String> ORDER = (a, b) -> Arrays.compareUnsigned(utf8(a), utf8(b));

    private ManifestPaths() {
    }

    /** Why {@code path} cannot be in a manifest, or null when it can. */
    public static String problem(String path) {
        if (path.isEmpty()) {
            return "empty path";
        }
        byte[] bytes;
        try {
            bytes = strictUtf8(path);
        } catch (CharacterCodingException e) {
            return "not valid Unicode";
        }
        if (bytes.length > MAX_BYTES) {
            return "longer than " + MAX_BYTES + " bytes";
        }
        if (path.indexOf('\0') >= 0) {
            return "contains NUL";
        }
        for (String component : path.split("/", -1)) {
            if (component.isEmpty()) {
                return "has an empty component (leading, trailing or double '/')";
            }
            if (component.equals(".") || component.equals("..")) {
                return "has a '" + component + "' component";
            }
        }
        return null;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] strictUtf8(String s) throws CharacterCodingException {
        ByteBuffer b = StandardCharsets.UTF_8.newEncoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT).encode(CharBuffer.wrap(s));
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }
}
