package dev.enclavekms.cli;

import dev.enclavekms.client.PublicKeys;
import dev.enclavekms.json.Json;
import dev.enclavekms.json.JsonException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A SIGN key's published public keys saved to a file: what {@code kmsctl pubkeys KEY --json}
 * prints (the Kms.GetPublicKeys reply: key, algorithm, versions with state and PEM), so that
 * a verifier needs no daemon.
 */
final class PublicKeysFile {
    /** Far more than any key's versions need; the file is read whole. */
    private static final int MAX_BYTES = 4 << 20;

    private PublicKeysFile() {
    }

    static PublicKeys read(Path file) {
        byte[] bytes;
        try (InputStream in = Files.newInputStream(file)) {
            bytes = in.readNBytes(MAX_BYTES + 1);
        } catch (IOException e) {
            throw CliFailure.local("cannot read " + file + ": " + Inputs.reason(e));
        }
        if (bytes.length > MAX_BYTES) {
            throw CliFailure.local(file + " is larger than " + MAX_BYTES + " bytes: not a public keys file");
        }
        try {
            Map<String, Object> o = Json.parseObject(new String(bytes, StandardCharsets.UTF_8));
            List<PublicKeys.Version> versions = new ArrayList<>();
            if (!(o.get("versions") instanceof List<?> list)) {
                throw new IllegalArgumentException("no versions");
            }
            for (Object item : list) {
                if (!(item instanceof Map<?, ?> v) || !(v.get("version") instanceof Long n) || n < 1
                        || n > Integer.MAX_VALUE || !(v.get("state") instanceof String state)
                        || !(v.get("pem") instanceof String pem)) {
                    throw new IllegalArgumentException("a version lacks version, state or pem");
                }
                versions.add(new PublicKeys.Version(n.intValue(), state, Boolean.TRUE.equals(v.get("primary")), pem));
            }
            if (!(o.get("key") instanceof String key) || !(o.get("algorithm") instanceof String algorithm)) {
                throw new IllegalArgumentException("no key or algorithm");
            }
            return new PublicKeys(key, algorithm, versions);
        } catch (JsonException | IllegalArgumentException e) {
            throw CliFailure.local(file + " is not a public keys file as 'kmsctl pubkeys KEY --json' writes it: "
                    + e.getMessage());
        }
    }
}
