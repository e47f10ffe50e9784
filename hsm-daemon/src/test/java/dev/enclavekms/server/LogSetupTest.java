package dev.enclavekms.server;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

class LogSetupTest {
    @Test
    void escape_controlCharacters_cannotForgeALine() {
        assertEquals("x.Y\\n<3>KeyAdmin: created key stolen", LogSetup.escape("x.Y\n<3>KeyAdmin: created key stolen"));
        assertEquals("a\\rb\\tc\\x00d\\x1b[31m\\x7f", LogSetup.escape("a\rb\tc\u0000d\u001b[31m\u007f"));
        String plain = "nothing to escape: ünïcode is fine";
        assertSame(plain, LogSetup.escape(plain));
    }
}
