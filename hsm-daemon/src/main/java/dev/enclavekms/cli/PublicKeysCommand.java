package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.PublicKeys;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

@Command(name = "pubkeys", description = {
        "Show the public keys of every verifiable version (ENABLED or PENDING) of a SIGN key, so that verifiers "
                + "can accept signatures of older versions and learn a PENDING version before its first signature.",
        "Prints a table and then each PEM; with --out-dir, writes each PEM to DIR/KEY-vN.pem ('/' in the key "
                + "name becomes '_') and prints the table with the file names."})
final class PublicKeysCommand extends DaemonCommand {
    @Parameters(index = "0", paramLabel = "KEY", description = "A SIGN key.")
    String key;

    @Option(names = "--out-dir", paramLabel = "DIR", description = "Write one PEM file per version into DIR (created if missing).")
    Path outDir;

    @Override
    int run(Output output) throws KmsException, IOException {
        PublicKeys keys = kms().getPublicKeys(key);
        List<String> files = new ArrayList<>();
        if (outDir != null) {
            try {
                Files.createDirectories(outDir);
            } catch (IOException e) {
                throw CliFailure.local("cannot create " + outDir + ": " + Inputs.reason(e));
            }
            for (PublicKeys.Version v : keys.versions()) {
                Path file = outDir.resolve(fileName(keys.key(), v.version()));
                String pem = v.pem().endsWith("\n") ? v.pem() : v.pem() + "\n";
                Output.writeFile(file, pem.getBytes(StandardCharsets.US_ASCII), false);
                files.add(file.toString());
            }
        }
        if (output.json()) {
            var reply = ReplyJson.publicKeys(keys);
            if (outDir != null) {
                @SuppressWarnings("unchecked")
                List<java.util.Map<String, Object>> versions = (List<java.util.Map<String, Object>>) reply.get("versions");
                for (int i = 0; i < versions.size(); i++) {
                    versions.get(i).remove("pem");
                    versions.get(i).put("out", files.get(i));
                }
            }
            output.json(reply);
            return Kmsctl.EXIT_OK;
        }
        output.fields(new Output.Fields().add("key", keys.key()).add("algorithm", keys.algorithm()));
        output.line("");
        List<String> headers = new ArrayList<>(List.of("VERSION", "STATE", "PRIMARY"));
        if (outDir != null) headers.add("FILE");
        List<List<String>> rows = new ArrayList<>();
        for (int i = 0; i < keys.versions().size(); i++) {
            PublicKeys.Version v = keys.versions().get(i);
            List<String> row = new ArrayList<>(List.of(String.valueOf(v.version()), v.state(), v.primary() ? "*" : ""));
            if (outDir != null) row.add(files.get(i));
            rows.add(row);
        }
        output.table(headers, rows);
        if (outDir == null) {
            for (PublicKeys.Version v : keys.versions()) {
                output.line("");
                output.line("# " + keys.key() + " version " + v.version() + " (" + v.state()
                        + (v.primary() ? ", primary" : "") + ")");
                output.text(v.pem());
            }
        }
        return Kmsctl.EXIT_OK;
    }

    /**
     * {@code KEY-vN.pem}. A key name may hold '/', which must not make a subdirectory (nor,
     * with "..", leave DIR): every character but letters, digits, '.', '_' and '-' becomes '_'.
     */
    static String fileName(String key, int version) {
        return key.replaceAll("[^A-Za-z0-9._-]", "_") + "-v" + version + ".pem";
    }
}
