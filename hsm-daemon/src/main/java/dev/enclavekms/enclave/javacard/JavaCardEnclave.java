package dev.enclavekms.enclave.javacard;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.EnclaveInfo;
import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.KeyProtection;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.enclave.pkcs11.Pkcs11Pins;

import javax.smartcardio.Card;
import javax.smartcardio.CardChannel;
import javax.smartcardio.CardException;
import javax.smartcardio.CardTerminal;
import javax.smartcardio.CommandAPDU;
import javax.smartcardio.ResponseAPDU;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

import static dev.enclavekms.enclave.javacard.KeyVaultProtocol.*;

/**
 * {@link Enclave} on the KeyVault Java Card applet (docs/javacard.md), over
 * {@code javax.smartcardio}: the same code drives jcardsim's simulated terminal and a PC/SC
 * reader.
 *
 * <p>Every operation runs under one lock (a card does one command at a time and a stream —
 * ENCRYPT, DECRYPT, HMAC — spans several). Every key command travels through the secure
 * channel opened to the pinned {@link CardIdentity}, after VERIFY inside that channel. When
 * the card or reader fails mid-operation, the enclave reopens once (reconnect, select, new
 * channel, VERIFY) and repeats the whole operation once from its first command; a second
 * failure is {@link EnclaveException.Unavailable}. A wrong PIN is never retried.
 */
public final class JavaCardEnclave implements Enclave {

    private static final Set<KeyAlgorithm> CARD_ALGORITHMS =
            EnumSet.of(KeyAlgorithm.AES_256_GCM, KeyAlgorithm.EC_P256_SHA256, KeyAlgorithm.HMAC_SHA256);

    private final CardTerminal terminal;
    private final byte[] aid;
    private final byte[] pin;
    private final CardIdentity trusted;
    private final ReentrantLock lock = new ReentrantLock();
    private final AtomicInteger reopens = new AtomicInteger();
    private Connection connection;
    private Set<KeyAlgorithm> supported = Set.of();
    private boolean simulated;
    private boolean closed;
    /**
     * Set when the card refused our PIN: from then on the enclave answers Unavailable without
     * touching the card, since every reopen would VERIFY again and burn a try until it blocks.
     */
    private String pinRefused;

    private JavaCardEnclave(CardTerminal terminal, byte[] aid, byte[] pin, CardIdentity trusted) {
        this.terminal = terminal;
        this.aid = aid.clone();
        this.pin = pin;
        this.trusted = trusted;
    }

    /**
     * Opens the enclave: connects to the card in {@code terminal}, selects the applet
     * {@code aid}, opens the secure channel to the card whose identity is {@code trusted} and
     * verifies {@code pin} inside it. The caller keeps and wipes its {@code pin} array.
     *
     * @throws EnclaveException.Unavailable when there is no card, no applet, another identity,
     *                                      an unpersonalised card, or a wrong or blocked PIN
     */
    public static JavaCardEnclave open(CardTerminal terminal, byte[] aid, char[] pin, CardIdentity trusted)
            throws EnclaveException {
        JavaCardEnclave e = new JavaCardEnclave(terminal, aid, utf8(pin), trusted);
        e.lock.lock();
        try {
            e.connection = e.connect();
        } catch (EnclaveException failure) {
            Arrays.fill(e.pin, (byte) 0);
            throw failure;
        } finally {
            e.lock.unlock();
        }
        return e;
    }

    /** The applet's AID as installed by default (docs/javacard.md). */
    public static byte[] defaultAid() {
        return DEFAULT_AID.clone();
    }

    /**
     * Reads the identity of the card in {@code terminal} without trusting it: what
     * {@code kmsctl provision --card} records (trust on first use, at provisioning time).
     */
    public static CardIdentity readIdentity(CardTerminal terminal, byte[] aid) throws EnclaveException {
        Card card = connectCard(terminal);
        try {
            CardChannel ch = card.getBasicChannel();
            select(ch, aid);
            return CardIdentity.ofPoint(identityPoint(ch));
        } catch (CardException e) {
            throw new EnclaveException.Unavailable("cannot read the card's identity: " + e.getMessage(), e);
        } finally {
            disconnect(card);
        }
    }

