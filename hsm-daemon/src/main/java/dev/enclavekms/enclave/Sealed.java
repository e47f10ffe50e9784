package dev.enclavekms.enclave;

/**
 * An AEAD ciphertext as the enclave produced it: the IV it chose and the ciphertext with
 * its authentication tag appended. Not secret.
 */
public record Sealed(byte[] iv, byte[] ciphertext) {
    public Sealed {
        iv = iv.clone();
        ciphertext = ciphertext.clone();
    }

    @Override
    public byte[] iv() {
        return iv.clone();
    }

    @Override
    public byte[] ciphertext() {
        return ciphertext.clone();
    }
}
