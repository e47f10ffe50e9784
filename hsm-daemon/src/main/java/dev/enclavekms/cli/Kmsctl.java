package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.SocketLocator;
import dev.enclavekms.json.Json;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.HelpCommand;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code kmsctl}: the operator's and developer's command line for enclave-kms. Every
 * command but {@code provision} talks to the daemon's socket through
 * {@link dev.enclavekms.client.KmsClient}.
 *
 * <p>The command tree is the {@code subcommands} list below: a command that talks to the
 * daemon extends {@link DaemonCommand}; any other (such as {@code ProvisionCommand},
 * which talks to the hardware) implements {@code Callable<Integer>} and is added to the
 * list as it is. Exit codes, error printing and {@code --help} on every command are set
 * up here, for all of them.
 */
@Command(name = "kmsctl",
        description = "Manage keys and use the enclave-kms daemon: data keys, encryption, signatures.",
        mixinStandardHelpOptions = true,
        versionProvider = Kmsctl.Version.class,
        subcommands = {
                StatusCommand.class,
                KeyCommand.class,
                DataKeyCommand.class,
                EncryptCommand.class,
                DecryptCommand.class,
                DecryptBatchCommand.class,
                SignCommand.class,
                VerifyCommand.class,
                PublicKeyCommand.class,
                PublicKeysCommand.class,
                ReEncryptCommand.class,
                RewrapCommand.class,
                AuditCommand.class,
                InfoCommand.class,
                DescribeInterfaceCommand.class,
                ProvisionCommand.class,
                ShardCommand.class,
                TokenCommand.class,
                SessionCommand.class,
                PolicyCommand.class,
                CaCommand.class,
                TlsCommand.class,
                ManifestCommand.class,
                HelpCommand.class,
        })
public final class Kmsctl implements Callable<Integer> {
    /** Success; for {@code verify}, the signature is valid. */
    public static final int EXIT_OK = 0;
    /** {@code verify}: the signature is invalid; otherwise a local failure (unreadable file ...). */
    public static final int EXIT_FAILED = 1;
    /** The command line is wrong. */
    public static final int EXIT_USAGE = 2;
    /** The daemon could not be reached, or the connection broke. */
    public static final int EXIT_UNREACHABLE = 3;
    /** The daemon answered with an error (its name and message are printed). */
    public static final int EXIT_KMS_ERROR = 4;
    /** {@code manifest verify}: the manifest's signature, or the key version it names, is not accepted. */
    public static final int EXIT_SIGNATURE_INVALID = 6;
    /** {@code manifest verify}: the signature is valid, but the tree differs from the manifest. */
    public static final int EXIT_TREE_DIFFERS = 7;

    private static final Map<String, String> EXIT_CODES = exitCodes();

