package dev.enclavekms.policy;

import java.util.List;

/**
 * The policy's answer to one {@link Request}.
 *
 * @param tenant  the caller's tenant, or null when the caller belongs to none
 * @param matched the grants that allow the request (empty when denied)
 * @param trace   one line per grant of the tenant: why it allows, or why not ({@link Policy#explain};
 *                empty from {@link Policy#decide})
 * @param denial  a message for the caller when denied, naming identity, method and reason; null when allowed
 */
public record Decision(boolean allowed, String tenant, List<Grant> matched, List<String> trace, String denial) {
    public Decision {
        matched = List.copyOf(matched);
        trace = List.copyOf(trace);
    }

    /** Whether a grant that allows the request acts on every tenant. */
    public boolean allTenants() {
        for (Grant g : matched) {
            if (g.allTenants()) return true;
        }
        return false;
    }

    /** The first grant that allows the request, or null. */
    public Grant grant() {
        return matched.isEmpty() ? null : matched.getFirst();
    }
}
