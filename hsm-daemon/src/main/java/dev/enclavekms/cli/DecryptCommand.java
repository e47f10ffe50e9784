package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.Plaintext;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

@Command(name = "decrypt", description = {
        "Decrypt a ciphertext envelope (from encrypt, or a data key's ciphertext); the envelope names its key.",
        "Reads CIPHERTEXT_B64, --in FILE (binary or base64), or standard input (binary or base64); "
                + "writes the plaintext as is to standard output or --out FILE, or as base64 with --base64."})
final class DecryptCommand extends DaemonCommand {
    @Parameters(index = "0", arity = "0..1", paramLabel = "CIPHERTEXT_B64", description = "The envelope as base64.")
    String ciphertext;

    @Option(names = "--in", paramLabel = "FILE", description = "Read the envelope from FILE, binary or base64 ('-' for standard input).")
    Path in;

    @Mixin
    ContextOptions context;

    static final class Destination {
        @Option(names = "--out", paramLabel = "FILE",
                description = "Write the plaintext to FILE (created readable by you only).")
        Path out;

        @Option(names = "--base64", description = "Print the plaintext as base64.")
        boolean base64;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    Destination destination = new Destination();

    @Override
    int run(Output output) throws KmsException, IOException {
        if (ciphertext != null && in != null) {
            throw new ParameterException(commandLine(), "give either CIPHERTEXT_B64 or --in FILE, not both");
        }
        byte[] envelope;
        if (ciphertext != null) {
            envelope = Inputs.base64(commandLine(), "CIPHERTEXT_B64", ciphertext);
        } else if (in != null) {
            envelope = Inputs.binaryOrBase64(Inputs.read(env(), in));
        } else {
            envelope = Inputs.binaryOrBase64(Inputs.readStdin(env()));
        }
        Map<String, String> ctx = context.context();
        Plaintext p = kms().decrypt(envelope, ctx);
        Path out = destination.out;
        try {
            if (out != null) {
                Output.writeFile(out, p.plaintext(), true);
            }
            if (output.json()) {
                var reply = ReplyJson.plaintext(p);
                if (out != null) {
                    reply.remove("plaintext");
                    reply.put("out", out.toString());
                }
                output.json(reply);
            } else if (out != null) {
                output.fields(new Output.Fields().add("key", p.key()).add("version", p.version())
                        .add("plaintext", "written to " + out + " (" + p.plaintext().length + " bytes)"));
            } else if (destination.base64) {
                output.line(ReplyJson.b64(p.plaintext()));
            } else {
                output.raw(p.plaintext());
            }
        } finally {
            java.util.Arrays.fill(p.plaintext(), (byte) 0);
        }
        return Kmsctl.EXIT_OK;
    }
}
