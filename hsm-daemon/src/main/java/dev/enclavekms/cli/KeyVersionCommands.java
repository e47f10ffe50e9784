package dev.enclavekms.cli;

import dev.enclavekms.client.KeyDescription;
import dev.enclavekms.client.KmsException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;

/**
 * {@code kmsctl key rotate|promote|enable|disable|revoke|schedule-destruction|cancel-destruction}:
 * the version lifecycle. Each prints the versions table as the change left it. The two
 * that lose something for good unless someone acts (revoke, schedule-destruction) ask
 * for confirmation (see {@link Confirmation}).
 */
final class KeyVersionCommands {
    private KeyVersionCommands() {
    }

    /** A command on one version of one key. */
    abstract static class OnVersion extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "The key's name.")
        String name;

        @Parameters(index = "1", paramLabel = "VERSION", description = "The version number.")
        int version;

        String subject() {
            return "version " + version + " of key '" + name + "'";
        }
    }

    @Command(name = "rotate", description = {
            "Create a new version inside the enclave and make it primary.",
            "Older ENABLED versions keep decrypting and verifying but no longer encrypt or sign. "
                    + "With --pending (SIGN keys), the new version is published but not used until promoted."})
    static final class Rotate extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "The key's name.")
        String name;

        @Option(names = "--pending", description = "SIGN keys: leave the new version PENDING (its public key is "
                + "published; the current primary keeps signing until 'key promote').")
        boolean pending;

        @Override
        int run(Output out) throws KmsException, IOException {
            KeyTables.versions(out, kms().rotateKey(name, pending));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "promote", description = "Make a PENDING version ENABLED and primary.")
    static final class Promote extends OnVersion {
        @Override
        int run(Output out) throws KmsException, IOException {
            KeyTables.versions(out, kms().promoteKeyVersion(name, version));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "enable", description = "Make a DISABLED version ENABLED again.")
    static final class Enable extends OnVersion {
        @Override
        int run(Output out) throws KmsException, IOException {
            KeyTables.versions(out, kms().enableKeyVersion(name, version));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "disable", description = "Make an ENABLED version DISABLED (reversible with 'key enable'); "
            + "its ciphertexts and signatures are refused meanwhile. Not the primary.")
    static final class Disable extends OnVersion {
        @Override
        int run(Output out) throws KmsException, IOException {
            KeyTables.versions(out, kms().disableKeyVersion(name, version));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "revoke", description = {
            "Revoke an ENABLED or DISABLED version. IRREVERSIBLE: it no longer decrypts or verifies for ordinary "
                    + "callers; only ReEncrypt with the re-encryption grant (e.g. 'kmsctl rewrap') can still use it "
                    + "to migrate data. Not the primary: rotate first.",
            "Asks for confirmation unless --yes is given; without a terminal, --yes is required."})
    static final class Revoke extends OnVersion {
        @Option(names = "--yes", description = "Do not ask for confirmation.")
        boolean yes;

        @Override
        int run(Output out) throws KmsException, IOException {
            Confirmation.require(env(), commandLine(), yes, "revoke " + subject(),
                    "Revoking " + subject() + " cannot be undone: it will no longer decrypt or verify for ordinary\n"
                            + "callers. Data under it can still be moved with 'kmsctl rewrap' by a caller with the\n"
                            + "re-encryption grant.");
            KeyTables.versions(out, kms().revokeKeyVersion(name, version));
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "schedule-destruction", description = {
            "Schedule the destruction of a version after a waiting period (default: the key's). Until then it is "
                    + "unusable and 'key cancel-destruction' brings it back (DISABLED); after it, the hardware object "
                    + "is destroyed and everything encrypted or signed under the version is lost for good. "
                    + "Not the primary.",
            "Asks for confirmation unless --yes is given; without a terminal, --yes is required."})
    static final class ScheduleDestruction extends OnVersion {
        @Option(names = "--wait-days", paramLabel = "N",
                description = "Days to wait (default: the key's destroy wait; never below 7).")
        Integer waitDays;

        @Option(names = "--yes", description = "Do not ask for confirmation.")
        boolean yes;

        @Override
        int run(Output out) throws KmsException, IOException {
            String when = waitDays == null ? "the key's waiting period" : waitDays + (waitDays == 1 ? " day" : " days");
            Confirmation.require(env(), commandLine(), yes, "schedule the destruction of " + subject(),
                    "After " + when + ", " + subject() + " is destroyed in the hardware: everything encrypted\n"
                            + "or signed under it is lost for good. Until then 'kmsctl key cancel-destruction "
                            + name + " " + version + "' undoes this.");
            KeyDescription k = kms().scheduleKeyVersionDestruction(name, version, waitDays);
            KeyTables.versions(out, k);
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "cancel-destruction", description = "Cancel a scheduled destruction: the version becomes "
            + "DISABLED (never straight ENABLED; 'key enable' does that).")
    static final class CancelDestruction extends OnVersion {
        @Override
        int run(Output out) throws KmsException, IOException {
            KeyTables.versions(out, kms().cancelKeyVersionDestruction(name, version));
            return Kmsctl.EXIT_OK;
        }
    }
}
