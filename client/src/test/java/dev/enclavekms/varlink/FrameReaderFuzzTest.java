package dev.enclavekms.varlink;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import dev.enclavekms.json.Json;
import dev.enclavekms.json.JsonException;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Fuzzes {@link FrameReader} with arbitrary byte streams delivered in arbitrary read
 * sizes, then hands every text frame to {@link Json}. The frames must be exactly what
 * a plain split at NUL bytes gives; see docs/fuzzing.md.
 *
 * <p>Input layout (FuzzedDataProvider takes numbers from the end): the stream first,
 * then the message limit and the read-size pattern in the last bytes.
 */
class FrameReaderFuzzTest {

    /** Hands out the stream in reads of varying size, as a socket might. */
    private static final class ChoppyStream extends InputStream {
        private final byte[] bytes;
        private final int step;
        private int pos;
        private int reads;

        ChoppyStream(byte[] bytes, int step) {
            this.bytes = bytes;
            this.step = step;
        }

        @Override
        public int read() {
            return pos < bytes.length ? bytes[pos++] & 0xff : -1;
        }

        @Override
        public int read(byte[] b, int off, int len) {
            if (pos >= bytes.length) {
                return -1;
            }
            int size = 1 + (reads++ * step) % 97;
            int n = Math.min(Math.min(len, size), bytes.length - pos);
            System.arraycopy(bytes, pos, b, off, n);
            pos += n;
            return n;
        }
    }

    @FuzzTest(maxDuration = "60s")
    void frames_matchAPlainSplitAtNul_andJsonReturnsOrThrowsJsonException(FuzzedDataProvider data) throws IOException {
        int maxMessageBytes = data.consumeInt(1, 300);
        int step = data.consumeInt(1, 64);
        byte[] stream = data.consumeRemainingAsBytes();

        FrameReader reader = new FrameReader(new ChoppyStream(stream, step), maxMessageBytes);
        List<FrameReader.Frame> want = expectedFrames(stream, maxMessageBytes);
        boolean endsInsideMessage = stream.length > 0 && stream[stream.length - 1] != 0;
        for (FrameReader.Frame expected : want) {
            FrameReader.Frame got = reader.next();
            assertEquals(expected, got);
            if (got instanceof FrameReader.Frame.Text t) {
                try {
                    Object v = Json.parse(t.json());
                    assertEquals(v, Json.parse(Json.write(v)));
                } catch (JsonException rejected) {
                    // fine: malformed JSON is the caller's problem, reported as such
                }
            }
        }
        if (endsInsideMessage) {
            try {
                reader.next();
                throw new AssertionError("no EOFException for a stream ending inside a message");
            } catch (EOFException expected) {
                // the stream ended without the last message's NUL
            }
        } else {
            assertNull(reader.next());
        }
    }

    /** The reference: split at every NUL, then classify each complete message. */
    private static List<FrameReader.Frame> expectedFrames(byte[] stream, int maxMessageBytes) {
        List<FrameReader.Frame> frames = new ArrayList<>();
        ByteArrayOutputStream message = new ByteArrayOutputStream();
        for (byte b : stream) {
            if (b != 0) {
                message.write(b);
                continue;
            }
            byte[] m = message.toByteArray();
            message.reset();
            if (m.length > maxMessageBytes) {
                frames.add(new FrameReader.Frame.TooLarge(m.length));
                continue;
            }
            try {
                String s = StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(m)).toString();
                frames.add(new FrameReader.Frame.Text(s));
            } catch (CharacterCodingException e) {
                frames.add(new FrameReader.Frame.BadEncoding());
            }
        }
        return frames;
    }
}
