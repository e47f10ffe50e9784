package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.PublicKeyInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

@Command(name = "pubkey", description = "Print the public key of a SIGN key's version (default: the primary) as PEM.")
final class PublicKeyCommand extends DaemonCommand {
    @Parameters(index = "0", paramLabel = "KEY", description = "A SIGN key.")
    String key;

    @Option(names = "--version", paramLabel = "N", description = "The key version (default: the primary).")
    Integer version;

    @Option(names = "--out", paramLabel = "FILE", description = "Write the PEM to FILE.")
    Path out;

    @Override
    int run(Output output) throws KmsException, IOException {
        PublicKeyInfo p = version == null ? kms().getPublicKey(key) : kms().getPublicKey(key, version);
        if (out != null) {
            String pem = p.pem().endsWith("\n") ? p.pem() : p.pem() + "\n";
            Output.writeFile(out, pem.getBytes(StandardCharsets.US_ASCII), false);
        }
        if (output.json()) {
            var reply = ReplyJson.publicKey(p);
            if (out != null) {
                reply.remove("pem");
                reply.put("out", out.toString());
            }
            output.json(reply);
        } else if (out != null) {
            output.fields(new Output.Fields().add("key", p.key()).add("version", p.version())
                    .add("algorithm", p.algorithm()).add("pem", "written to " + out));
        } else {
            output.text(p.pem());
        }
        return Kmsctl.EXIT_OK;
    }
}
