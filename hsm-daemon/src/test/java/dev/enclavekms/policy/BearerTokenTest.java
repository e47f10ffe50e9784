package dev.enclavekms.policy;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BearerTokenTest {
    @Test
    void mint_formatIdAndHashFitTogether() {
        BearerToken.Minted t = BearerToken.mint();
        assertTrue(t.secret().matches("ekms_[0-9a-f]{16}_[A-Za-z0-9_-]{43}"), t.secret());
        assertEquals(t.id(), BearerToken.idOf(t.secret()));
        assertTrue(BearerToken.matches(t.hash(), t.secret()));
        assertFalse(t.toString().contains(t.secret().substring(22)), "toString must not show the secret");
    }

    @Test
    void matches_anyOtherTokenWithTheSameId_isRefused() {
        BearerToken.Minted t = BearerToken.mint();
        String forged = t.secret().substring(0, t.secret().length() - 1)
                + (t.secret().endsWith("A") ? "B" : "A");
        assertEquals(t.id(), BearerToken.idOf(forged));
        assertFalse(BearerToken.matches(t.hash(), forged));
    }

    @Test
    void idOf_malformedTokens_isNull() {
        for (String s : new String[] {null, "", "ekms_", "ekms_0123456789abcdef_short", "xkms_0123456789abcdef_"
                + "A".repeat(43), "ekms_0123456789ABCDEF_" + "A".repeat(43), "ekms_0123456789abcdef_" + "A".repeat(44)}) {
            assertNull(BearerToken.idOf(s), String.valueOf(s));
        }
    }

    @Test
    void mint_isUnique() {
        Set<String> ids = new HashSet<>();
        for (int i = 0; i < 1000; i++) assertTrue(ids.add(BearerToken.mint().id()));
    }
}
