package dev.enclavekms.system;

import org.junit.jupiter.api.Test;

import javax.smartcardio.CardChannel;
import javax.smartcardio.CardException;
import javax.smartcardio.CardNotPresentException;
import javax.smartcardio.CommandAPDU;
import javax.smartcardio.ResponseAPDU;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The PC/SC fixture itself, through the JDK's SunPCSC provider: a card in the private pcscd's
 * vpcd reader answers; pulled out, the reader is empty and connecting fails; pushed back in,
 * it answers again with its persistent memory intact (a fresh card would count from one).
 */
class VirtualPcscReaderIT {
    private static final byte[] AID = HexFormat.of().parseHex("F0454B4D53000001");
    private static final CommandAPDU SELECT = new CommandAPDU(0x00, 0xA4, 0x04, 0x00, AID);
    private static final CommandAPDU COUNT = new CommandAPDU(0x80, 0x01, 0x00, 0x00, 2);

    @Test
    void card_removedAndReinserted_keepsItsMemory() throws Exception {
        VirtualPcscReader reader = VirtualPcscReader.shared();
        try (VirtualPcscReader.Card card = reader.insert(AID, CounterApplet.class, new byte[0])) {
            assertTrue(reader.terminal().isCardPresent());
            javax.smartcardio.Card connection = reader.terminal().connect("*");
            CardChannel ch = connection.getBasicChannel();
            assertEquals(0x9000, ch.transmit(SELECT).getSW());
            assertEquals(1, count(ch));
            long t0 = System.nanoTime();
            for (int i = 2; i <= 50; i++) {
                assertEquals(i, count(ch));
            }
            long perApdu = (System.nanoTime() - t0) / 49;
            System.out.println("PC/SC round trip through pcscd and vpcd: " + perApdu / 1000 + " µs per APDU");

            card.remove();
            assertTrue(!reader.terminal().isCardPresent());
            assertThrows(CardException.class, () -> ch.transmit(COUNT));
            assertThrows(CardNotPresentException.class, () -> reader.terminal().connect("*"));
            connection.disconnect(false);

            card.reinsert();
            javax.smartcardio.Card again = reader.terminal().connect("*");
            CardChannel ch2 = again.getBasicChannel();
            assertTrue(ch2.transmit(COUNT).getSW() != 0x9000, "after power-up no applet is selected");
            assertEquals(0x9000, ch2.transmit(SELECT).getSW());
            assertEquals(51, count(ch2), "the counter lives in persistent memory");
            again.disconnect(false);
        }
    }

    private static int count(CardChannel ch) throws CardException {
        ResponseAPDU r = ch.transmit(COUNT);
        assertEquals(0x9000, r.getSW());
        return ((r.getData()[0] & 0xFF) << 8) | (r.getData()[1] & 0xFF);
    }
}
