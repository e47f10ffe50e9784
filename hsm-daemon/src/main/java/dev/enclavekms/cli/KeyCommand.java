package dev.enclavekms.cli;

import dev.enclavekms.client.KeyDescription;
import dev.enclavekms.client.KeySummary;
import dev.enclavekms.client.KeyVersionInfo;
import dev.enclavekms.client.KmsException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** {@code kmsctl key create|list|describe}: the Admin interface. Needs an admin grant. */
@Command(name = "key", description = "Create and inspect keys (dev.enclavekms.Admin; needs an admin grant).",
        subcommands = {KeyCommand.Create.class, KeyCommand.ListKeys.class, KeyCommand.Describe.class})
final class KeyCommand extends CommandGroup {

    static void print(Output out, KeyDescription k) {
        if (out.json()) {
            out.json(ReplyJson.map("key", ReplyJson.key(k)));
            return;
        }
        out.fields(new Output.Fields()
                .add("name", k.name())
                .add("purpose", k.purpose())
                .add("algorithm", k.algorithm())
                .add("description", k.description().isEmpty() ? "-" : k.description())
                .add("created", k.created())
                .add("primary version", k.primaryVersion())
                .add("required context", Output.list(k.requiredContext())));
        out.line("");
        List<List<String>> rows = new ArrayList<>();
        for (KeyVersionInfo v : k.versions()) {
            rows.add(List.of(v.version() + (v.version() == k.primaryVersion() ? " *" : ""), v.state(),
                    v.created().toString(), v.objectId()));
        }
        out.table(List.of("VERSION", "STATE", "CREATED", "OBJECT ID"), rows);
    }

    @Command(name = "create", description = "Create a key and its first version inside the enclave.")
    static final class Create extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "The new key's name.")
        String name;

        @Option(names = "--purpose", required = true, paramLabel = "ENCRYPT|SIGN",
                description = "What the key is for.")
        String purpose;

        @Option(names = "--algorithm", paramLabel = "ALG", description = "AES_256_GCM (default for ENCRYPT), "
                + "EC_P256_SHA256 (default for SIGN), EC_P384_SHA384, ED25519 or RSA_3072_PSS_SHA256.")
        String algorithm;

        @Option(names = "--description", paramLabel = "TEXT", description = "Free text shown by describe.")
        String description;

        @Option(names = "--require-context", paramLabel = "KEY",
                description = "A context key every Encrypt/Decrypt call must carry (repeatable).")
        List<String> requiredContext = new ArrayList<>();

        @Override
        int run(Output out) throws KmsException, IOException {
            print(out, kms().createKey(name, purpose.toUpperCase(Locale.ROOT),
                    algorithm == null ? null : algorithm.toUpperCase(Locale.ROOT), description, requiredContext));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "list", description = "List the keys you may see.")
    static final class ListKeys extends DaemonCommand {
        @Override
        int run(Output out) throws KmsException, IOException {
            List<KeySummary> keys = kms().listKeys();
            if (out.json()) {
                out.json(ReplyJson.keys(keys));
                return Kmsctl.EXIT_OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (KeySummary k : keys) {
                rows.add(List.of(k.name(), k.purpose(), k.algorithm(), String.valueOf(k.primaryVersion()),
                        String.valueOf(k.versions())));
            }
            out.table(List.of("NAME", "PURPOSE", "ALGORITHM", "PRIMARY", "VERSIONS"), rows);
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "describe", description = "Show a key's metadata and versions (* marks the primary).")
    static final class Describe extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "The key's name.")
        String name;

        @Override
        int run(Output out) throws KmsException, IOException {
            print(out, kms().describeKey(name));
            return Kmsctl.EXIT_OK;
        }
    }
}
