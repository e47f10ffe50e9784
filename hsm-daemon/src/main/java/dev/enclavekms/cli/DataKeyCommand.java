package dev.enclavekms.cli;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.KmsException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** {@code kmsctl datakey generate}. */
@Command(name = "datakey", description = "Generate data keys (envelope encryption).",
        subcommands = {DataKeyCommand.Generate.class})
final class DataKeyCommand extends CommandGroup {

    @Command(name = "generate", description = {
            "Generate a data key under KEY's primary version; print it in the clear and encrypted (base64).",
            "Encrypt locally with the plaintext, store the ciphertext, forget the plaintext: "
                    + "'kmsctl decrypt' gives it back given the same context."})
    static final class Generate extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "KEY", description = "An ENCRYPT key.")
        String key;

        @Mixin
        ContextOptions context;

        @Option(names = "--bytes", paramLabel = "N", description = "Data key length in bytes (default 32).")
        Integer bytes;

        @Option(names = "--count", paramLabel = "N",
                description = "Generate N data keys under one key version and context (GenerateDataKeys).")
        Integer count;

        @Override
        int run(Output out) throws KmsException, IOException {
            Map<String, String> ctx = context.context();
            if (count == null) {
                DataKey dk = bytes == null ? kms().generateDataKey(key, ctx) : kms().generateDataKey(key, ctx, bytes);
                if (out.json()) {
                    out.json(ReplyJson.dataKey(dk));
                } else {
                    out.fields(new Output.Fields().add("key", dk.key()).add("version", dk.version())
                            .add("plaintext", ReplyJson.b64(dk.plaintext()))
                            .add("ciphertext", ReplyJson.b64(dk.ciphertext())));
                }
                return Kmsctl.EXIT_OK;
            }
            List<DataKey> keys = bytes == null ? kms().generateDataKeys(key, count, ctx)
                    : kms().generateDataKeys(key, count, ctx, bytes);
            // The reply names key and version once; every DataKey carries them.
            String name = keys.isEmpty() ? key : keys.getFirst().key();
            int version = keys.isEmpty() ? 0 : keys.getFirst().version();
            if (out.json()) {
                out.json(ReplyJson.dataKeys(keys, name, version));
                return Kmsctl.EXIT_OK;
            }
            out.fields(new Output.Fields().add("key", name).add("version", version));
            out.line("");
            List<List<String>> rows = new ArrayList<>();
            for (DataKey k : keys) {
                rows.add(List.of(ReplyJson.b64(k.plaintext()), ReplyJson.b64(k.ciphertext())));
            }
            out.table(List.of("PLAINTEXT", "CIPHERTEXT"), rows);
            return Kmsctl.EXIT_OK;
        }
    }
}
