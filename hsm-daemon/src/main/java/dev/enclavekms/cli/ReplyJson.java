package dev.enclavekms.cli;

import dev.enclavekms.client.Ciphertext;
import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.DecryptResult;
import dev.enclavekms.client.KeyDescription;
import dev.enclavekms.client.KeySummary;
import dev.enclavekms.client.KeyVersionInfo;
import dev.enclavekms.client.Plaintext;
import dev.enclavekms.client.PublicKeyInfo;
import dev.enclavekms.client.PublicKeys;
import dev.enclavekms.client.ReEncrypted;
import dev.enclavekms.client.ServiceInfo;
import dev.enclavekms.client.Signature;
import dev.enclavekms.client.Status;

import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The client's results turned back into the shape of the varlink reply they came from
 * (same field names, base64 for bytes), for {@code --json}: a script reading kmsctl's
 * JSON reads what docs/protocol.md describes.
 */
final class ReplyJson {
    private ReplyJson() {
    }

    static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static Map<String, Object> dataKey(DataKey k) {
        return map("key", k.key(), "version", k.version(), "plaintext", b64(k.plaintext()), "ciphertext", b64(k.ciphertext()));
    }

    static Map<String, Object> dataKeys(List<DataKey> keys, String key, int version) {
        List<Object> list = new ArrayList<>();
        for (DataKey k : keys) list.add(map("plaintext", b64(k.plaintext()), "ciphertext", b64(k.ciphertext())));
        return map("key", key, "version", version, "keys", list);
    }

    static Map<String, Object> ciphertext(Ciphertext c) {
        return map("key", c.key(), "version", c.version(), "ciphertext", b64(c.ciphertext()));
    }

    static Map<String, Object> plaintext(Plaintext p) {
        return map("key", p.key(), "version", p.version(), "plaintext", b64(p.plaintext()));
    }

    static Map<String, Object> decryptResults(List<DecryptResult> results) {
        List<Object> list = new ArrayList<>();
        for (DecryptResult r : results) {
            list.add(switch (r) {
                case Plaintext p -> map("plaintext", b64(p.plaintext()), "key", p.key(), "version", p.version());
                case DecryptResult.Failure f -> {
                    Map<String, Object> m = map("error", f.error(), "message", f.message());
                    if (f.key() != null) m.put("key", f.key());
                    if (f.version() != null) m.put("version", f.version());
                    yield m;
                }
            });
        }
        return map("results", list);
    }

    static Map<String, Object> signature(Signature s) {
        return map("key", s.key(), "version", s.version(), "algorithm", s.algorithm(), "signature", b64(s.signature()));
    }

    static Map<String, Object> publicKey(PublicKeyInfo p) {
        return map("key", p.key(), "version", p.version(), "algorithm", p.algorithm(), "pem", p.pem());
    }

    static Map<String, Object> status(Status s) {
        Status.Enclave e = s.enclave();
        return map("version", s.version(), "uptime_seconds", s.uptimeSeconds(),
                "enclave", map("kind", e.kind(), "label", e.label(), "manufacturer", e.manufacturer(),
                        "model", e.model(), "serial", e.serial()),
                "keys", s.keys(), "key_versions", s.keyVersions(), "orphans", s.orphans(), "missing", s.missing());
    }

    /** The {@code key} object of CreateKey/DescribeKey replies (callers wrap it as {@code {"key": ...}}). */
    static Map<String, Object> key(KeyDescription k) {
        List<Object> versions = new ArrayList<>();
        for (KeyVersionInfo v : k.versions()) {
            Map<String, Object> m = map("version", v.version(), "state", v.state(), "created", v.created().toString(),
                    "state_changed", v.stateChanged().toString());
            if (v.destroyAt() != null) m.put("destroy_at", v.destroyAt().toString());
            m.put("encryptions", v.encryptions());
            m.put("object_id", v.objectId());
            if (v.pkcs11Uri() != null) m.put("pkcs11_uri", v.pkcs11Uri());
            versions.add(m);
        }
        Map<String, Object> m = map("name", k.name(), "purpose", k.purpose(), "algorithm", k.algorithm(),
                "description", k.description(), "created", k.created().toString(), "primary_version", k.primaryVersion(),
                "required_context", k.requiredContext());
        if (k.rotationPeriod() != null) m.put("rotation_period_seconds", k.rotationPeriod().getSeconds());
        if (k.nextRotation() != null) m.put("next_rotation", k.nextRotation().toString());
        m.put("destroy_wait_days", k.destroyWaitDays());
        m.put("versions", versions);
        return m;
    }

    static Map<String, Object> reEncrypted(ReEncrypted r) {
        return map("key", r.key(), "version", r.version(), "source_key", r.sourceKey(),
                "source_version", r.sourceVersion(), "rewrapped", r.rewrapped(), "ciphertext", b64(r.ciphertext()));
    }

    static Map<String, Object> publicKeys(PublicKeys p) {
        List<Object> versions = new ArrayList<>();
        for (PublicKeys.Version v : p.versions()) {
            versions.add(map("version", v.version(), "state", v.state(), "primary", v.primary(), "pem", v.pem()));
        }
        return map("key", p.key(), "algorithm", p.algorithm(), "versions", versions);
    }

    static Map<String, Object> keys(List<KeySummary> keys) {
        List<Object> list = new ArrayList<>();
        for (KeySummary k : keys) {
            list.add(map("name", k.name(), "purpose", k.purpose(), "algorithm", k.algorithm(),
                    "primary_version", k.primaryVersion(), "versions", k.versions()));
        }
        return map("keys", list);
    }

    static Map<String, Object> info(ServiceInfo i) {
        return map("vendor", i.vendor(), "product", i.product(), "version", i.version(), "url", i.url(),
                "interfaces", i.interfaces());
    }
}
