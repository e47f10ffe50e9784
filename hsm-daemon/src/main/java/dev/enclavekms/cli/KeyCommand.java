package dev.enclavekms.cli;

import dev.enclavekms.client.KeySummary;
import dev.enclavekms.client.KmsException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code kmsctl key ...}: the Admin interface. Needs an admin grant. The version
 * lifecycle commands (rotate, promote, enable, ...) are in {@link KeyVersionCommands}.
 */
@Command(name = "key", description = "Create, inspect, rotate and retire keys (dev.enclavekms.Admin; needs an admin grant).",
        subcommands = {KeyCommand.Create.class, KeyCommand.ListKeys.class, KeyCommand.Describe.class,
                KeyCommand.Versions.class, KeyCommand.Update.class,
                KeyVersionCommands.Rotate.class, KeyVersionCommands.Promote.class, KeyVersionCommands.Enable.class,
                KeyVersionCommands.Disable.class, KeyVersionCommands.Revoke.class,
                KeyVersionCommands.ScheduleDestruction.class, KeyVersionCommands.CancelDestruction.class})
final class KeyCommand extends CommandGroup {

    @Command(name = "create", description = "Create a key and its first version inside the enclave.")
    static final class Create extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "The new key's name.")
        String name;

        @Option(names = "--purpose", required = true, paramLabel = "ENCRYPT|SIGN|CERT_AUTHORITY|TLS_SERVER|TLS_CLIENT",
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

        @Option(names = "--rotation-period", paramLabel = "DURATION", converter = Durations.Converter.class,
                description = "Rotate automatically this often, e.g. 90d, 12h, 1d12h (at least 1h); "
                        + "0 or absent: only on demand (and at the usage limit).")
        Duration rotationPeriod;

        @Option(names = "--destroy-wait-days", paramLabel = "N",
                description = "Days between scheduling a version's destruction and the destruction "
                        + "(7 to 3650; default: the daemon's, 30).")
        Integer destroyWaitDays;

        @Override
        int run(Output out) throws KmsException, IOException {
            KeyTables.describe(out, kms().createKey(name, purpose.toUpperCase(Locale.ROOT),
                    algorithm == null ? null : algorithm.toUpperCase(Locale.ROOT), description, requiredContext,
                    rotationPeriod, destroyWaitDays));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "list", description = "List the keys you may see (the daemon's own keys, named '_...', only with --all).")
    static final class ListKeys extends DaemonCommand {
        @Option(names = "--all", description = "Also list the daemon's own keys (_audit/..., _sessions/...).")
        boolean all;

        @Override
        int run(Output out) throws KmsException, IOException {
            // The daemon's own keys are listed to callers whose grants cover them (an
            // operator should be able to find them), but they are not what "my keys" means
            // and nobody can use them, so the everyday listing leaves them out.
            List<KeySummary> keys = kms().listKeys().stream()
                    .filter(k -> all || !k.name().startsWith("_"))
                    .toList();
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

    @Command(name = "describe", description = "Show a key's metadata, lifecycle policy and versions (* marks the primary).")
    static final class Describe extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "The key's name.")
        String name;

        @Override
        int run(Output out) throws KmsException, IOException {
            KeyTables.describe(out, kms().describeKey(name));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "versions", description = "Show a key's versions and their states (* marks the primary).")
    static final class Versions extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "The key's name.")
        String name;

        @Override
        int run(Output out) throws KmsException, IOException {
            KeyTables.versions(out, kms().describeKey(name));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "update", description = "Change a key's automatic rotation period or destruction waiting period.")
    static final class Update extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "The key's name.")
        String name;

        @Option(names = "--rotation-period", paramLabel = "DURATION", converter = Durations.Converter.class,
                description = "Rotate automatically this often, e.g. 90d, 12h, 1d12h (at least 1h); 0 turns it off.")
        Duration rotationPeriod;

        @Option(names = "--destroy-wait-days", paramLabel = "N",
                description = "Days between scheduling a version's destruction and the destruction (7 to 3650). "
                        + "Destructions already scheduled keep their date.")
        Integer destroyWaitDays;

        @Override
        int run(Output out) throws KmsException, IOException {
            if (rotationPeriod == null && destroyWaitDays == null) {
                throw new ParameterException(commandLine(),
                        "nothing to update: give --rotation-period and/or --destroy-wait-days");
            }
            KeyTables.policy(out, kms().updateKeyPolicy(name, rotationPeriod, destroyWaitDays));
            return Kmsctl.EXIT_OK;
        }
    }
}
