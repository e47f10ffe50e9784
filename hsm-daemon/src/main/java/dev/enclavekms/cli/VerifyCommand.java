package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Path;

@Command(name = "verify", description = {
        "Verify a signature made by version N of KEY over a message (--in FILE) or a digest (--digest HEX).",
        "Prints 'valid' and exits with 0, or 'invalid' and exits with 1."})
final class VerifyCommand extends DaemonCommand {
    @Parameters(index = "0", paramLabel = "KEY", description = "A SIGN key.")
    String key;

    @Option(names = "--version", required = true, paramLabel = "N", description = "The key version that signed.")
    int version;

    @Option(names = "--signature", required = true, paramLabel = "FILE_OR_B64",
            description = "A file holding the signature (binary or base64), or the signature as base64.")
    String signature;

    static final class Input {
        @Option(names = "--in", required = true, paramLabel = "FILE", description = "The signed file ('-' for standard input).")
        Path in;

        @Option(names = "--digest", required = true, paramLabel = "HEX", description = "The signed digest (hex).")
        String digestHex;

        @Option(names = "--digest-b64", required = true, paramLabel = "B64", description = "The signed digest (base64).")
        String digestB64;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Override
    int run(Output out) throws KmsException, IOException {
        byte[] sig = Inputs.fileOrBase64(env(), commandLine(), "--signature", signature);
        boolean valid;
        if (input.in != null) {
            byte[] message = Inputs.read(env(), input.in);
            valid = kms().verify(key, version, sig, message);
        } else {
            byte[] digest = input.digestHex != null ? Inputs.hex(commandLine(), "--digest", input.digestHex)
                    : Inputs.base64(commandLine(), "--digest-b64", input.digestB64);
            valid = kms().verifyDigest(key, version, sig, digest);
        }
        if (out.json()) {
            out.json(ReplyJson.map("valid", valid));
        } else {
            out.line(valid ? "valid" : "invalid");
        }
        return valid ? Kmsctl.EXIT_OK : Kmsctl.EXIT_FAILED;
    }
}
