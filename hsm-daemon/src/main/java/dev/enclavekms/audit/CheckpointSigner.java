package dev.enclavekms.audit;

import java.security.PublicKey;
import java.util.Map;

/**
 * Signs the audit log's checkpoints. The daemon's implementation is {@link AuditKeys}: ECDSA
 * P-256 with SHA-256 by a key inside the enclave, so that whoever can rewrite the log files
 * still cannot make checkpoints that verify with the exported public key.
 */
public interface CheckpointSigner {

    /** The JCA name verifiers use with {@link #publicKey()}: {@value}. */
    String JCA_ALGORITHM = "SHA256withECDSA";

    /**
     * Fields that name the signing key in every checkpoint: {@code key} (its name),
     * {@code key_version}, {@code key_id} ({@link AuditKeys#keyId}) and {@code algorithm}.
     */
    Map<String, Object> keyFields();

    /** A DER ECDSA signature over SHA-256 of {@code message}. */
    byte[] sign(byte[] message) throws Exception;

    PublicKey publicKey();
}
