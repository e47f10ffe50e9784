package dev.enclavekms.varlink;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FrameReaderTest {

    /** Hands out exactly the given chunks, one per read call, as a socket might. */
    private static final class ChunkedStream extends InputStream {
        private final Deque<byte[]> chunks = new ArrayDeque<>();
        int reads;

        ChunkedStream(byte[]... chunks) {
            this.chunks.addAll(Arrays.asList(chunks));
        }

        @Override
        public int read() {
            throw new UnsupportedOperationException("FrameReader reads in bulk");
        }

        @Override
        public int read(byte[] b, int off, int len) {
            reads++;
            byte[] c = chunks.peekFirst();
            if (c == null) {
                return -1;
            }
            int n = Math.min(len, c.length);
            System.arraycopy(c, 0, b, off, n);
            chunks.removeFirst();
            if (n < c.length) {
                chunks.addFirst(Arrays.copyOfRange(c, n, c.length));
            }
            return n;
        }
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }

    private static String text(FrameReader.Frame f) {
        return assertInstanceOf(FrameReader.Frame.Text.class, f).json();
    }

    @Test
    void oneMessage_readWhole_thenCleanEof() throws IOException {
        FrameReader r = new FrameReader(new ChunkedStream(FrameReader.encode("{\"a\":1}")), 1024);
        assertEquals("{\"a\":1}", text(r.next()));
        assertNull(r.next());
        assertNull(r.next(), "EOF stays EOF");
    }

    @Test
    void emptyStream_cleanEof() throws IOException {
        assertNull(new FrameReader(new ChunkedStream(), 1024).next());
    }

    @Test
    void messageSplitAcrossReads_reassembled() throws IOException {
        byte[] framed = FrameReader.encode("{\"method\":\"a.B\",\"parameters\":{\"x\":\"é中\uD834\uDD1E\"}}");
        byte[][] singleBytes = new byte[framed.length][];
        for (int i = 0; i < framed.length; i++) {
            singleBytes[i] = new byte[] {framed[i]};
        }
        ChunkedStream in = new ChunkedStream(singleBytes);
        FrameReader r = new FrameReader(in, 1024);
        assertEquals("{\"method\":\"a.B\",\"parameters\":{\"x\":\"é中\uD834\uDD1E\"}}", text(r.next()));
        assertEquals(framed.length, in.reads, "a multi-byte character split between reads is still decoded");
        assertNull(r.next());
    }

    @Test
    void nulArrivingAloneInLaterRead_endsTheMessage() throws IOException {
        FrameReader r = new FrameReader(new ChunkedStream(utf8("{\"a\""), utf8(":1}"), new byte[] {0}), 1024);
        assertEquals("{\"a\":1}", text(r.next()));
    }

    @Test
    void severalMessagesInOneRead_allReturnedInOrder() throws IOException {
        byte[] all = concat(FrameReader.encode("1"), FrameReader.encode("\"two\""), FrameReader.encode("[3]"),
                utf8("{\"four\""));
        ChunkedStream in = new ChunkedStream(all, utf8(":4}\0"));
        FrameReader r = new FrameReader(in, 1024);
        assertEquals("1", text(r.next()));
        assertEquals("\"two\"", text(r.next()));
        assertEquals("[3]", text(r.next()));
        assertEquals(1, in.reads, "three messages from a single read");
        assertEquals("{\"four\":4}", text(r.next()));
        assertNull(r.next());
    }

    @Test
    void emptyMessage_returnedAsEmptyText() throws IOException {
        FrameReader r = new FrameReader(new ChunkedStream(new byte[] {0, 0}), 1024);
        assertEquals("", text(r.next()));
        assertEquals("", text(r.next()));
        assertNull(r.next());
    }

    @Test
    void messageOfExactlyTheLimit_accepted_oneMoreByte_tooLarge() throws IOException {
        String atLimit = "\"" + "a".repeat(1022) + "\"";
        String overLimit = "\"" + "a".repeat(1023) + "\"";
        FrameReader r = new FrameReader(new ChunkedStream(FrameReader.encode(atLimit), FrameReader.encode(overLimit)), 1024);
        assertEquals(atLimit, text(r.next()));
        assertEquals(1025, assertInstanceOf(FrameReader.Frame.TooLarge.class, r.next()).bytes());
    }

    @Test
    void oversizedMessage_discardedUpToItsNul_nextMessageStillRead() throws IOException {
        byte[] big = new byte[100_000];
        Arrays.fill(big, (byte) 'x');
        // The oversized message spans many reads, and the next message shares its last read.
        ChunkedStream in = new ChunkedStream(Arrays.copyOfRange(big, 0, 40_000), Arrays.copyOfRange(big, 40_000, 100_000),
                concat(new byte[] {0}, FrameReader.encode("{\"next\":true}")));
        FrameReader r = new FrameReader(in, 4096);
        assertEquals(100_000, assertInstanceOf(FrameReader.Frame.TooLarge.class, r.next()).bytes());
        assertEquals("{\"next\":true}", text(r.next()));
        assertNull(r.next());
    }

    @Test
    void oversizedMessage_afterNormalOnes_inSameRead_discardedAlone() throws IOException {
        byte[] big = new byte[5000];
        Arrays.fill(big, (byte) ' ');
        byte[] all = concat(FrameReader.encode("1"), big, new byte[] {0}, FrameReader.encode("2"));
        FrameReader r = new FrameReader(new ChunkedStream(all), 1024);
        assertEquals("1", text(r.next()));
        assertInstanceOf(FrameReader.Frame.TooLarge.class, r.next());
        assertEquals("2", text(r.next()));
    }

    @Test
    void invalidUtf8_reportedAsBadEncoding_nextMessageStillRead() throws IOException {
        byte[][] invalid = {
                {(byte) 0xff},                                  // never valid
                {(byte) 0xc3},                                  // truncated two-byte sequence
                {(byte) 0xc0, (byte) 0xaf},                     // overlong '/'
                {(byte) 0xe0, (byte) 0x80, (byte) 0xaf},        // overlong three-byte
                {(byte) 0xed, (byte) 0xa0, (byte) 0x80},        // UTF-8-encoded surrogate (CESU-8)
                {(byte) 0xf4, (byte) 0x90, (byte) 0x80, (byte) 0x80}, // beyond U+10FFFF
                {(byte) 0x80},                                  // lone continuation byte
        };
        for (byte[] bad : invalid) {
            byte[] stream = concat(utf8("\"a"), bad, utf8("b\""), new byte[] {0}, FrameReader.encode("\"ok\""));
            FrameReader r = new FrameReader(new ChunkedStream(stream), 1024);
            assertInstanceOf(FrameReader.Frame.BadEncoding.class, r.next(), () -> Arrays.toString(bad));
            assertEquals("\"ok\"", text(r.next()));
        }
    }

    @Test
    void aRealReplacementCharacter_isText_andBadBytesBesideOne_stillBadEncoding() throws IOException {
        // The fast decoder turns invalid bytes into U+FFFD; a U+FFFD the client sent is kept.
        byte[] stream = concat(FrameReader.encode("\"a\uFFFDb\""), utf8("\"\uFFFD"), new byte[] {(byte) 0xff, 0});
        FrameReader r = new FrameReader(new ChunkedStream(stream), 1024);
        assertEquals("\"a\uFFFDb\"", text(r.next()));
        assertInstanceOf(FrameReader.Frame.BadEncoding.class, r.next());
    }

    @Test
    void eofInTheMiddleOfAMessage_eofException() throws IOException {
        FrameReader r = new FrameReader(new ChunkedStream(FrameReader.encode("1"), utf8("{\"half\":")), 1024);
        assertEquals("1", text(r.next()));
        EOFException e = assertThrows(EOFException.class, r::next);
        assertTrue(e.getMessage().contains("no NUL terminator"), e.getMessage());
    }

    @Test
    void eofWhileDiscardingOversizedMessage_eofException() {
        byte[] filler = new byte[5000];
        Arrays.fill(filler, (byte) 'x');
        FrameReader r = new FrameReader(new ChunkedStream(filler), 1024);
        assertThrows(EOFException.class, r::next);
    }

    @Test
    void bigMessage_bufferGrowsThenShrinks_laterMessagesUnaffected() throws IOException {
        String big = "\"" + "é".repeat(200_000) + "\"";
        FrameReader r = new FrameReader(new ChunkedStream(FrameReader.encode(big), FrameReader.encode("\"small\"")),
                1024 * 1024);
        assertEquals(big, text(r.next()));
        assertEquals("\"small\"", text(r.next()));
    }

    @Test
    void encode_appendsOneNul() {
        assertArrayEquals(new byte[] {'{', '}', 0}, FrameReader.encode("{}"));
        assertArrayEquals(new byte[] {(byte) 0xc3, (byte) 0xa9, 0}, FrameReader.encode("é"));
    }

    @Test
    void smallIdleChunk_longMessageReadInLargerReads_thenPipelinedMessagesIntact() throws IOException {
        String big = "x".repeat(200_000);
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        all.writeBytes(FrameReader.encode("{\"a\":1}"));
        all.writeBytes(FrameReader.encode("\"" + big + "\""));
        all.writeBytes(FrameReader.encode("{\"b\":2}"));
        all.writeBytes(FrameReader.encode("{\"c\":3}"));
        ChunkedStream in = new ChunkedStream(all.toByteArray());
        FrameReader r = new FrameReader(in, 1 << 20, FrameReader.Budget.UNLIMITED, 64);

        assertEquals(new FrameReader.Frame.Text("{\"a\":1}"), r.next());
        assertEquals(new FrameReader.Frame.Text("\"" + big + "\""), r.next());
        assertEquals(new FrameReader.Frame.Text("{\"b\":2}"), r.next());
        assertEquals(new FrameReader.Frame.Text("{\"c\":3}"), r.next());
        assertNull(r.next());
        // 200 KB in 64-byte reads would take over 3,000; with the larger chunk for a long message, a few dozen.
        assertTrue(in.reads < 100, in.reads + " reads");
    }

    @Test
    void nulScan_eightBytesAtATime_findsTheFirstNul_asAByteLoopDoes() {
        // Bytes around zero (0x01 after a NUL borrows into the next byte), high bytes, plain ASCII.
        byte[] alphabet = {0, 0, 1, 1, (byte) 0x80, (byte) 0x81, (byte) 0xFF, (byte) 0xFE, 'a', '"', 0x7F};
        java.util.Random random = new java.util.Random(5);
        for (int round = 0; round < 20_000; round++) {
            byte[] b = new byte[random.nextInt(40)];
            boolean sparse = random.nextBoolean(); // few NULs: the first one far in
            for (int i = 0; i < b.length; i++) {
                b[i] = sparse && random.nextInt(20) != 0 ? (byte) ('A' + random.nextInt(26)) : alphabet[random.nextInt(alphabet.length)];
            }
            int from = b.length == 0 ? 0 : random.nextInt(b.length + 1);
            int to = from + random.nextInt(b.length - from + 1);
            int expected = -1;
            for (int i = from; i < to; i++) {
                if (b[i] == 0) {
                    expected = i;
                    break;
                }
            }
            assertEquals(expected, FrameReader.indexOfNul(b, from, to), () -> Arrays.toString(b) + " from " + from + " to " + to);
        }
    }
}
