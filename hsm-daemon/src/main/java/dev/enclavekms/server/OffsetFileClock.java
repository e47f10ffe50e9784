package dev.enclavekms.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;

/**
 * A test clock for daemon processes: the system time plus a number of seconds read
 * from a file on every use, so a test can move a running daemon's time forward (e.g.
 * past a destruction waiting period). Only {@code --dev} with {@code --test-clock-file}
 * uses it.
 */
final class OffsetFileClock extends Clock {
    private final Path file;

    OffsetFileClock(Path file) {
        this.file = file;
    }

    @Override
    public Instant instant() {
        long offset = 0;
        try {
            if (Files.exists(file)) {
                offset = Long.parseLong(Files.readString(file).trim());
            }
        } catch (IOException | NumberFormatException e) {
            // a half-written file reads as no offset; the test writes it atomically anyway
        }
        return Instant.now().plusSeconds(offset);
    }

    @Override
    public ZoneId getZone() {
        return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
        return this;
    }
}