    /**
     * Sets the PIN and admin PIN of a fresh card (once; a personalised card refuses) through a
     * channel to {@code trusted}. PIN 4–16 bytes, admin PIN 8–16 bytes of UTF-8.
     */
    public static void personalise(CardTerminal terminal, byte[] aid, CardIdentity trusted, char[] pin,
                                   char[] adminPin) throws EnclaveException {
        byte[] p = utf8(pin);
        byte[] a = utf8(adminPin);
        byte[] data = new byte[2 + p.length + a.length];
        Card card = connectCard(terminal);
        try {
            data[0] = (byte) p.length;
            System.arraycopy(p, 0, data, 1, p.length);
            data[1 + p.length] = (byte) a.length;
            System.arraycopy(a, 0, data, 2 + p.length, a.length);
            CardChannel ch = card.getBasicChannel();
            select(ch, aid);
            try (SecureSession s = openChannel(ch, trusted)) {
                SecureSession.Reply r = s.unwrap(ch.transmit(s.wrap(INS_PERSONALISE, 0, 0, data)));
                if (r.sw() == SW_CONDITIONS) {
                    throw new EnclaveException.Unavailable("the card is already personalised", null);
                }
                if (r.sw() == SW_WRONG_DATA) {
                    throw new EnclaveException.BadInput("PIN must be 4-16 bytes, admin PIN 8-16 bytes");
                }
                requireOk(r, "PERSONALISE");
            }
        } catch (CardException | SecureSession.ChannelBroken e) {
            throw new EnclaveException.Unavailable("cannot personalise the card: " + e.getMessage(), e);
        } finally {
            Arrays.fill(p, (byte) 0);
            Arrays.fill(a, (byte) 0);
            Arrays.fill(data, (byte) 0);
            disconnect(card);
        }
    }

    /** The algorithms the card reports (STATUS feature bits); others are Unsupported at generate. */
    public Set<KeyAlgorithm> supportedAlgorithms() {
        return supported;
    }

    /**
     * True when this card is jcardsim, not a secure element: the terminal is jcardsim's own, or
     * the card has the identity key every fresh jcardsim produces (also behind vpcd/pcscd).
     * The daemon must refuse a simulated card outside dev mode.
     */
    public boolean simulated() {
        return simulated;
    }

    /** True when {@code terminal} is jcardsim's in-process terminal. */
    public static boolean isSimulatorTerminal(CardTerminal terminal) {
        return terminal.getClass().getName().startsWith("com.licel.jcardsim.");
    }

    /** How often the enclave reopened its connection; for tests and the status report. */
    public int reopenCount() {
        return reopens.get();
    }

    // ---------------------------------------------------------------- Enclave

    @Override
    public EnclaveInfo info() throws EnclaveException {
        CardStatus s = status();
        return new EnclaveInfo("javacard", "KeyVault", simulated ? "jcardsim (simulated)" : "unknown",
                "KeyVault applet " + s.version(), trusted.fingerprint().substring(0, 16), s.version(), -1);
    }

    /** The applet's STATUS (version, features, PIN tries, slots). */
    public CardStatus status() throws EnclaveException {
        return call("STATUS", c -> CardStatus.parse(c.require(INS_STATUS, 0, 0, new byte[0], "STATUS")));
    }

