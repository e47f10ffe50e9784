package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.ReEncrypted;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

@Command(name = "reencrypt", description = {
        "Move a ciphertext envelope to the primary version of its key (or of --to-key) inside the daemon: "
                + "the plaintext never leaves it.",
        "Reads CIPHERTEXT_B64, --in FILE (binary or base64), or standard input (binary or base64); prints the new "
                + "envelope as base64, or writes it in binary to --out FILE. An envelope already on the primary "
                + "version comes back unchanged (--json says \"rewrapped\": false). For files and directories of "
                + "envelopes, see 'kmsctl rewrap'."})
final class ReEncryptCommand extends DaemonCommand {
    @Parameters(index = "0", arity = "0..1", paramLabel = "CIPHERTEXT_B64", description = "The envelope as base64.")
    String ciphertext;

    @Option(names = "--in", paramLabel = "FILE", description = "Read the envelope from FILE, binary or base64 ('-' for standard input).")
    Path in;

    @Mixin
    ContextOptions context;

    @Option(names = "--to-key", paramLabel = "KEY", description = "Move to this key's primary version (default: the envelope's own key).")
    String toKey;

    @Option(names = "--new-context", paramLabel = "KEY=VALUE", converter = ContextOptions.EntryConverter.class,
            description = "Bind the new envelope to this context instead of the old one (repeatable).")
    List<ContextOptions.Entry> newContext = new ArrayList<>();

    @Option(names = "--out", paramLabel = "FILE", description = "Write the binary envelope to FILE instead of printing base64.")
    Path out;

    @Override
    int run(Output output) throws KmsException, IOException {
        if (ciphertext != null && in != null) {
            throw new ParameterException(commandLine(), "give either CIPHERTEXT_B64 or --in FILE, not both");
        }
        Map<String, String> ctx = context.context();
        Map<String, String> newCtx = ContextOptions.toMap(commandLine(), "--new-context", newContext);
        byte[] envelope;
        if (ciphertext != null) {
            envelope = Inputs.base64(commandLine(), "CIPHERTEXT_B64", ciphertext);
        } else if (in != null) {
            envelope = Inputs.binaryOrBase64(Inputs.read(env(), in));
        } else {
            envelope = Inputs.binaryOrBase64(Inputs.readStdin(env()));
        }
        ReEncrypted r = kms().reEncrypt(envelope, ctx, toKey, newCtx);
        if (out != null) {
            Output.writeFile(out, r.ciphertext(), false);
        }
        if (output.json()) {
            var reply = ReplyJson.reEncrypted(r);
            if (out != null) {
                reply.remove("ciphertext");
                reply.put("out", out.toString());
            }
            output.json(reply);
        } else if (out != null) {
            output.fields(new Output.Fields().add("key", r.key()).add("version", r.version())
                    .add("source", r.sourceKey() + " version " + r.sourceVersion())
                    .add("rewrapped", r.rewrapped() ? "yes" : "no (already on the primary version)")
                    .add("ciphertext", "written to " + out + " (" + r.ciphertext().length + " bytes)"));
        } else {
            output.line(ReplyJson.b64(r.ciphertext()));
        }
        return Kmsctl.EXIT_OK;
    }
}
