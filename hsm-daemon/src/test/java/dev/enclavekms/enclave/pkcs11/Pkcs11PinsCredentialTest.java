package dev.enclavekms.enclave.pkcs11;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * PIN files that systemd's LoadCredential= provides, in both of the shapes systemd
 * writes them (root-owned 0400 plus an ACL, which shows as mode 0440; or handed to the
 * service's user), against the service user's uid. Files owned by other uids are made
 * with chown, so this runs as root (as the test machines and CI do).
 */
class Pkcs11PinsCredentialTest {
    private static final long SERVICE_UID = 4242;

    @TempDir
    Path tmp;
    Path creds;

    @BeforeEach
    void requireRoot() throws IOException {
        assumeTrue(new com.sun.security.auth.module.UnixSystem().getUid() == 0,
                "chown to other uids needs root");
        creds = tmp.resolve("credentials");
        Files.createDirectory(creds);
    }

    private static Path file(Path p, String content, String mode, int uid, int gid) throws IOException {
        Files.writeString(p, content);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(mode));
        Files.setAttribute(p, "unix:uid", uid);
        Files.setAttribute(p, "unix:gid", gid);
        return p;
    }

    private void dir(String mode, int uid, int gid) throws IOException {
        Files.setPosixFilePermissions(creds, PosixFilePermissions.fromString(mode));
        Files.setAttribute(creds, "unix:uid", uid);
        Files.setAttribute(creds, "unix:gid", gid);
    }

    private char[] readAsService(Path pin) throws IOException {
        return Pkcs11Pins.read(pin, creds.toString(), SERVICE_UID);
    }

    @Test
    void rootOwnedWithAclMask_inCredentialsDirectory_isAccepted() throws IOException {
        dir("r-xr-x---", 0, 0);
        Path pin = file(creds.resolve("pin"), "1234\n", "r--r-----", 0, 0);
        assertArrayEquals("1234".toCharArray(), readAsService(pin));
    }

    @Test
    void rootOwnedWithAclMask_outsideCredentialsDirectory_isRefused() throws IOException {
        Path pin = file(tmp.resolve("pin"), "1234\n", "r--r-----", 0, 0);
        assertThrows(Pkcs11Pins.RefusedException.class, () -> Pkcs11Pins.read(pin, null, SERVICE_UID));
        assertThrows(Pkcs11Pins.RefusedException.class, () -> Pkcs11Pins.read(pin, creds.toString(), SERVICE_UID));
    }

    @Test
    void handedToTheServiceUser_inCredentialsDirectory_isAccepted() throws IOException {
        dir("r-x------", (int) SERVICE_UID, (int) SERVICE_UID);
        Path pin = file(creds.resolve("pin"), "1234", "r--------", (int) SERVICE_UID, (int) SERVICE_UID);
        assertArrayEquals("1234".toCharArray(), readAsService(pin));
    }

    @Test
    void readableByOthers_isRefused() throws IOException {
        dir("r-x------", 0, 0);
        Path pin = file(creds.resolve("pin"), "1234", "r--r--r--", 0, 0);
        Pkcs11Pins.RefusedException e = assertThrows(Pkcs11Pins.RefusedException.class, () -> readAsService(pin));
        assertTrue(e.getMessage().contains("0444"), e.getMessage());
    }

    @Test
    void groupReadableWithARealGroup_isRefused() throws IOException {
        dir("r-x------", 0, 0);
        // root-owned but group 4243: the group bits may be a real group's access, not systemd's ACL mask
        Path pin = file(creds.resolve("pin"), "1234", "r--r-----", 0, 4243);
        assertThrows(Pkcs11Pins.RefusedException.class, () -> readAsService(pin));
        Path mine = file(creds.resolve("mine"), "1234", "rw-r-----", (int) SERVICE_UID, (int) SERVICE_UID);
        assertThrows(Pkcs11Pins.RefusedException.class, () -> readAsService(mine));
    }

    @Test
    void ownedByAnotherUser_isRefused() throws IOException {
        dir("r-x------", 0, 0);
        Path pin = file(creds.resolve("pin"), "1234", "r--------", 5555, 5555);
        Pkcs11Pins.RefusedException e = assertThrows(Pkcs11Pins.RefusedException.class, () -> readAsService(pin));
        assertTrue(e.getMessage().contains("uid 5555"), e.getMessage());
    }

    @Test
    void writableByGroup_orDirectoryOpenToOthers_isRefused() throws IOException {
        dir("r-x------", 0, 0);
        Path pin = file(creds.resolve("pin"), "1234", "r---w----", 0, 0);
        assertThrows(Pkcs11Pins.RefusedException.class, () -> readAsService(pin));
        Path ok = file(creds.resolve("ok"), "1234", "r--------", 0, 0);
        dir("rwxr-xr-x", 0, 0);
        Pkcs11Pins.RefusedException e = assertThrows(Pkcs11Pins.RefusedException.class, () -> readAsService(ok));
        assertTrue(e.getMessage().contains("credentials directory"), e.getMessage());
    }

    @Test
    void symbolicLinkInCredentialsDirectory_isRefused() throws IOException {
        dir("rwx------", 0, 0);
        Path target = file(tmp.resolve("elsewhere"), "1234", "r--------", 0, 0);
        Path link = Files.createSymbolicLink(creds.resolve("pin"), target);
        assertThrows(Pkcs11Pins.RefusedException.class, () -> readAsService(link));
    }
}