    @Override
    public PublicKey generate(ObjectId id, KeyAlgorithm algorithm, String label) throws EnclaveException {
        if (!supported.contains(algorithm)) {
            throw new EnclaveException.Unsupported(algorithm + " is not supported by the KeyVault card");
        }
        byte[] idBytes = idBytes(id);
        byte[] labelBytes = label.getBytes(StandardCharsets.UTF_8);
        if (labelBytes.length > MAX_LABEL) {
            throw new EnclaveException.BadInput("label longer than " + MAX_LABEL + " bytes of UTF-8");
        }
        byte[] data = concat(lv(idBytes), lv(labelBytes));
        byte[] point = call("GENERATE", c -> {
            SecureSession.Reply r = c.send(INS_GENERATE, algorithm.code(), 0, data);
            switch (r.sw()) {
                case SW_ID_IN_USE -> throw new EnclaveException.BadInput("a key with id " + id.hex() + " exists");
                case SW_NO_FREE_SLOT -> throw new EnclaveException.Unavailable(
                        "the card has no free key slot; destroy old key versions to free one", null);
                case SW_FUNC_NOT_SUPPORTED -> throw new EnclaveException.Unsupported(
                        algorithm + " is not supported by this card");
                default -> {
                    requireOk(r, "GENERATE");
                    return r.data();
                }
            }
        });
        return algorithm == KeyAlgorithm.EC_P256_SHA256 ? ecPublicKey(point, "GENERATE") : null;
    }

    @Override
    public Sealed encrypt(ObjectId key, byte[] aad, byte[] plaintext) throws EnclaveException {
        byte[] header = concat(lv(idBytes(key)), sha256(aad));
        return call("ENCRYPT", c -> {
            ByteArrayOutputStream out = new ByteArrayOutputStream(plaintext.length + 28);
            int at = 0;
            boolean first = true;
            do {
                int n = Math.min(AEAD_CHUNK, plaintext.length - at);
                boolean last = at + n == plaintext.length;
                byte[] chunk = Arrays.copyOfRange(plaintext, at, at + n);
                byte[] data = first ? concat(header, chunk) : chunk;
                SecureSession.Reply r = c.send(INS_ENCRYPT, (first ? STREAM_BEGIN : 0) | (last ? STREAM_END : 0), 0, data);
                Arrays.fill(chunk, (byte) 0);
                Arrays.fill(data, (byte) 0);
                keyStatus(r, key, "ENCRYPT");
                out.writeBytes(r.data());
                at += n;
                first = false;
            } while (at < plaintext.length);
            byte[] all = out.toByteArray();
            if (all.length != IV_BYTES + plaintext.length + TAG_BYTES) {
                throw new EnclaveException.Unavailable("ENCRYPT returned " + all.length + " bytes", null);
            }
            return new Sealed(Arrays.copyOf(all, IV_BYTES), Arrays.copyOfRange(all, IV_BYTES, all.length));
        });
    }

    @Override
    public SecretBytes decrypt(ObjectId key, byte[] aad, Sealed sealed) throws EnclaveException {
        byte[] iv = sealed.iv();
        byte[] ct = sealed.ciphertext();
        if (iv.length != IV_BYTES || ct.length < TAG_BYTES) {
            throw new EnclaveException.AuthenticationFailed();
        }
        byte[] header = concat(lv(idBytes(key)), sha256(aad), iv);
        int textLength = ct.length - TAG_BYTES;
        return call("DECRYPT", c -> {
            // Plaintext of an unverified ciphertext stays here and is wiped unless END verifies.
            byte[] plain = new byte[textLength];
            boolean done = false;
            try {
                int at = 0;
                boolean first = true;
                while (true) {
                    int n = Math.min(AEAD_CHUNK, textLength - at);
                    boolean last = at + n == textLength;
                    byte[] chunk = Arrays.copyOfRange(ct, at, last ? ct.length : at + n);
                    byte[] data = first ? concat(header, chunk) : chunk;
                    SecureSession.Reply r = c.send(INS_DECRYPT, (first ? STREAM_BEGIN : 0) | (last ? STREAM_END : 0), 0, data);
                    if (r.sw() == SW_TAG_MISMATCH) {
                        throw new EnclaveException.AuthenticationFailed();
                    }
                    keyStatus(r, key, "DECRYPT");
                    byte[] got = r.data();
                    if (got.length != n) {
                        Arrays.fill(got, (byte) 0);
                        throw new EnclaveException.Unavailable("DECRYPT returned " + got.length + " bytes", null);
                    }
                    System.arraycopy(got, 0, plain, at, n);
                    Arrays.fill(got, (byte) 0);
                    at += n;
                    first = false;
                    if (last) {
                        done = true;
                        return SecretBytes.adopt(plain);
                    }
                }
            } finally {
                if (!done) {
                    Arrays.fill(plain, (byte) 0);
                }
            }
        });
    }

