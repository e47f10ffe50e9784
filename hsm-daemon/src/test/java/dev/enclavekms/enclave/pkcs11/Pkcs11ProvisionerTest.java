package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Pkcs11ProvisionerTest {

    private static final Path LIBRARY = Pkcs11Config.DEFAULT_LIBRARY;

    @Test
    void provision_twice_secondCallReportsTheExistingToken() throws Exception {
        String label = TestTokens.uniqueLabel("prov-twice");
        Path so = TestTokens.pinFile("so");
        Path user = TestTokens.pinFile("user");

        Pkcs11Provisioner.Result first = Pkcs11Provisioner.provision(LIBRARY, label, so, user);
        Pkcs11Provisioner.Result second = Pkcs11Provisioner.provision(LIBRARY, label, so, user);

        assertTrue(first.created());
        assertFalse(second.created());
        assertEquals(first.tokenSerial(), second.tokenSerial());
        assertEquals(first.slotId(), second.slotId());
        assertFalse(first.tokenSerial().isBlank());
        try (Pkcs11Enclave enclave = Pkcs11Enclave.open(Pkcs11Config.forLabel(label, user))) {
            assertNull(enclave.generate(ObjectId.random(), KeyAlgorithm.AES_256_GCM, "after provisioning"));
            assertEquals(first.tokenSerial(), enclave.info().serial());
        }
        // Still idempotent with keys on the token, and with no SO PIN needed any more.
        Path missingSoPin = so.resolveSibling("absent.pin");
        assertFalse(Pkcs11Provisioner.provision(LIBRARY, label, missingSoPin, user).created());
    }

    @Test
    void provision_existingTokenWithWrongUserPin_reportedClearly() throws Exception {
        String label = TestTokens.uniqueLabel("prov-wrong");
        Path so = TestTokens.pinFile("so");
        Pkcs11Provisioner.provision(LIBRARY, label, so, TestTokens.pinFile("user"));
        String wrong = "not-the-pin-" + ObjectId.random().hex();
        Path wrongPin = TestTokens.writePinFile("wrong", wrong);

        Pkcs11Provisioner.ProvisioningException e = assertThrows(Pkcs11Provisioner.ProvisioningException.class,
                () -> Pkcs11Provisioner.provision(LIBRARY, label, so, wrongPin));

        assertTrue(e.getMessage().contains("already provisioned"), e.getMessage());
        assertTrue(e.getMessage().contains("CKR_PIN_INCORRECT"), e.getMessage());
        assertTrue(e.getMessage().contains(wrongPin.toString()), e.getMessage());
        assertFalse(e.getMessage().contains(wrong), "message shows the PIN");
    }

    @Test
    void provision_tokenInitialisedWithoutUserPin_completed() throws Exception {
        String label = TestTokens.uniqueLabel("prov-half");
        Path so = TestTokens.pinFile("so");
        Path user = TestTokens.pinFile("user");
        Pkcs11Library library = Pkcs11Library.load(LIBRARY);
        // What a crash between C_InitToken and C_InitPIN leaves behind.
        synchronized (library) {
            Pkcs11Library.SlotToken free = library.tokens().stream()
                    .filter(t -> !t.info().isTokenInitialized()).findFirst().orElseThrow();
            library.module().getPKCS11Module().C_InitToken(free.slot().getSlotID(), Pkcs11Pins.read(so),
                    String.format("%-32s", label).toCharArray(), true);
        }

        Pkcs11Provisioner.Result result = Pkcs11Provisioner.provision(LIBRARY, label, so, user);

        assertTrue(result.created());
        try (Pkcs11Enclave enclave = Pkcs11Enclave.open(Pkcs11Config.forLabel(label, user))) {
            assertEquals(label, enclave.info().label());
        }
        assertFalse(Pkcs11Provisioner.provision(LIBRARY, label, so, user).created());
    }

    @Test
    void provision_halfProvisionedTokenWithWrongSoPin_reportedClearly() throws Exception {
        String label = TestTokens.uniqueLabel("prov-so");
        Path so = TestTokens.pinFile("so");
        Pkcs11Library library = Pkcs11Library.load(LIBRARY);
        synchronized (library) {
            Pkcs11Library.SlotToken free = library.tokens().stream()
                    .filter(t -> !t.info().isTokenInitialized()).findFirst().orElseThrow();
            library.module().getPKCS11Module().C_InitToken(free.slot().getSlotID(), Pkcs11Pins.read(so),
                    String.format("%-32s", label).toCharArray(), true);
        }
        Path wrongSo = TestTokens.pinFile("wrong-so");

        Pkcs11Provisioner.ProvisioningException e = assertThrows(Pkcs11Provisioner.ProvisioningException.class,
                () -> Pkcs11Provisioner.provision(LIBRARY, label, wrongSo, TestTokens.pinFile("user")));

        assertTrue(e.getMessage().contains("security officer PIN"), e.getMessage());
    }

    @Test
    void provision_pinFileReadableByOthers_refusedBeforeTouchingTheToken() throws Exception {
        String label = TestTokens.uniqueLabel("prov-mode");
        Path user = TestTokens.pinFile("user");
        Files.setPosixFilePermissions(user, PosixFilePermissions.fromString("rw-r--r--"));

        Pkcs11Provisioner.ProvisioningException e = assertThrows(Pkcs11Provisioner.ProvisioningException.class,
                () -> Pkcs11Provisioner.provision(LIBRARY, label, TestTokens.pinFile("so"), user));

        assertTrue(e.getMessage().contains("0644"), e.getMessage());
        assertTrue(Pkcs11Library.load(LIBRARY).find(label, null).isEmpty(), "no token was initialised");
    }

    @Test
    void provision_invalidLabel_rejected() {
        for (String label : List.of("", " padded", "x".repeat(33), "tab\there", "naïve")) {
            assertThrows(IllegalArgumentException.class, () -> Pkcs11Provisioner.provision(LIBRARY, label,
                    Path.of("so.pin"), Path.of("user.pin")), label);
        }
    }

    @Test
    void writeSoftHsmConfig_writesFileBackendAndPrivateTokenDirectory(@TempDir Path dir) throws Exception {
        Path conf = dir.resolve("etc/softhsm2.conf");
        Path tokens = dir.resolve("tokens");

        Pkcs11Provisioner.writeSoftHsmConfig(conf, tokens);

        List<String> lines = Files.readAllLines(conf).stream().filter(l -> !l.startsWith("#")).toList();
        assertEquals(List.of("directories.tokendir = " + tokens.toAbsolutePath(), "objectstore.backend = file",
                "log.level = ERROR", "slots.removable = false"), lines);
        // Exactly the repository's template (pkcs11-config/softhsm2.conf.template).
        assertEquals(Files.readString(Path.of("../pkcs11-config/softhsm2.conf.template"))
                .replace("@TOKEN_DIR@", tokens.toAbsolutePath().toString()), Files.readString(conf));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(tokens)));
        // Rewriting is harmless.
        Pkcs11Provisioner.writeSoftHsmConfig(conf, tokens);
        assertEquals(lines, Files.readAllLines(conf).stream().filter(l -> !l.startsWith("#")).toList());
        try (var files = Files.list(conf.getParent())) {
            assertEquals(1, files.count(), "no temporary file left behind");
        }
    }
}
