package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.Signature;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Path;

@Command(name = "sign", description = {
        "Sign a message (--in FILE) or a digest you computed (--digest HEX or --digest-b64 B64; not for Ed25519) "
                + "with KEY's primary version.",
        "Prints the signature as base64, or writes it in binary to --out FILE. "
                + "--json also shows the version, which verify needs."})
final class SignCommand extends DaemonCommand {
    @Parameters(index = "0", paramLabel = "KEY", description = "A SIGN key.")
    String key;

    static final class Input {
        @Option(names = "--in", required = true, paramLabel = "FILE", description = "Sign the file's bytes ('-' for standard input).")
        Path in;

        @Option(names = "--digest", required = true, paramLabel = "HEX", description = "Sign this digest (hex).")
        String digestHex;

        @Option(names = "--digest-b64", required = true, paramLabel = "B64", description = "Sign this digest (base64).")
        String digestB64;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--out", paramLabel = "FILE", description = "Write the binary signature to FILE instead of printing base64.")
    Path out;

    @Override
    int run(Output output) throws KmsException, IOException {
        Signature s;
        if (input.in != null) {
            byte[] message = Inputs.read(env(), input.in);
            s = kms().sign(key, message);
        } else {
            byte[] digest = input.digestHex != null ? Inputs.hex(commandLine(), "--digest", input.digestHex)
                    : Inputs.base64(commandLine(), "--digest-b64", input.digestB64);
            s = kms().signDigest(key, digest);
        }
        if (out != null) {
            Output.writeFile(out, s.signature(), false);
        }
        if (output.json()) {
            var reply = ReplyJson.signature(s);
            if (out != null) {
                reply.remove("signature");
                reply.put("out", out.toString());
            }
            output.json(reply);
        } else if (out != null) {
            output.fields(new Output.Fields().add("key", s.key()).add("version", s.version())
                    .add("algorithm", s.algorithm())
                    .add("signature", "written to " + out + " (" + s.signature().length + " bytes)"));
        } else {
            output.line(ReplyJson.b64(s.signature()));
        }
        return Kmsctl.EXIT_OK;
    }
}
