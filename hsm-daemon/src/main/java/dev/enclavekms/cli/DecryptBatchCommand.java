package dev.enclavekms.cli;

import dev.enclavekms.client.DecryptResult;
import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.Plaintext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

@Command(name = "decrypt-batch", description = {
        "Decrypt many envelopes with one context in one call: FILE holds one base64 envelope per line "
                + "(blank lines are skipped; '-' reads standard input).",
        "Prints one line per envelope, in order: 'ok KEY VERSION PLAINTEXT_B64' or 'error NAME MESSAGE'. "
                + "Exits with 4 when any envelope failed."})
final class DecryptBatchCommand extends DaemonCommand {
    @Parameters(index = "0", paramLabel = "FILE", description = "One base64 envelope per line.")
    Path file;

    @Mixin
    ContextOptions context;

    @Override
    int run(Output out) throws KmsException, IOException {
        String text = new String(Inputs.read(env(), file), StandardCharsets.UTF_8);
        List<byte[]> envelopes = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (!line.isEmpty()) {
                envelopes.add(Inputs.base64(commandLine(), file + " line " + (i + 1), line));
            }
        }
        Map<String, String> ctx = context.context();
        List<DecryptResult> results = kms().decryptBatch(envelopes, ctx);
        int failed = 0;
        if (out.json()) {
            out.json(ReplyJson.decryptResults(results));
        }
        for (DecryptResult r : results) {
            switch (r) {
                case Plaintext p -> {
                    if (!out.json()) out.line("ok " + p.key() + " " + p.version() + " " + ReplyJson.b64(p.plaintext()));
                    java.util.Arrays.fill(p.plaintext(), (byte) 0);
                }
                case DecryptResult.Failure f -> {
                    if (!out.json()) out.line("error " + f.error() + " " + f.message().replace('\n', ' '));
                    failed++;
                }
            }
        }
        if (failed > 0) {
            env().err().println("kmsctl: " + failed + " of " + results.size() + " envelopes failed to decrypt");
            return Kmsctl.EXIT_KMS_ERROR;
        }
        return Kmsctl.EXIT_OK;
    }
}
