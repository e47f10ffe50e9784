package dev.enclavekms.enclave.javacard;

import javax.smartcardio.ATR;
import javax.smartcardio.Card;
import javax.smartcardio.CardChannel;
import javax.smartcardio.CardException;
import javax.smartcardio.CardTerminal;
import javax.smartcardio.CommandAPDU;
import javax.smartcardio.ResponseAPDU;
import java.nio.ByteBuffer;

/**
 * A PC/SC reader whose garbled answers are transmission failures. When a card leaves the
 * reader in the middle of an exchange, some readers (vpcd, measured) report success with an
 * empty response; the JDK's SunPCSC provider then throws {@link IllegalArgumentException}
 * ("apdu must be at least 2 bytes long") out of {@link CardChannel#transmit}, an unchecked
 * exception that a driver catching {@link CardException} would let escape as a crash. This
 * wrapper turns it into the {@link CardException} that a pulled card is, so the enclave
 * reopens once and then reports the card unavailable.
 */
final class StrictPcscTerminal extends CardTerminal {
    private final CardTerminal terminal;

    StrictPcscTerminal(CardTerminal terminal) {
        this.terminal = terminal;
    }

    @Override
    public String getName() {
        return terminal.getName();
    }

    @Override
    public Card connect(String protocol) throws CardException {
        return new StrictCard(terminal.connect(protocol));
    }

    @Override
    public boolean isCardPresent() throws CardException {
        return terminal.isCardPresent();
    }

    @Override
    public boolean waitForCardPresent(long timeout) throws CardException {
        return terminal.waitForCardPresent(timeout);
    }

    @Override
    public boolean waitForCardAbsent(long timeout) throws CardException {
        return terminal.waitForCardAbsent(timeout);
    }

    @Override
    public String toString() {
        return terminal.toString();
    }

    private static CardException garbled(IllegalArgumentException e) {
        return new CardException("the reader returned a malformed response (card removed?): " + e.getMessage(), e);
    }

    private static final class StrictCard extends Card {
        private final Card card;

        StrictCard(Card card) {
            this.card = card;
        }

        @Override
        public ATR getATR() {
            return card.getATR();
        }

        @Override
        public String getProtocol() {
            return card.getProtocol();
        }

        @Override
        public CardChannel getBasicChannel() {
            return new StrictChannel(this, card.getBasicChannel());
        }

        @Override
        public CardChannel openLogicalChannel() throws CardException {
            return new StrictChannel(this, card.openLogicalChannel());
        }

        @Override
        public void beginExclusive() throws CardException {
            card.beginExclusive();
        }

        @Override
        public void endExclusive() throws CardException {
            card.endExclusive();
        }

        @Override
        public byte[] transmitControlCommand(int controlCode, byte[] command) throws CardException {
            try {
                return card.transmitControlCommand(controlCode, command);
            } catch (IllegalArgumentException e) {
                throw garbled(e);
            }
        }

        @Override
        public void disconnect(boolean reset) throws CardException {
            card.disconnect(reset);
        }
    }

    private static final class StrictChannel extends CardChannel {
        private final Card card;
        private final CardChannel channel;

        StrictChannel(Card card, CardChannel channel) {
            this.card = card;
            this.channel = channel;
        }

        @Override
        public Card getCard() {
            return card;
        }

        @Override
        public int getChannelNumber() {
            return channel.getChannelNumber();
        }

        @Override
        public ResponseAPDU transmit(CommandAPDU command) throws CardException {
            try {
                return channel.transmit(command);
            } catch (IllegalArgumentException e) {
                throw garbled(e);
            }
        }

        @Override
        public int transmit(ByteBuffer command, ByteBuffer response) throws CardException {
            return channel.transmit(command, response); // no ResponseAPDU is made here
        }

        @Override
        public void close() throws CardException {
            channel.close();
        }
    }
}
