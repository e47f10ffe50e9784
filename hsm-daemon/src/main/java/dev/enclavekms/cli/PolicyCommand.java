package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.PolicyExplanation;
import dev.enclavekms.client.PolicyStatus;
import dev.enclavekms.policy.Decision;
import dev.enclavekms.policy.Identity;
import dev.enclavekms.policy.Methods;
import dev.enclavekms.policy.Policy;
import dev.enclavekms.policy.PolicyException;
import dev.enclavekms.policy.PolicyParser;
import dev.enclavekms.policy.Request;
import dev.enclavekms.registry.Purpose;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code kmsctl policy ...}: check a policy file offline, explain a decision (offline
 * against a file, or the daemon's policy in force), and reload the daemon's policy.
 */
@Command(name = "policy", description = "Check, explain and reload the policy (docs/policy.md).",
        subcommands = {PolicyCommand.Check.class, PolicyCommand.Explain.class, PolicyCommand.Reload.class})
final class PolicyCommand extends CommandGroup {

    @Command(name = "check", description = {"Check a policy file without a daemon.",
            "Prints every problem as FILE:LINE: reason; exit 0 when the file can be used, 1 when not."})
    static final class Check implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(index = "0", paramLabel = "FILE", description = "The policy file.")
        Path file;

        @Override
        public Integer call() {
            Output out = Kmsctl.of(spec).output();
            try {
                Policy p = PolicyParser.load(file);
                if (out.json()) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("file", file.toString());
                    m.put("valid", true);
                    m.put("sha256", p.sha256());
                    m.put("tenants", (long) p.tenants().size());
                    m.put("grants", (long) p.grantCount());
                    out.json(m);
                } else {
                    out.line(file + ": OK: " + p.tenants().size() + " tenant(s), " + p.grantCount() + " grant(s), sha256 "
                            + p.sha256());
                }
                return Kmsctl.EXIT_OK;
            } catch (PolicyException e) {
                if (out.json()) {
                    List<Object> problems = new ArrayList<>();
                    e.problems().forEach(pr -> problems.add(Map.of("line", (long) pr.line(), "message", pr.message())));
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("file", file.toString());
                    m.put("valid", false);
                    m.put("problems", problems);
                    out.json(m);
                } else {
                    e.getMessage().lines().forEach(out::line);
                }
                Kmsctl.of(spec).environment().err().println("kmsctl: " + file + ": " + e.problems().size()
                        + " problem(s); the file cannot be used");
                return Kmsctl.EXIT_FAILED;
            }
        }
    }

    @Command(name = "explain", description = {"Say which grant allows a call, or why it is denied.",
            "With --file, against that policy file (no daemon); otherwise against the daemon's policy in force",
            "(Admin.ExplainPolicy). Decides on the policy alone: no key is looked up.",
            "Exit 0 when allowed, 1 when denied."})
    static final class Explain extends DaemonCommand {
        @Option(names = "--as", required = true, paramLabel = "IDENTITY",
                description = "user:NAME, user:NAME,group:NAME, group:NAME or token:NAME.")
        String as;

        @Option(names = "--file", paramLabel = "FILE", description = "Explain against this policy file, offline.")
        Path file;

        @Option(names = "--purpose", paramLabel = "PURPOSE", description = "The key's purpose: ENCRYPT or SIGN (default: any).")
        String purpose;

        @Parameters(index = "0", paramLabel = "METHOD", description = "As policies write it, e.g. Kms.Decrypt.")
        String method;

        @Parameters(index = "1", arity = "0..1", paramLabel = "KEY", description = "The key's name.")
        String key;

        @Parameters(index = "2..*", paramLabel = "KEY=VALUE", converter = ContextOptions.EntryConverter.class,
                description = "The call's context entries.")
        List<ContextOptions.Entry> context = new ArrayList<>();

        @Override
        int run(Output out) throws KmsException, IOException {
            String m = method.startsWith("dev.enclavekms.") ? Methods.shortName(method) : method;
            if (!Methods.known(m)) {
                throw new ParameterException(commandLine(), "unknown method '" + method + "'; methods are written as"
                        + " in policies, e.g. Kms.Decrypt, Admin.RotateKey");
            }
            String p = purpose == null ? null : purpose.toUpperCase(Locale.ROOT);
            Purpose pu = null;
            if (p != null) {
                try {
                    pu = Purpose.valueOf(p);
                } catch (IllegalArgumentException e) {
                    throw new ParameterException(commandLine(), "--purpose: ENCRYPT, SIGN or CERT_AUTHORITY");
                }
            }
            Map<String, String> ctx = ContextOptions.toMap(commandLine(), "KEY=VALUE", context);
            PolicyExplanation e;
            if (file != null) {
                e = offline(m, pu, ctx);
            } else {
                e = kms().explainPolicy(as, m, key, p, ctx);
            }
            if (out.json()) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("allowed", e.allowed());
                if (e.tenant() != null) r.put("tenant", e.tenant());
                if (e.grant() != null) r.put("grant", e.grant());
                r.put("explanation", e.explanation());
                out.json(r);
            } else {
                e.explanation().forEach(out::line);
            }
            return e.allowed() ? Kmsctl.EXIT_OK : Kmsctl.EXIT_FAILED;
        }

        private PolicyExplanation offline(String m, Purpose pu, Map<String, String> ctx) {
            Identity who;
            try {
                who = Identity.parse(as);
            } catch (IllegalArgumentException ex) {
                throw new ParameterException(commandLine(), "--as: " + ex.getMessage());
            }
            Policy policy;
            try {
                policy = PolicyParser.load(file);
            } catch (PolicyException ex) {
                throw CliFailure.local("the policy file cannot be used:\n" + ex.getMessage());
            }
            Map<String, String> context = ctx != null ? ctx : Methods.has(m, Methods.Trait.CONTEXT) ? Map.of() : null;
            Request r = key == null ? Request.method(m) : Request.key(m, key, pu, null, context);
            Decision d = policy.decide(who, r);
            List<String> lines = policy.explain(who, r);
            boolean allowed = lines.getLast().startsWith("result:   ALLOW");
            return new PolicyExplanation(allowed, d.tenant(), allowed && d.grant() != null ? d.grant().name() : null, lines);
        }
    }

    @Command(name = "reload", description = {"Make the daemon read its policy file again (Admin.ReloadPolicy).",
            "A file with problems is refused with every problem, and the policy in force stays."})
    static final class Reload extends DaemonCommand {
        @Override
        int run(Output out) throws KmsException, IOException {
            // A refused file is PolicyInvalidException: its message lists every problem (exit 4).
            PolicyStatus s = kms().reloadPolicy();
            if (out.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("source", s.source());
                m.put("sha256", s.sha256());
                m.put("tenants", (long) s.tenants());
                m.put("grants", (long) s.grants());
                m.put("warnings", s.warnings());
                out.json(m);
            } else {
                out.line("policy in force: " + s.source() + " (" + s.tenants() + " tenant(s), " + s.grants()
                        + " grant(s), sha256 " + s.sha256() + ")");
                s.warnings().forEach(w -> out.line("warning: " + w));
            }
            return Kmsctl.EXIT_OK;
        }
    }
}
