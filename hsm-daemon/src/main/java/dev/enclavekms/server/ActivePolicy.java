package dev.enclavekms.server;

import dev.enclavekms.policy.Policy;
import dev.enclavekms.policy.PolicyException;
import dev.enclavekms.policy.PolicyParser;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.RegistryStore;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The policy in force: read from the configured file at start (a daemon with a broken
 * policy does not start), replaced as a whole by {@link #reload} — Admin.ReloadPolicy and
 * SIGHUP — and only when the new file has no problem at all. Every call reads the
 * reference once and is decided by that one policy from start to end.
 */
public final class ActivePolicy {
    private static final System.Logger LOG = System.getLogger(ActivePolicy.class.getName());

    private final Path file;
    private final String daemonUser;
    private final RegistryStore registry;
    private final AtomicReference<Policy> current = new AtomicReference<>();

    /** What a reload did; {@code problems} is null when the new policy is in force. */
    public record Reload(boolean loaded, Policy policy, PolicyException problems, List<String> warnings) { }

    /**
     * @param file null: no policy file; the built-in policy ({@link Policy#builtInText}) is in force
     * @throws PolicyException the file cannot be used
     */
    public ActivePolicy(Path file, String daemonUser, RegistryStore registry) throws PolicyException {
        this.file = file;
        this.daemonUser = daemonUser;
        this.registry = registry;
        Policy p = read();
        current.set(p);
        warnings(p).forEach(w -> LOG.log(System.Logger.Level.WARNING, "policy: " + w));
        if (file == null) {
            LOG.log(System.Logger.Level.WARNING, "no policy file configured: every caller that can open the socket may"
                    + " use every key, and only root and " + daemonUser + " may administer (docs/policy.md)");
        }
    }

    private Policy read() throws PolicyException {
        return file == null ? Policy.builtIn(daemonUser) : PolicyParser.load(file);
    }

    public Policy current() {
        return current.get();
    }

    public Path file() {
        return file;
    }

    /**
     * Reads the file again and puts it in force if it has no problem; otherwise logs every
     * problem and keeps the policy in force.
     */
    public synchronized Reload reload() {
        Policy next;
        try {
            next = read();
        } catch (PolicyException e) {
            LOG.log(System.Logger.Level.ERROR, "policy reload refused, the previous policy stays in force:\n"
                    + e.getMessage());
            return new Reload(false, current.get(), e, List.of());
        }
        current.set(next);
        List<String> warnings = warnings(next);
        LOG.log(System.Logger.Level.INFO, "policy reloaded from " + next.source() + " (sha256 " + next.sha256()
                + ", " + next.tenants().size() + " tenants, " + next.grantCount() + " grants)");
        warnings.forEach(w -> LOG.log(System.Logger.Level.WARNING, "policy: " + w));
        return new Reload(true, next, null, warnings);
    }

    /** Keys whose tenant the policy does not know, or whose names another tenant claims. */
    private List<String> warnings(Policy p) {
        List<String> out = new ArrayList<>();
        for (KeyRecord k : registry.list()) {
            if (p.tenant(k.tenant()) == null) {
                out.add("key '" + k.name() + "' belongs to tenant '" + k.tenant() + "', which the policy does not name;"
                        + " only all_tenants grants reach it");
            } else {
                String owner = p.tenantOwningName(k.name());
                if (owner != null && !owner.equals(k.tenant())) {
                    out.add("key '" + k.name() + "' belongs to tenant '" + k.tenant() + "' but tenant '" + owner
                            + "' owns names like it; '" + owner + "' cannot create or see it");
                }
            }
        }
        return out;
    }
}
