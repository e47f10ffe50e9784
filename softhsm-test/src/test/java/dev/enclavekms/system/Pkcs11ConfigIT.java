package dev.enclavekms.system;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * pkcs11-config/ as shipped: a SoftHSM configuration from softhsm2.conf.template, a token
 * on it, and JCA code using sunpkcs11-softhsm.cfg verbatim to generate AES, EC and RSA
 * keys (in a child JVM: SoftHSM reads SOFTHSM2_CONF once per process). pkcs11-tool then
 * reads the token: every secret and private key sensitive and never extractable, usage
 * limited to encrypt/decrypt or sign, nothing that wraps, and no stray objects.
 */
class Pkcs11ConfigIT {
    @TempDir
    Path dir;

    @Test
    void sunPkcs11Config_generatedKeys_areSensitiveNeverExtractableAndSingleUse() throws Exception {
        Path tokens = Files.createDirectories(dir.resolve("tokens"));
        Path conf = Files.writeString(dir.resolve("softhsm2.conf"),
                Files.readString(Commands.repoFile("pkcs11-config/softhsm2.conf.template"))
                        .replace("@TOKEN_DIR@", tokens.toString()));
        Map<String, String> env = Map.of("SOFTHSM2_CONF", conf.toString());
        Path so = secret("so-pin", "so-4410");
        Path pin = secret("pin", "user-7731");
        Commands.run(List.of(Commands.repoFile("bin/kmsctl").toString(), "provision", "--token-label", "jca",
                "--so-pin-file", so.toString(), "--pin-file", pin.toString()), env, null).requireSuccess();

        Commands.Result probe = Commands.run(List.of(javaHome().resolve("bin/java").toString(),
                Commands.repoFile("softhsm-test/src/test/resources/SunPkcs11Probe.java").toString(),
                Commands.repoFile("pkcs11-config/sunpkcs11-softhsm.cfg").toString(), pin.toString()), env, null);
        assertEquals(0, probe.exit(), probe.stdout() + probe.stderr());
        assertEquals(List.of("provider=SunPKCS11-enclave-kms", "aes.encoded=null", "aes.gcm.roundtrip=true",
                "ec.private.encoded=null", "ec.signature.verified=true", "rsa.private.encoded=null",
                "rsa.signature.verified=true"), probe.stdout().lines().toList());

        Commands.Result listing = Commands.run(List.of("pkcs11-tool", "--module", "/usr/lib/softhsm/libsofthsm2.so",
                "--token-label", "jca", "--login", "--pin", "env:P", "--list-objects"),
                Map.of("SOFTHSM2_CONF", conf.toString(), "P", "user-7731"), null).requireSuccess();
        List<String> blocks = TokenObjects.blocks(listing.stdout());
        assertEquals(5, blocks.size(), "AES key, two key pairs, nothing else:\n" + listing.stdout());
        for (String b : blocks) {
            String usage = TokenObjects.field(b, "Usage:");
            String access = TokenObjects.field(b, "Access:");
            if (b.startsWith("Secret Key Object")) {
                assertEquals("encrypt, decrypt", usage, b);
            } else if (b.startsWith("Private Key Object")) {
                assertEquals("sign", usage, b);
            } else {
                assertTrue(b.startsWith("Public Key Object"), b);
                assertEquals("verify", usage, b);
                continue;
            }
            assertTrue(access.contains("sensitive") && access.contains("always sensitive")
                    && access.contains("never extractable"), b);
            assertFalse(usage.contains("wrap"), b);
        }
    }

    private Path secret(String name, String value) throws Exception {
        Path p = dir.resolve(name);
        Files.createFile(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        return Files.writeString(p, value + "\n");
    }

    private static Path javaHome() {
        return Path.of(System.getProperty("java.home"));
    }
}