    @Override
    public byte[] sign(ObjectId key, KeyAlgorithm algorithm, byte[] input) throws EnclaveException {
        if (!algorithm.signs()) {
            throw new EnclaveException.BadInput(algorithm + " keys do not sign");
        }
        if (!supported.contains(algorithm)) {
            throw new EnclaveException.Unsupported(algorithm + " is not supported by the KeyVault card");
        }
        if (input.length != algorithm.digestLength()) {
            throw new EnclaveException.BadInput(algorithm + " signs a " + algorithm.digestLength()
                    + "-byte digest, not " + input.length + " bytes");
        }
        byte[] data = concat(lv(idBytes(key)), input);
        return call("SIGN", c -> {
            SecureSession.Reply r = c.send(INS_SIGN, 0, 0, data);
            keyStatus(r, key, "SIGN");
            return r.data();
        });
    }

    @Override
    public byte[] hmac(ObjectId key, byte[] data) throws EnclaveException {
        if (data.length > MAX_HMAC_INPUT_BYTES) {
            throw new EnclaveException.BadInput("HMAC input longer than " + MAX_HMAC_INPUT_BYTES + " bytes");
        }
        byte[] header = lv(idBytes(key));
        return call("HMAC", c -> {
            int at = 0;
            boolean first = true;
            while (true) {
                int n = Math.min(HMAC_CHUNK, data.length - at);
                boolean last = at + n == data.length;
                byte[] chunk = Arrays.copyOfRange(data, at, at + n);
                SecureSession.Reply r = c.send(INS_HMAC, (first ? STREAM_BEGIN : 0) | (last ? STREAM_END : 0), 0,
                        first ? concat(header, chunk) : chunk);
                keyStatus(r, key, "HMAC");
                at += n;
                first = false;
                if (last) {
                    if (r.data().length != 32) {
                        throw new EnclaveException.Unavailable("HMAC returned " + r.data().length + " bytes", null);
                    }
                    return r.data();
                }
            }
        });
    }

    @Override
    public PublicKey publicKey(ObjectId key, KeyAlgorithm algorithm) throws EnclaveException {
        if (!algorithm.signs()) {
            throw new EnclaveException.BadInput(algorithm + " keys have no public key");
        }
        if (!supported.contains(algorithm)) {
            throw new EnclaveException.Unsupported(algorithm + " is not supported by the KeyVault card");
        }
        byte[] data = lv(idBytes(key));
        byte[] point = call("PUBLIC KEY", c -> {
            SecureSession.Reply r = c.send(INS_PUBLIC_KEY, 0, 0, data);
            keyStatus(r, key, "PUBLIC KEY");
            return r.data();
        });
        return ecPublicKey(point, "PUBLIC KEY");
    }

    @Override
    public SecretBytes random(int length) throws EnclaveException {
        if (length < 0) {
            throw new EnclaveException.BadInput("random length must not be negative");
        }
        return call("RANDOM", c -> {
            byte[] out = new byte[length];
            for (int at = 0; at < length; ) {
                int n = Math.min(MAX_RANDOM, length - at);
                byte[] got = c.require(INS_RANDOM, n, 0, new byte[0], "RANDOM");
                if (got.length != n) {
                    throw new EnclaveException.Unavailable("RANDOM returned " + got.length + " bytes", null);
                }
                System.arraycopy(got, 0, out, at, n);
                Arrays.fill(got, (byte) 0);
                at += n;
            }
            return SecretBytes.adopt(out);
        });
    }

