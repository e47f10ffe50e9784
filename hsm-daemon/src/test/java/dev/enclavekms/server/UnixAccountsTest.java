package dev.enclavekms.server;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** uid and gid behind SO_PEERCRED's names, through the C library. */
class UnixAccountsTest {
    @Test
    void knownNames_resolveToTheirNumbers() {
        assertEquals(0L, UnixAccounts.uid("root"));
        assertEquals(0L, UnixAccounts.gid("root"));
    }

    @Test
    void numericNames_areTheirNumber_unknownAndUnidentified_areNull() {
        assertEquals(4000000000L, UnixAccounts.uid("4000000000"));
        assertNull(UnixAccounts.uid("no-such-user-ekms"));
        assertNull(UnixAccounts.gid("no-such-group-ekms"));
        assertNull(UnixAccounts.uid("?"));
        assertNull(UnixAccounts.uid(null));
    }
}
