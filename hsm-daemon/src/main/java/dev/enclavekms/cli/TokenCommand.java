package dev.enclavekms.cli;

import dev.enclavekms.client.IssuedToken;
import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.TokenInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code kmsctl token ...}: bearer tokens (dev.enclavekms.Admin; needs a grant with
 * {@code token_admin}). A token is printed once, by {@code create}, on standard output
 * alone, so that {@code TOKEN=$(kmsctl token create ci)} captures exactly the token; the
 * daemon keeps only its hash.
 */
@Command(name = "token", description = "Create, list and revoke bearer tokens (needs a grant with token_admin).",
        subcommands = {TokenCommand.Create.class, TokenCommand.ListTokens.class, TokenCommand.Revoke.class})
final class TokenCommand extends CommandGroup {

    @Command(name = "create", description = {"Create a token for a token identity and print it, once.",
            "Standard output gets the token alone; its id, tenant and expiry go to standard error.",
            "Store it like a password: whoever holds it acts as token:IDENTITY."})
    static final class Create extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "IDENTITY",
                description = "The token identity (token:IDENTITY in the policy), e.g. ci-deployer.")
        String identity;

        @Option(names = "--ttl", paramLabel = "DURATION", converter = Durations.Converter.class,
                description = "How long it is valid, e.g. 30d, 12h (1m to 366d; default: the daemon's, 90d).")
        Duration ttl;

        @Override
        int run(Output out) throws KmsException, IOException {
            String id = identity.startsWith("token:") ? identity.substring("token:".length()) : identity;
            IssuedToken t = kms().createToken(id, ttl == null || ttl.isZero() ? null : ttl);
            if (out.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("token", t.token());
                m.put("info", info(t.info()));
                out.json(m);
            } else {
                out.line(t.token());
                env().err().println("kmsctl: token " + t.info().id() + " for token:" + t.info().identity() + " (tenant "
                        + t.info().tenant() + "), expires " + t.info().expires() + "; it is shown only this once");
            }
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "list", description = "List the tokens you may manage (never the tokens themselves).")
    static final class ListTokens extends DaemonCommand {
        @Override
        int run(Output out) throws KmsException, IOException {
            List<TokenInfo> tokens = kms().listTokens();
            if (out.json()) {
                out.json(Map.of("tokens", tokens.stream().map(TokenCommand::info).toList()));
                return Kmsctl.EXIT_OK;
            }
            Instant now = Instant.now();
            List<List<String>> rows = new ArrayList<>();
            for (TokenInfo t : tokens) {
                String state = t.revoked() != null ? "revoked " + t.revoked()
                        : !now.isBefore(t.expires()) ? "expired" : "valid";
                rows.add(List.of(t.id(), "token:" + t.identity(), t.tenant(), t.created().toString(),
                        t.expires().toString(), state));
            }
            out.table(List.of("ID", "IDENTITY", "TENANT", "CREATED", "EXPIRES", "STATE"), rows);
            return Kmsctl.EXIT_OK;
        }
    }

    @Command(name = "revoke", description = {"Revoke a token for good.",
            "Connections that presented it are refused from their next call."})
    static final class Revoke extends DaemonCommand {
        @Parameters(index = "0", paramLabel = "ID", description = "The token's id (see 'kmsctl token list').")
        String id;

        @Override
        int run(Output out) throws KmsException, IOException {
            TokenInfo t = kms().revokeToken(id);
            if (out.json()) {
                out.json(Map.of("info", info(t)));
            } else {
                out.line("revoked token " + t.id() + " (token:" + t.identity() + ", tenant " + t.tenant() + ") at "
                        + t.revoked());
            }
            return Kmsctl.EXIT_OK;
        }
    }

    static Map<String, Object> info(TokenInfo t) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", t.id());
        m.put("identity", t.identity());
        m.put("tenant", t.tenant());
        m.put("created", t.created().toString());
        m.put("expires", t.expires().toString());
        if (t.revoked() != null) m.put("revoked", t.revoked().toString());
        return m;
    }
}
