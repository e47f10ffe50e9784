package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.ServiceInfo;
import picocli.CommandLine.Command;

import java.io.IOException;

@Command(name = "info", description = "Show what the daemon is and which varlink interfaces it serves (org.varlink.service.GetInfo).")
final class InfoCommand extends DaemonCommand {
    @Override
    int run(Output out) throws KmsException, IOException {
        ServiceInfo i = kms().getInfo();
        if (out.json()) {
            out.json(ReplyJson.info(i));
            return Kmsctl.EXIT_OK;
        }
        out.fields(new Output.Fields().add("vendor", i.vendor()).add("product", i.product())
                .add("version", i.version()).add("url", i.url()).add("interfaces", Output.list(i.interfaces())));
        return Kmsctl.EXIT_OK;
    }
}
