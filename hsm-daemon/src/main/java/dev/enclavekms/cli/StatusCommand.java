package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.Status;
import picocli.CommandLine.Command;

import java.io.IOException;

@Command(name = "status", description = "Show the daemon's health: version, uptime, enclave, key counts, "
        + "and hardware objects the registry does not know (orphans) or lacks (missing).")
final class StatusCommand extends DaemonCommand {
    @Override
    int run(Output out) throws KmsException, IOException {
        Status s = kms().status();
        if (out.json()) {
            out.json(ReplyJson.status(s));
            return Kmsctl.EXIT_OK;
        }
        Status.Enclave e = s.enclave();
        out.fields(new Output.Fields()
                .add("version", s.version())
                .add("uptime", Output.duration(s.uptimeSeconds()))
                .add("enclave", e.kind())
                .add("  label", e.label())
                .add("  manufacturer", e.manufacturer())
                .add("  model", e.model())
                .add("  serial", e.serial())
                .add("keys", s.keys())
                .add("key versions", s.keyVersions())
                .add("orphans", Output.list(s.orphans()))
                .add("missing", Output.list(s.missing())));
        return Kmsctl.EXIT_OK;
    }
}
