package dev.enclavekms.manifest;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Manifest format 1: the exact bytes, escaping, ordering, and everything the parser refuses. */
class ManifestFormatTest {
    static final String HEADER = """
            # enclave-kms manifest 1
            # key: release/signing
            # version: 3
            # algorithm: EC_P256_SHA256
            # created: 2026-11-22T14:03:07Z
            """;

    static byte[] sha(int fill) {
        byte[] b = new byte[32];
        Arrays.fill(b, (byte) fill);
        return b;
    }

    static String hex(int fill) {
        return String.format("%02x", fill).repeat(32);
    }

    static Manifest manifest(List<Manifest.Entry> entries) {
        return new Manifest("release/signing", 3, "EC_P256_SHA256", Instant.parse("2026-11-22T14:03:07.900Z"), 1234,
                entries);
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void write_givesTheDocumentedBytes_andParseGivesThemBack() throws Exception {
        Manifest m = manifest(List.of(new Manifest.Entry("README", sha(0xab)),
                new Manifest.Entry("a b/c.txt", sha(0x01)), new Manifest.Entry("z", sha(0xff))));
        String expected = HEADER + "# files: 3\n# bytes: 1234\n"
                + hex(0xab) + "  README\n" + hex(0x01) + "  a b/c.txt\n" + hex(0xff) + "  z\n";
        byte[] written = ManifestFormat.write(m);
        assertEquals(expected, new String(written, StandardCharsets.UTF_8));
        Manifest back = ManifestFormat.parse(written);
        assertEquals("release/signing", back.key());
        assertEquals(3, back.version());
        assertEquals(Instant.parse("2026-11-22T14:03:07Z"), back.created(), "whole seconds");
        assertEquals(1234, back.bytes());
        assertEquals(List.of("README", "a b/c.txt", "z"), back.entries().stream().map(Manifest.Entry::path).toList());
        assertArrayEquals(sha(0x01), back.entries().get(1).sha256());
        assertArrayEquals(written, ManifestFormat.write(back));
    }

    @Test
    void emptyTree_isAHeaderOnly() throws Exception {
        byte[] written = ManifestFormat.write(manifest(List.of()));
        assertEquals(HEADER + "# files: 0\n# bytes: 1234\n", new String(written, StandardCharsets.UTF_8));
        assertEquals(0, ManifestFormat.parse(written).entries().size());
    }

    @Test
    void pathsWithBackslashNewlineOrCarriageReturn_areEscapedAsSha256sumDoes() throws Exception {
        Manifest m = manifest(List.of(new Manifest.Entry("a\\b", sha(1)), new Manifest.Entry("c\rd", sha(2)),
                new Manifest.Entry("e\nf", sha(3)), new Manifest.Entry("tab\there", sha(4))));
        String text = new String(ManifestFormat.write(m), StandardCharsets.UTF_8);
        assertTrue(text.endsWith("\\" + hex(1) + "  a\\\\b\n\\" + hex(2) + "  c\\rd\n\\" + hex(3) + "  e\\nf\n"
                + hex(4) + "  tab\there\n"), text);
        assertEquals(List.of("a\\b", "c\rd", "e\nf", "tab\there"),
                ManifestFormat.parse(bytes(text)).entries().stream().map(Manifest.Entry::path).toList());
    }

    @Test
    void order_isByUtf8Bytes_notByJavaStrings() throws Exception {
        // UTF-16 puts the surrogate pair of U+1F600 (D83D ...) before U+FF5E; UTF-8 puts U+FF5E (EF ...) first (F0 ...).
        String bmp = "\uFF5E";
        String astral = "\uD83D\uDE00";
        assertTrue(astral.compareTo(bmp) < 0, "Java orders the surrogate pair first");
        assertTrue(ManifestPaths.ORDER.compare(bmp, astral) < 0, "UTF-8 bytes order U+FF5E first");
        byte[] written = ManifestFormat.write(manifest(List.of(new Manifest.Entry(bmp, sha(1)),
                new Manifest.Entry(astral, sha(2)))));
        assertEquals(2, ManifestFormat.parse(written).entries().size());
        assertThrows(IllegalArgumentException.class, () -> ManifestFormat.write(manifest(List.of(
                new Manifest.Entry(astral, sha(2)), new Manifest.Entry(bmp, sha(1))))));
    }

    @Test
    void writer_refusesPathsThatCouldLeaveTheTree() {
        for (String bad : List.of("", "/abs", "a/", "a//b", "./a", "a/../b", "..", "a\0b", "\uD800")) {
            assertThrows(IllegalArgumentException.class,
                    () -> ManifestFormat.write(manifest(List.of(new Manifest.Entry(bad, sha(1))))), bad);
        }
    }

    @Test
    void paths_ofAtMost4096Bytes() throws Exception {
        String longest = "a/".repeat(2047) + "bc"; // 4096 bytes
        byte[] ok = ManifestFormat.write(manifest(List.of(new Manifest.Entry(longest, sha(1)))));
        assertEquals(longest, ManifestFormat.parse(ok).entries().getFirst().path());
        assertThrows(IllegalArgumentException.class, () -> ManifestFormat.write(manifest(List.of(
                new Manifest.Entry(longest + "d", sha(1))))));
        refused(HEADER + "# files: 1\n# bytes: 1234\n" + hex(1) + "  " + longest + "d\n", "longer than 4096 bytes");
    }

    static void refused(String text, String why) {
        MalformedManifestException e = assertThrows(MalformedManifestException.class,
                () -> ManifestFormat.parse(bytes(text)), text);
        assertTrue(e.getMessage().contains(why), e.getMessage());
    }

    @Test
    void parser_refusesEveryNonCanonicalForm() {
        String head = HEADER + "# files: 1\n# bytes: 5\n";
        String line = hex(0xab) + "  a\n";
        refused("", "line 1");
        refused("# enclave-kms manifest 2\n", "line 1");
        refused(head + line.strip(), "line feed");
        refused(head.replace("# key: ", "#  key: ") + line, "line 2");
        refused(head.replace("release/signing", "../x") + line, "key name");
        refused(head.replace("version: 3", "version: 03") + line, "decimal");
        refused(head.replace("version: 3", "version: 0") + line, "out of range");
        refused(head.replace("version: 3", "version: 2147483648") + line, "out of range");
        refused(head.replace("EC_P256_SHA256", "DSA") + line, "algorithm");
        refused(head.replace("14:03:07Z", "14:03:07.5Z") + line, "created");
        refused(head.replace("2026-11-22", "2026-02-30") + line, "created");
        refused(head.replace("bytes: 5", "bytes: 99999999999999999999") + line, "bytes");
        refused(head.replace("files: 1", "files: 2") + line, "says 2 files");
        refused(head + line.toUpperCase().replace("  A", "  a"), "64 lowercase hex");
        refused(head + hex(0xab) + " *a\n", "64 lowercase hex");
        refused(head + hex(0xab) + "  \n", "64 lowercase hex");
        refused(head + hex(0xab) + "  a\r\n", "escaped");
        refused(head + hex(0xab) + "  a\\b\n", "escaped");
        refused(head + "\\" + hex(0xab) + "  ab\n", "needs no escape");
        refused(head + "\\" + hex(0xab) + "  a\\tb\n", "unknown escape");
        refused(head + "\\" + hex(0xab) + "  ab\\\n", "at the end");
        refused(head + hex(0xab) + "  ../etc/passwd\n", "'..'");
        refused(head + hex(0xab) + "  /etc/passwd\n", "empty component");
        refused(head.replace("files: 1", "files: 2") + line + line, "strictly increasing");
        refused(head.replace("files: 1", "files: 2") + hex(1) + "  b\n" + line, "strictly increasing");
        refused(head + "# comment\n", "64 lowercase hex");
    }

    @Test
    void parser_refusesInvalidUtf8_andInputsOverTheLimit() {
        byte[] bad = bytes(HEADER + "# files: 1\n# bytes: 5\n" + hex(1) + "  a?\n");
        bad[bad.length - 2] = (byte) 0xff;
        MalformedManifestException e = assertThrows(MalformedManifestException.class, () -> ManifestFormat.parse(bad));
        assertTrue(e.getMessage().contains("UTF-8"), e.getMessage());
        byte[] huge = new byte[ManifestFormat.MAX_BYTES + 1];
        e = assertThrows(MalformedManifestException.class, () -> ManifestFormat.parse(huge));
        assertTrue(e.getMessage().contains("larger than"), e.getMessage());
    }

    @Test
    void signatureDigest_matchesTheAlgorithm() {
        byte[] body = bytes("x");
        assertEquals(32, ManifestSignatures.digest("EC_P256_SHA256", body).length);
        assertEquals(48, ManifestSignatures.digest("EC_P384_SHA384", body).length);
        assertEquals(32, ManifestSignatures.digest("RSA_3072_PSS_SHA256", body).length);
        assertEquals(null, ManifestSignatures.digest("ED25519", body));
    }
}
