package dev.enclavekms.cli;

import picocli.CommandLine;
import picocli.CommandLine.ParameterException;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * Asking before a change that cannot be taken back (revoking a version) or that loses
 * data unless someone acts in time (scheduling a destruction). {@code --yes} answers in
 * advance. Without it, kmsctl asks on the terminal and goes on only when the answer is
 * {@code yes}; with no terminal on standard input (a script, a pipe) there is nobody to
 * ask, and guessing "yes" would make a script typo irreversible, so it is a usage error.
 */
final class Confirmation {
    private Confirmation() {
    }

    /**
     * Returns when confirmed; otherwise throws a usage error (no terminal) or a
     * {@link CliFailure} (exit 1: the person said no).
     *
     * @param what     the change, e.g. {@code revoke version 3 of key 'k'}
     * @param warning  what it means, printed before the question
     */
    static void require(Environment env, CommandLine cl, boolean yes, String what, String warning) {
        if (yes) {
            return;
        }
        if (!env.stdinTerminal()) {
            throw new ParameterException(cl, "refusing to " + what + " without confirmation: "
                    + "add --yes (standard input is not a terminal to ask on)");
        }
        env.err().println(warning);
        env.err().print("Type 'yes' to " + what + ": ");
        env.err().flush();
        String answer;
        try {
            answer = new BufferedReader(new InputStreamReader(env.in(), StandardCharsets.UTF_8)).readLine();
        } catch (IOException e) {
            answer = null;
        }
        if (answer == null || !answer.strip().toLowerCase(Locale.ROOT).equals("yes")) {
            if (answer == null) env.err().println();
            throw CliFailure.local("not confirmed; nothing was changed");
        }
    }
}
