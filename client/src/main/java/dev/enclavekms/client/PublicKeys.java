package dev.enclavekms.client;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Every verifiable version's public key of a SIGN key: the result of
 * {@link KmsClient#getPublicKeys}. A verifier that trusts this set accepts signatures of
 * old ENABLED versions and learns a PENDING version before its first signature.
 *
 * @param key       the key's name
 * @param algorithm e.g. {@code EC_P256_SHA256}
 * @param versions  the ENABLED and PENDING versions, as the daemon lists them (unmodifiable)
 */
public record PublicKeys(String key, String algorithm, List<PublicKeys.Version> versions) {
    public PublicKeys {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(algorithm, "algorithm");
        versions = List.copyOf(versions);
    }

    /**
     * One verifiable version.
     *
     * @param version the version number
     * @param state   {@code ENABLED} or {@code PENDING}
     * @param primary true for the version that signs now
     * @param pem     the SubjectPublicKeyInfo as PEM
     */
    public record Version(int version, String state, boolean primary, String pem) {
        public Version {
            Objects.requireNonNull(state, "state");
            Objects.requireNonNull(pem, "pem");
        }
    }

    /** The primary version, or empty when the daemon marked none. */
    public Optional<Version> primary() {
        return versions.stream().filter(Version::primary).findFirst();
    }

    /** Each version as a {@link PublicKeyInfo} (for {@link PublicKeyInfo#toPublicKey()}), in order. */
    public List<PublicKeyInfo> publicKeyInfos() {
        List<PublicKeyInfo> out = new ArrayList<>(versions.size());
        for (Version v : versions) {
            out.add(new PublicKeyInfo(key, v.version(), algorithm, v.pem()));
        }
        return List.copyOf(out);
    }
}
