package dev.enclavekms.enclave.pkcs11;

/**
 * Every test of {@link Pkcs11EnclaveTest} (and so of the enclave contract) again with the hot
 * calls through the IAIK wrapper, the binding the bench's {@code direct} baseline uses.
 */
class Pkcs11EnclaveWrapperTest extends Pkcs11EnclaveTest {

    @Override
    protected Pkcs11Binding binding() {
        return Pkcs11Binding.WRAPPER;
    }
}