    @Override
    public void destroy(ObjectId key) throws EnclaveException {
        byte[] data = lv(idBytes(key));
        call("DELETE", c -> {
            SecureSession.Reply r = c.send(INS_DELETE, 0, 0, data);
            if (r.sw() != SW_NOT_FOUND) {
                requireOk(r, "DELETE");
            }
            return null;
        });
    }

    @Override
    public List<EnclaveObject> list() throws EnclaveException {
        return call("LIST", c -> {
            List<EnclaveObject> objects = new ArrayList<>();
            int next = 0;
            while (next != 0xFF) {
                ByteBuffer b = ByteBuffer.wrap(c.require(INS_LIST, next, 0, new byte[0], "LIST"));
                next = b.get() & 0xFF;
                while (b.hasRemaining()) {
                    b.get(); // slot index
                    KeyAlgorithm algorithm = KeyAlgorithm.ofCode(b.get());
                    byte[] id = new byte[b.get() & 0xFF];
                    b.get(id);
                    byte[] label = new byte[b.get() & 0xFF];
                    b.get(label);
                    objects.add(new EnclaveObject(new ObjectId(id), new String(label, StandardCharsets.UTF_8),
                            algorithm, protection(algorithm)));
                }
            }
            return objects;
        });
    }

    @Override
    public void close() {
        lock.lock();
        try {
            closed = true;
            if (connection != null) {
                connection.close();
                connection = null;
            }
            Arrays.fill(pin, (byte) 0);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public String toString() {
        return "JavaCardEnclave[" + terminal.getName() + ", card " + trusted.fingerprint().substring(0, 16) + "]";
    }

    // ---------------------------------------------------------------- protection

    /**
     * What the applet guarantees for every key, stated as PKCS#11-style attributes: keys are
     * generated on the card, no command returns them, and a slot's algorithm fixes what it does.
     */
    static KeyProtection protection(KeyAlgorithm algorithm) {
        boolean aes = algorithm == KeyAlgorithm.AES_256_GCM;
        return new KeyProtection(true, true, true, true, false, true, false, false, false,
                aes, aes, false, false, !aes);
    }

    // ---------------------------------------------------------------- connection

    /** One connected, selected, channel-protected, PIN-verified card session. */
    private final class Connection {
        private final Card card;
        private final CardChannel channel;
        private final SecureSession session;

        Connection(Card card, CardChannel channel, SecureSession session) {
            this.card = card;
            this.channel = channel;
            this.session = session;
        }

        /** Sends a wrapped command; channel or transport failures make the caller reopen. */
        SecureSession.Reply send(int ins, int p1, int p2, byte[] data) throws CardException, SecureSession.ChannelBroken {
            SecureSession.Reply r = session.unwrap(channel.transmit(session.wrap(ins, p1, p2, data)));
            if (r.sw() == SW_SECURITY_STATUS) {
                // The card forgot our PIN (it was reset): a new session verifies again.
                throw new SecureSession.ChannelBroken("the card no longer holds a verified PIN");
            }
            return r;
        }

        byte[] require(int ins, int p1, int p2, byte[] data, String operation)
                throws CardException, SecureSession.ChannelBroken, EnclaveException {
            SecureSession.Reply r = send(ins, p1, p2, data);
            requireOk(r, operation);
            return r.data();
        }

        void close() {
            session.close();
            disconnect(card);
        }
    }

    @FunctionalInterface
    private interface Operation<T> {
        T run(Connection c) throws CardException, SecureSession.ChannelBroken, EnclaveException;
    }

    /**
     * Runs an operation under the lock; on a transport or channel failure reopens once and
     * repeats the whole operation from its first command (streams restart from BEGIN).
     */
    private <T> T call(String operation, Operation<T> op) throws EnclaveException {
        lock.lock();
        try {
            if (closed) {
                throw new EnclaveException.Unavailable("the enclave is closed", null);
            }
            if (pinRefused != null) {
                throw new EnclaveException.Unavailable(pinRefused, null);
            }
            Exception first;
            try {
                return exclusively(current(), op);
            } catch (CardException | SecureSession.ChannelBroken | IllegalStateException e) {
                first = e;
            }
            dropConnection();
            reopens.incrementAndGet();
            try {
                return exclusively(current(), op);
            } catch (CardException | SecureSession.ChannelBroken | IllegalStateException e) {
                dropConnection();
                throw new EnclaveException.Unavailable(operation + " failed again after reopening the card ("
                        + first.getMessage() + "): " + e.getMessage(), e);
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Runs {@code op} inside a PC/SC transaction, so that no other client's APDU lands in the
     * middle of a stream. javax.smartcardio binds exclusivity to the thread, so it is taken and
     * released here, per operation, on the thread holding the lock.
     */
    private static <T> T exclusively(Connection c, Operation<T> op)
            throws CardException, SecureSession.ChannelBroken, EnclaveException {
        c.card.beginExclusive();
        try {
            return op.run(c);
        } finally {
            try {
                c.card.endExclusive();
            } catch (CardException | IllegalStateException e) {
                // The card went away during the operation; the failure is already on its way.
            }
        }
    }

    private Connection current() throws EnclaveException {
        if (connection == null) {
            connection = connect();
        }
        return connection;
    }

    private void dropConnection() {
        if (connection != null) {
            connection.close();
            connection = null;
        }
    }

    /** Connect, select, open the channel to the pinned identity, VERIFY, read STATUS. */
    private Connection connect() throws EnclaveException {
        Card card = connectCard(terminal);
        boolean ok = false;
        try {
            CardChannel ch = card.getBasicChannel();
            select(ch, aid);
            SecureSession session = openChannel(ch, trusted);
            Connection c = new Connection(card, ch, session);
            SecureSession.Reply r = session.unwrap(ch.transmit(session.wrap(INS_VERIFY, 0, P2_PIN, pin)));
            if ((r.sw() & 0xFFF0) == 0x63C0) {
                pinRefused = "the card refused the PIN; " + (r.sw() & 0x0F)
                        + " tries left before it blocks; fix the PIN file and restart";
                throw new EnclaveException.Unavailable(pinRefused, null);
            }
            switch (r.sw()) {
                case SW_PIN_BLOCKED -> {
                    pinRefused = "the card's PIN is blocked; reset it with the admin PIN";
                    throw new EnclaveException.Unavailable(pinRefused, null);
                }
                case SW_CONDITIONS -> throw new EnclaveException.Unavailable(
                        "the card is not personalised; run kmsctl provision --card", null);
                case SW_WRONG_DATA -> throw new EnclaveException.Unavailable("the PIN file holds a malformed PIN", null);
                default -> requireOk(r, "VERIFY");
            }
            CardStatus status = CardStatus.parse(c.require(INS_STATUS, 0, 0, new byte[0], "STATUS"));
            supported = status.algorithms();
            simulated = isSimulatorTerminal(terminal) || trusted.isJcardsimDefault();
            ok = true;
            return c;
        } catch (CardException | SecureSession.ChannelBroken e) {
            throw new EnclaveException.Unavailable("cannot open the KeyVault card in " + terminal.getName() + ": "
                    + e.getMessage(), e);
        } finally {
            if (!ok) {
                disconnect(card);
            }
        }
    }

    private static Card connectCard(CardTerminal terminal) throws EnclaveException {
        try {
            return terminal.connect("*");
        } catch (CardException e) {
            throw new EnclaveException.Unavailable("no card in " + terminal.getName() + ": " + e.getMessage(), e);
        }
    }

    private static void disconnect(Card card) {
        try {
            // Reset the card: its RAM (session keys, verified PIN) is gone for the next user.
            card.disconnect(true);
        } catch (CardException | RuntimeException e) {
            // Already gone (removed); nothing to release.
        }
    }

    private static void select(CardChannel ch, byte[] aid) throws CardException, EnclaveException {
        ResponseAPDU r = ch.transmit(new CommandAPDU(CLA_ISO, INS_SELECT, 0x04, 0x00, aid));
        if (r.getSW() != SW_OK) {
            throw new EnclaveException.Unavailable("the card has no KeyVault applet (SELECT answered "
                    + sw(r.getSW()) + ")", null);
        }
    }

    private static byte[] identityPoint(CardChannel ch) throws CardException, EnclaveException {
        ResponseAPDU r = ch.transmit(new CommandAPDU(CLA_PLAIN, INS_GET_IDENTITY, 0, 0, 256));
        if (r.getSW() != SW_OK || r.getData().length != EC_POINT_BYTES) {
            throw new EnclaveException.Unavailable("GET IDENTITY answered " + sw(r.getSW()), null);
        }
        return r.getData();
    }

    /** Reads the card's identity, checks it against the pin, and opens the channel. */
    private static SecureSession openChannel(CardChannel ch, CardIdentity trusted) throws CardException, EnclaveException {
        byte[] identity = identityPoint(ch);
        if (!trusted.matches(identity)) {
            throw new EnclaveException.Unavailable("the card's identity " + CardIdentity.ofPoint(identity).fingerprint()
                    + " is not the pinned " + trusted.fingerprint(), null);
        }
        SecureSession.Opening opening = SecureSession.begin();
        try {
            return SecureSession.finish(opening, ch.transmit(opening.command()), identity);
        } catch (SecureSession.ChannelRefused e) {
            throw new EnclaveException.Unavailable("cannot open the secure channel: " + e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- status words

    /** The statuses every key command shares; anything else not 9000 is Unavailable. */
    private static void keyStatus(SecureSession.Reply r, ObjectId key, String operation) throws EnclaveException {
        switch (r.sw()) {
            case SW_NOT_FOUND -> throw new EnclaveException.ObjectNotFound(key);
            case SW_WRONG_KEY_TYPE -> throw new EnclaveException.BadInput(operation + ": key " + key.hex()
                    + " is of another algorithm");
            default -> requireOk(r, operation);
        }
    }

    private static void requireOk(SecureSession.Reply r, String operation) throws EnclaveException {
        switch (r.sw()) {
            case SW_OK -> {
            }
            case SW_WRONG_DATA, SW_WRONG_LENGTH, SW_INCORRECT_P1P2 ->
                    throw new EnclaveException.BadInput(operation + ": the card refused the input (" + sw(r.sw()) + ")");
            default -> throw new EnclaveException.Unavailable(operation + " failed on the card: " + sw(r.sw()), null);
        }
    }

    // ---------------------------------------------------------------- encoding

    private static byte[] idBytes(ObjectId id) throws EnclaveException {
        byte[] b = id.bytes();
        if (b.length > MAX_ID) {
            throw new EnclaveException.BadInput("the card takes object ids of at most " + MAX_ID + " bytes");
        }
        return b;
    }

    private static byte[] lv(byte[] value) {
        byte[] out = new byte[1 + value.length];
        out[0] = (byte) value.length;
        System.arraycopy(value, 0, out, 1, value.length);
        return out;
    }

    private static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    private static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("SHA-256 is missing from the JDK", e);
        }
    }

    private static byte[] utf8(char[] chars) {
        ByteBuffer b = StandardCharsets.UTF_8.encode(CharBuffer.wrap(chars));
        byte[] out = new byte[b.remaining()];
        b.get(out);
        Arrays.fill(b.array(), (byte) 0);
        return out;
    }

    private static PublicKey ecPublicKey(byte[] point, String operation) throws EnclaveException {
        try {
            return SecureSession.publicKey(point);
        } catch (GeneralSecurityException e) {
            throw new EnclaveException.Unavailable(operation + " returned a malformed P-256 point", e);
        }
    }
}
