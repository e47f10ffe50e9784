package dev.enclavekms.system;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;

/**
 * The smallest applet with persistent memory, for tests of the PC/SC fixture itself: INS
 * 0x01 adds one to a counter kept in EEPROM and returns it (2 bytes), so a test can tell a
 * card that kept its memory across removal from a fresh one.
 */
public final class CounterApplet extends Applet {
    private short counter;

    public static void install(byte[] data, short offset, byte length) {
        new CounterApplet().register();
    }

    @Override
    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        if (buf[ISO7816.OFFSET_INS] != 0x01) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
        counter++;
        Util.setShort(buf, (short) 0, counter);
        apdu.setOutgoingAndSend((short) 0, (short) 2);
    }
}
