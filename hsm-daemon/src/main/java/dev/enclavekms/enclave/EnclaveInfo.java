package dev.enclavekms.enclave;

/**
 * What a device says about itself. Not secret.
 *
 * @param kind "pkcs11" or "javacard"
 * @param freeSpace free object memory in bytes as reported, or -1 when unknown
 */
public record EnclaveInfo(String kind, String label, String manufacturer, String model, String serial,
                          String firmwareVersion, long freeSpace) {
}
