package dev.enclavekms.cli;

import dev.enclavekms.client.Ciphertext;
import dev.enclavekms.client.KmsException;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

@Command(name = "encrypt", description = {
        "Encrypt a small secret (at most 64 KiB) under KEY's primary version.",
        "Reads --in FILE, --text TEXT, or standard input; prints the ciphertext envelope as base64, "
                + "or writes it in binary to --out FILE."})
final class EncryptCommand extends DaemonCommand {
    @Parameters(index = "0", paramLabel = "KEY", description = "An ENCRYPT key.")
    String key;

    @Mixin
    ContextOptions context;

    static final class Source {
        @Option(names = "--in", paramLabel = "FILE", description = "Encrypt the file's bytes ('-' for standard input).")
        Path in;

        @Option(names = "--text", paramLabel = "TEXT", description = "Encrypt TEXT (UTF-8).")
        String text;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    Source source;

    @Option(names = "--out", paramLabel = "FILE", description = "Write the binary envelope to FILE instead of printing base64.")
    Path out;

    @Override
    int run(Output output) throws KmsException, IOException {
        Map<String, String> ctx = context.context();
        byte[] plaintext;
        if (source != null && source.text != null) {
            plaintext = source.text.getBytes(StandardCharsets.UTF_8);
        } else if (source != null && source.in != null) {
            plaintext = Inputs.read(env(), source.in);
        } else {
            plaintext = Inputs.readStdin(env());
        }
        Ciphertext c = kms().encrypt(key, plaintext, ctx);
        java.util.Arrays.fill(plaintext, (byte) 0);
        if (out != null) {
            Output.writeFile(out, c.ciphertext(), false);
        }
        if (output.json()) {
            var reply = ReplyJson.ciphertext(c);
            if (out != null) {
                reply.remove("ciphertext");
                reply.put("out", out.toString());
            }
            output.json(reply);
        } else if (out != null) {
            output.fields(new Output.Fields().add("key", c.key()).add("version", c.version())
                    .add("ciphertext", "written to " + out + " (" + c.ciphertext().length + " bytes)"));
        } else {
            output.line(ReplyJson.b64(c.ciphertext()));
        }
        return Kmsctl.EXIT_OK;
    }
}
