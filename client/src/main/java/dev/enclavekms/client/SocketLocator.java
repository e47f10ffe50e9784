package dev.enclavekms.client;

import java.nio.file.Path;
import java.util.Map;

/**
 * Where the daemon's socket is, by the one rule that the Java client and kmsctl share:
 * {@code $ENCLAVE_KMS_SOCKET} when it is set and not empty, else
 * {@value #DEFAULT_SOCKET} (the path the systemd units create).
 */
public final class SocketLocator {
    /** The environment variable naming the socket. */
    public static final String ENV_VARIABLE = "ENCLAVE_KMS_SOCKET";
    /** The socket of a daemon installed on the host. */
    public static final String DEFAULT_SOCKET = "/run/enclave-kms/kms.sock";

    private SocketLocator() {
    }

    /** The socket for this process's environment. Never null; the file may not exist. */
    public static Path locate() {
        return locate(System.getenv());
    }

    /**
     * The socket for the given environment (tests and tools pass their own).
     *
     * @param environment variable name to value; never null
     * @return {@code $ENCLAVE_KMS_SOCKET} if set and not blank, else {@value #DEFAULT_SOCKET}
     */
    public static Path locate(Map<String, String> environment) {
        String v = environment.get(ENV_VARIABLE);
        return v == null || v.isBlank() ? Path.of(DEFAULT_SOCKET) : Path.of(v);
    }
}
