package dev.enclavekms.client;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class SocketLocatorTest {
    @Test
    void variableSet_winsOverDefault() {
        assertEquals(Path.of("/tmp/x.sock"), SocketLocator.locate(Map.of("ENCLAVE_KMS_SOCKET", "/tmp/x.sock")));
    }

    @Test
    void variableUnset_givesRunPath() {
        assertEquals(Path.of("/run/enclave-kms/kms.sock"), SocketLocator.locate(Map.of()));
    }

    @Test
    void variableBlank_isTreatedAsUnset() {
        assertEquals(Path.of("/run/enclave-kms/kms.sock"), SocketLocator.locate(Map.of("ENCLAVE_KMS_SOCKET", " ")));
    }
}
