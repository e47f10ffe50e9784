package dev.enclavekms.applet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.OwnerPIN;

/**
 * The owner PIN (guards every key command) and the admin PIN (resets the owner PIN), both
 * set once by PERSONALISE. A wrong PIN answers {@code 63Cx} with the tries left; at zero
 * the PIN is blocked ({@code 6983}).
 */
final class Pins implements Constants {

    final OwnerPIN pin = new OwnerPIN(PIN_TRIES, PIN_MAX);
    final OwnerPIN admin = new OwnerPIN(ADMIN_PIN_TRIES, PIN_MAX);
    private boolean personalised;

    boolean personalised() {
        return personalised;
    }

    /** Sets both PINs, once. Data: len ‖ PIN ‖ len ‖ admin PIN. */
    void personalise(byte[] buf, short offset, short length) {
        if (personalised) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        short end = (short) (offset + length);
        short pinLength = checkedLength(buf, offset, end, PIN_MIN);
        short adminOffset = (short) (offset + 1 + pinLength);
        short adminLength = checkedLength(buf, adminOffset, end, ADMIN_PIN_MIN);
        if ((short) (adminOffset + 1 + adminLength) != end) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        JCSystem.beginTransaction();
        pin.update(buf, (short) (offset + 1), (byte) pinLength);
        admin.update(buf, (short) (adminOffset + 1), (byte) adminLength);
        personalised = true;
        JCSystem.commitTransaction();
    }

    /** VERIFY: empty data asks for the tries left (9000 when already verified). */
    void verify(byte[] buf, short offset, short length) {
        requirePersonalised();
        if (length == 0) {
            if (!pin.isValidated()) {
                throwTriesLeft(pin);
            }
            return;
        }
        check(pin, buf, offset, length);
    }

    /** CHANGE REFERENCE DATA: len ‖ old ‖ len ‖ new, for the PIN or the admin PIN. */
    void change(boolean adminPin, byte[] buf, short offset, short length) {
        requirePersonalised();
        OwnerPIN target = adminPin ? admin : pin;
        short end = (short) (offset + length);
        short oldLength = checkedLength(buf, offset, end, (byte) 1);
        short newOffset = (short) (offset + 1 + oldLength);
        short newLength = checkedLength(buf, newOffset, end, adminPin ? ADMIN_PIN_MIN : PIN_MIN);
        if ((short) (newOffset + 1 + newLength) != end) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        check(target, buf, (short) (offset + 1), oldLength);
        target.update(buf, (short) (newOffset + 1), (byte) newLength);
        if (!adminPin) {
            // update() forgot the verification; the caller just proved knowledge of the PIN.
            check(pin, buf, (short) (newOffset + 1), newLength);
        }
    }

    /** RESET RETRY COUNTER: len ‖ admin PIN ‖ len ‖ new PIN; unblocks the PIN. */
    void reset(byte[] buf, short offset, short length) {
        requirePersonalised();
        short end = (short) (offset + length);
        short adminLength = checkedLength(buf, offset, end, (byte) 1);
        short newOffset = (short) (offset + 1 + adminLength);
        short newLength = checkedLength(buf, newOffset, end, PIN_MIN);
        if ((short) (newOffset + 1 + newLength) != end) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        check(admin, buf, (short) (offset + 1), adminLength);
        pin.update(buf, (short) (newOffset + 1), (byte) newLength);
        admin.reset();
    }

    void requirePersonalised() {
        if (!personalised) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
    }

    /** Every key command's guard. */
    void requireVerified() {
        requirePersonalised();
        if (!pin.isValidated()) {
            ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
    }

    /** Forgets both verifications (new channel, select, deselect). */
    void forget() {
        pin.reset();
        admin.reset();
    }

    private static void check(OwnerPIN p, byte[] buf, short offset, short length) {
        if (p.getTriesRemaining() == 0) {
            ISOException.throwIt(SW_PIN_BLOCKED);
        }
        if (length > PIN_MAX || !p.check(buf, offset, (byte) length)) {
            throwTriesLeft(p);
        }
    }

    private static void throwTriesLeft(OwnerPIN p) {
        byte left = p.getTriesRemaining();
        ISOException.throwIt(left == 0 ? SW_PIN_BLOCKED : (short) (SW_PIN_TRIES_LEFT | left));
    }

    /** The length byte at {@code at}, checked against the minimum, PIN_MAX and the data's end. */
    private static short checkedLength(byte[] buf, short at, short end, byte min) {
        if (at >= end) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        short n = buf[at];
        if (n < min || n > PIN_MAX || (short) (at + 1 + n) > end) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        return n;
    }
}
