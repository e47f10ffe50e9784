package dev.enclavekms.enclave;

import java.util.ArrayList;
import java.util.List;

/**
 * The protection attributes of a key object as read back from the device (for a key
 * pair, those of the private key). {@link #weaknesses()} lists every way in which the
 * object is weaker than the template the daemon generates with; the daemon refuses to
 * serve a key with any weakness.
 */
public record KeyProtection(boolean token, boolean isPrivate, boolean sensitive, boolean alwaysSensitive,
                            boolean extractable, boolean neverExtractable, boolean modifiable,
                            boolean copyable, boolean derive, boolean encrypt, boolean decrypt,
                            boolean wrap, boolean unwrap, boolean sign) {

    /** Human-readable reasons this key must not be served; empty when it is sound. */
    public List<String> weaknesses(KeyAlgorithm algorithm) {
        List<String> w = new ArrayList<>();
        if (!token) w.add("not a token object (CKA_TOKEN=false)");
        if (!isPrivate) w.add("readable without login (CKA_PRIVATE=false)");
        if (!sensitive) w.add("not sensitive (CKA_SENSITIVE=false)");
        if (!alwaysSensitive) w.add("was not always sensitive (CKA_ALWAYS_SENSITIVE=false)");
        if (extractable) w.add("extractable (CKA_EXTRACTABLE=true)");
        if (!neverExtractable) w.add("was once extractable (CKA_NEVER_EXTRACTABLE=false)");
        if (modifiable) w.add("modifiable (CKA_MODIFIABLE=true): usage flags could be added");
        if (copyable) w.add("copyable (CKA_COPYABLE=true)");
        if (derive) w.add("can derive keys (CKA_DERIVE=true)");
        if (wrap && decrypt) w.add("can both wrap and decrypt: wrapped keys could be decrypted");
        if (unwrap && encrypt) w.add("can both unwrap and encrypt: chosen keys could be imported");
        if (algorithm.macs()) {
            if (encrypt || decrypt) w.add("an HMAC key must not encrypt or decrypt (CKA_ENCRYPT/CKA_DECRYPT=true)");
            if (wrap || unwrap) w.add("an HMAC key must not wrap or unwrap (CKA_WRAP/CKA_UNWRAP=true)");
        } else if (algorithm.kind() == KeyAlgorithm.Kind.SECRET) {
            if (wrap || unwrap) w.add("a master key must not wrap or unwrap (CKA_WRAP/CKA_UNWRAP=true)");
            if (sign) w.add("a master key must not sign (CKA_SIGN=true)");
        } else {
            if (decrypt || unwrap) w.add("a signing key must not decrypt or unwrap");
        }
        return w;
    }
}
