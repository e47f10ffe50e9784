package dev.enclavekms.server;

import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.javacard.CardIdentity;
import dev.enclavekms.enclave.javacard.JavaCardEnclave;
import dev.enclavekms.enclave.javacard.CardReaders;
import dev.enclavekms.enclave.javacard.SimulatedCard;
import dev.enclavekms.enclave.pkcs11.Pkcs11Pins;
import dev.enclavekms.json.Json;
import dev.enclavekms.server.varlink.ServerLimits;

import javax.smartcardio.CardTerminal;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The embedded default on the Java Card backend ({@code enclave-kmsd --dev --card}): the
 * KeyVault applet on a simulated card inside the daemon (jcardsim), or with
 * {@code --card-reader NAME} on the card in a PC/SC reader. Under the state directory, as
 * for SoftHSM: random PIN and admin PIN in 0600 files, the card identity pinned at first
 * start, the registry, the socket, the policy, and {@code dev.json} naming them.
 *
 * <p>The simulated card lives in the daemon's memory: it is fresh at every start, so a
 * registry left by an earlier start refers to keys that no longer exist anywhere. Such a
 * state directory is refused with the reason, never silently emptied (its audit log is
 * evidence). A card in a reader keeps its keys, and the state directory with it.
 */
public final class DevCard {
    private static final System.Logger LOG = System.getLogger(DevCard.class.getName());
    static final String BACKEND = "javacard";

    private final Path stateDir;
    private final String reader;
    private final CardTerminal simulatorTerminal;
    private final Path pinFile;
    private final Path adminPinFile;
    private final CardIdentity identity;
    private final Path registry;
    private final Path socket;
    private final Path policy;

    private DevCard(Path stateDir, String reader, CardTerminal simulatorTerminal, CardIdentity identity) {
        this.stateDir = stateDir;
        this.reader = reader;
        this.simulatorTerminal = simulatorTerminal;
        this.pinFile = stateDir.resolve("card-pin");
        this.adminPinFile = stateDir.resolve("card-admin-pin");
        this.identity = identity;
        this.registry = stateDir.resolve("registry.db");
        this.socket = stateDir.resolve("kms.sock");
        this.policy = stateDir.resolve("policy.yaml");
    }

    /** The class jcardsim's simulator is, by name, so that asking for it never loads jcardsim. */
    static final String SIMULATOR_CLASS = "com.licel.jcardsim.smartcardio.CardSimulator";

    /**
     * The Debian package ships without jcardsim and the applet jar (a simulated card is a
     * development aid): say so instead of failing with NoClassDefFoundError.
     */
    static void requireSimulator() {
        for (String name : new String[] {SIMULATOR_CLASS, "dev.enclavekms.applet.KeyVault"}) {
            try {
                Class.forName(name, false, DevCard.class.getClassLoader());
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException("--dev --card without --card-reader needs the simulated card"
                        + " (jcardsim and the KeyVault applet jar), which this installation does not include"
                        + " (the Debian package leaves them out); give --card-reader NAME for a card in a PC/SC"
                        + " reader, or run bin/enclave-kmsd from a source checkout");
            }
        }
    }

