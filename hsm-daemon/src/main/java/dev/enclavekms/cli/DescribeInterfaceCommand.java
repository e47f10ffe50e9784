package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.io.IOException;

@Command(name = "describe-interface",
        description = "Print the varlink IDL of an interface the daemon serves (org.varlink.service.GetInterfaceDescription).")
final class DescribeInterfaceCommand extends DaemonCommand {
    @Parameters(index = "0", paramLabel = "NAME", description = "e.g. dev.enclavekms.Kms, dev.enclavekms.Admin.")
    String name;

    @Override
    int run(Output out) throws KmsException, IOException {
        String description = kms().getInterfaceDescription(name);
        if (out.json()) {
            out.json(ReplyJson.map("description", description));
        } else {
            out.text(description);
        }
        return Kmsctl.EXIT_OK;
    }
}
