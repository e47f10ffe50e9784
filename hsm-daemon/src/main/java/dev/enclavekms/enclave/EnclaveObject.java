package dev.enclavekms.enclave;

/**
 * One key object found on the device, with the attributes that decide whether it is
 * protected well enough to serve. For a key pair, one entry describes the private key.
 */
public record EnclaveObject(ObjectId id, String label, KeyAlgorithm algorithm, KeyProtection protection) {
}