    private static Map<String, String> exitCodes() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(" 0", "success (verify: the signature is valid)");
        m.put(" 1", "verify: the signature is invalid; audit verify: the log was tampered with or is damaged;"
                + " otherwise a local failure (e.g. a file cannot be read)");
        m.put(" 2", "usage error");
        m.put(" 3", "cannot connect to the daemon, or the connection broke");
        m.put(" 4", "the daemon answered with an error (its name and message are printed); "
                + "decrypt-batch, rewrap: at least one entry failed");
        m.put(" 5", "audit verify: nothing failed, but not everything is proven (no --public-key, or an end of"
                + " the log that no signature or head covers)");
        m.put(" 6", "manifest verify: the signature, or the key version it names, is not accepted");
        m.put(" 7", "manifest verify: the signature is valid, but files were added, removed or modified");
        return m;
    }

    @Option(names = "--socket", paramLabel = "PATH", scope = ScopeType.INHERIT,
            description = "The daemon's socket (default: $ENCLAVE_KMS_SOCKET, else /run/enclave-kms/kms.sock).")
    Path socket;

    @Option(names = "--token-file", paramLabel = "FILE", scope = ScopeType.INHERIT,
            description = "Present the bearer token in FILE to the daemon before the command (default:"
                    + " $ENCLAVE_KMS_TOKEN_FILE; never pass a token itself on the command line).")
    Path tokenFile;

    @Option(names = "--json", scope = ScopeType.INHERIT,
            description = "Print the daemon's reply as JSON (the reply's field names; bytes as base64).")
    boolean json;

    @Spec
    CommandSpec spec;

    private final Environment environment;

    public Kmsctl(Environment environment) {
        this.environment = environment;
    }

    public static void main(String[] args) {
        // kmsctl's output is its answer; library chatter (e.g. provisioning progress) stays out of it.
        java.util.logging.Logger.getLogger("").setLevel(java.util.logging.Level.WARNING);
        System.exit(run(Environment.system(), args));
    }

    /**
     * Runs kmsctl as from a shell and returns its exit code. Never throws and never prints
     * a stack trace: every failure is one {@code kmsctl: ...} line on standard error.
     */
    public static int run(Environment env, String... args) {
        CommandLine cl = commandLine(env);
        try {
            return cl.execute(args);
        } finally {
            cl.getOut().flush();
            cl.getErr().flush();
            env.out().flush();
            env.err().flush();
        }
    }

    /** The configured command tree (exposed for tests and for generating docs). */
    public static CommandLine commandLine(Environment env) {
        CommandLine cl = new CommandLine(new Kmsctl(env));
        cl.setOut(new PrintWriter(new OutputStreamWriter(env.out(), env.out().charset()), true));
        cl.setErr(new PrintWriter(new OutputStreamWriter(env.err(), env.err().charset()), true));
        cl.setParameterExceptionHandler(Kmsctl::usageError);
        cl.setExecutionExceptionHandler((e, cmd, parseResult) -> failure(e, cmd));
        configure(cl, true);
        return cl;
    }

    /** Exit codes in every command's help; {@code -h/--help} on every subcommand. */
    private static void configure(CommandLine cl, boolean root) {
        CommandSpec spec = cl.getCommandSpec();
        spec.usageMessage().exitCodeListHeading("%nExit codes:%n").exitCodeList(EXIT_CODES);
        if (!root && spec.findOption("--help") == null && !(cl.getCommand() instanceof HelpCommand)) {
            spec.addOption(OptionSpec.builder("-h", "--help").usageHelp(true)
                    .description("Show this help and exit.").build());
        }
        for (CommandLine sub : cl.getSubcommands().values()) {
            configure(sub, false);
        }
    }

    private static int usageError(ParameterException e, String[] args) {
        CommandLine cl = e.getCommandLine();
        PrintWriter err = cl.getErr();
        String message = e.getMessage() == null ? "invalid command line" : e.getMessage();
        if (message.startsWith("Error: ")) {
            message = message.substring("Error: ".length());
        }
        err.println("kmsctl: " + Output.clean(message));
        CommandLine.UnmatchedArgumentException.printSuggestions(e, err);
        err.println("Try '" + cl.getCommandSpec().qualifiedName() + " --help' for more information.");
        err.flush();
        return EXIT_USAGE;
    }

    private static int failure(Exception e, CommandLine cmd) {
        PrintWriter err = cmd.getErr();
        int code;
        switch (e) {
            case KmsException k -> {
                Kmsctl root = of(cmd.getCommandSpec());
                if (root.json) {
                    Map<String, Object> reply = new LinkedHashMap<>();
                    reply.put("error", k.error());
                    reply.put("parameters", k.parameters());
                    cmd.getOut().println(Json.write(reply));
                    cmd.getOut().flush();
                }
                err.println("kmsctl: " + k.shortName() + ": " + Output.clean(describe(k)));
                code = EXIT_KMS_ERROR;
            }
            case CliFailure f -> {
                err.println("kmsctl: " + Output.clean(f.getMessage()));
                code = f.exitCode();
            }
            default -> {
                // A bug in kmsctl: say what, briefly; the stack trace is for a debugger, not the user.
                err.println("kmsctl: unexpected " + e.getClass().getSimpleName()
                        + (e.getMessage() == null ? "" : ": " + Output.clean(e.getMessage())));
                code = EXIT_FAILED;
            }
        }
        err.flush();
        return code;
    }

    /**
     * The daemon's message; for errors without one (those of org.varlink.service), their
     * parameters, e.g. {@code interface=com.example.Nope}.
     */
    private static String describe(KmsException k) {
        if (k.parameters().get("message") instanceof String m && !m.isEmpty()) {
            return m;
        }
        StringBuilder b = new StringBuilder();
        k.parameters().forEach((name, value) -> b.append(b.isEmpty() ? "" : ", ").append(name).append('=').append(value));
        return b.isEmpty() ? k.error() : b.toString();
    }

    /** The root command of the tree {@code spec} belongs to. */
    static Kmsctl of(CommandSpec spec) {
        return (Kmsctl) spec.root().userObject();
    }

    Environment environment() {
        return environment;
    }

    /** {@code --socket}, else {@code $ENCLAVE_KMS_SOCKET} (from this run's environment), else the default. */
    Path socket() {
        return socket != null ? socket : SocketLocator.locate(environment.variables());
    }

    /** {@code --token-file}, else {@code $ENCLAVE_KMS_TOKEN_FILE}, else null (act as the unix user). */
    Path tokenFile() {
        if (tokenFile != null) return tokenFile;
        String env = environment.variables().get("ENCLAVE_KMS_TOKEN_FILE");
        return env == null || env.isEmpty() ? null : Path.of(env);
    }

    Output output() {
        return new Output(environment.out(), json);
    }

    @Override
    public Integer call() {
        throw new ParameterException(spec.commandLine(), "missing command");
    }

    /** {@code kmsctl --version}: the jar's Implementation-Version when packaged. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Kmsctl.class.getPackage().getImplementationVersion();
            return new String[] {"kmsctl " + (v == null ? "(development build)" : v)};
        }
    }
}