    /**
     * Prepares {@code dir} for the card in {@code readerName}, or for a new simulated card
     * when it is null; personalises a card met for the first time with this directory's PINs.
     */
    public static DevCard prepare(Path dir, String readerName) throws Exception {
        if (readerName == null) requireSimulator();
        Path stateDir = dir.toAbsolutePath().normalize();
        String reader = readerName == null ? DaemonConfig.Card.SIMULATOR : readerName;
        Files.createDirectories(stateDir);
        Files.setPosixFilePermissions(stateDir, PosixFilePermissions.fromString("rwx------"));
        checkEarlierStart(stateDir, reader);
        Path pin = stateDir.resolve("card-pin");
        Path adminPin = stateDir.resolve("card-admin-pin");
        writePinIfAbsent(pin);
        writePinIfAbsent(adminPin);
        DevEnvironment.writePolicyIfAbsent(stateDir.resolve("policy.yaml"));
        Path identityFile = stateDir.resolve("card-identity");
        CardTerminal simulator = null;
        CardTerminal terminal;
        if (readerName == null) {
            simulator = SimulatedCard.create().terminal();
            terminal = simulator;
            Files.deleteIfExists(identityFile); // a new card at every start
        } else {
            terminal = CardReaders.find(readerName);
        }
        CardIdentity identity;
        if (Files.exists(identityFile)) {
            identity = new CardIdentity(Files.readString(identityFile, StandardCharsets.US_ASCII).trim());
        } else {
            identity = personalise(terminal, reader, pin, adminPin);
            Path tmp = stateDir.resolve("card-identity.tmp");
            Files.writeString(tmp, identity.fingerprint() + "\n", StandardCharsets.US_ASCII);
            Files.move(tmp, identityFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        DevCard d = new DevCard(stateDir, reader, simulator, identity);
        d.writeDescriptor();
        return d;
    }

    /**
     * A state directory of the SoftHSM embedded default, of another reader, or of an earlier
     * simulated card (whose keys died with its daemon) is not this one's.
     */
    private static void checkEarlierStart(Path stateDir, String reader) throws Exception {
        Path descriptor = stateDir.resolve("dev.json");
        if (!Files.exists(descriptor)) {
            if (Files.exists(stateDir.resolve("registry.db"))) {
                throw new IOException(stateDir + " holds a registry but no dev.json; use a new --state-dir");
            }
            return;
        }
        Map<String, Object> d = Json.parseObject(Files.readString(descriptor));
        if (!BACKEND.equals(d.get("backend"))) {
            throw new IOException(stateDir + " belongs to the SoftHSM embedded default; its keys are on that token."
                    + " Give --dev --card a new --state-dir");
        }
        if (!reader.equals(d.get("card_reader"))) {
            throw new IOException(stateDir + " belongs to the card in '" + d.get("card_reader") + "', not '" + reader
                    + "'; use a new --state-dir");
        }
        if (DaemonConfig.Card.SIMULATOR.equals(reader) && Files.exists(stateDir.resolve("registry.db"))) {
            throw new IOException(stateDir + " holds the registry of an earlier simulated card, whose keys were lost"
                    + " when its daemon stopped (jcardsim keeps its card in memory only). Start with a new"
                    + " --state-dir (or delete this one), or use a card in a reader: --card-reader NAME");
        }
    }

    private static CardIdentity personalise(CardTerminal terminal, String reader, Path pin, Path adminPin)
            throws IOException, EnclaveException {
        byte[] aid = JavaCardEnclave.defaultAid();
        // Trust on first use: this directory has never met a card; record the one in the reader.
        CardIdentity identity = JavaCardEnclave.readIdentity(terminal, aid);
        char[] p = Pkcs11Pins.read(pin);
        char[] a = Pkcs11Pins.read(adminPin);
        try {
            JavaCardEnclave.personalise(terminal, aid, identity, p, a);
        } catch (EnclaveException.Unavailable e) {
            throw new IOException("cannot personalise the card in '" + reader + "' for dev mode: " + e.getMessage()
                    + " (a card personalised before has PINs this state directory does not know; use a fresh card,"
                    + " or run the daemon with --config on the files 'kmsctl provision --card' wrote)", e);
        } finally {
            Arrays.fill(p, '\0');
            Arrays.fill(a, '\0');
        }
        LOG.log(System.Logger.Level.INFO, "personalised the card in '" + reader + "', identity " + identity.fingerprint());
        return identity;
    }

    /** 16 hex digits: the applet takes PINs of 4 to 16 bytes and admin PINs of 8 to 16. */
    private static void writePinIfAbsent(Path file) throws IOException {
        if (Files.exists(file)) {
            return;
        }
        byte[] b = new byte[8];
        new SecureRandom().nextBytes(b);
        Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(file, HexFormat.of().formatHex(b) + "\n", StandardCharsets.US_ASCII);
        Arrays.fill(b, (byte) 0);
    }

    private void writeDescriptor() throws IOException {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("socket", socket.toString());
        d.put("backend", BACKEND);
        d.put("card_reader", reader);
        d.put("card_identity", identity.fingerprint());
        d.put("pin_file", pinFile.toString());
        d.put("admin_pin_file", adminPinFile.toString());
        d.put("registry", registry.toString());
        d.put("policy", policy.toString());
        Path tmp = stateDir.resolve("dev.json.tmp");
        Files.writeString(tmp, Json.write(d) + "\n");
        Files.move(tmp, stateDir.resolve("dev.json"), StandardCopyOption.REPLACE_EXISTING,
                StandardCopyOption.ATOMIC_MOVE);
    }

    public DaemonConfig config() {
        return new DaemonConfig(null, null, pinFile, registry, socket, ServerLimits.DEFAULT,
                DaemonConfig.Lifecycle.DEFAULT, policy, null, DaemonConfig.Audit.beside(registry),
                dev.enclavekms.service.KeySessions.Limits.DEFAULT, dev.enclavekms.service.CertificateAuthority.DEFAULT_MAX_TTL,
                new DaemonConfig.Card(reader, JavaCardEnclave.defaultAid(), identity.fingerprint()));
    }

    /** The simulated card's terminal, or null for a card in a reader. */
    public CardTerminal simulatorTerminal() {
        return simulatorTerminal;
    }

    public void printWelcome(PrintStream out) {
        String where = simulatorTerminal != null
                ? "a simulated Java Card (jcardsim, in memory: its keys end with this process)"
                : "the Java Card in '" + reader + "'";
        DevEnvironment.printWelcome(out, socket, List.of(
                "  (" + where + ", state in " + stateDir + ", details in " + stateDir.resolve("dev.json") + ")",
                "  The card backend holds AES-256, P-256 and HMAC-SHA256 keys; Ed25519, P-384 and RSA are refused."));
    }
}
