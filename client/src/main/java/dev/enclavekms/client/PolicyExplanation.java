package dev.enclavekms.client;

import java.util.List;

/**
 * How the daemon's policy decides a call ({@link KmsClient#explainPolicy}).
 *
 * @param tenant      the identity's tenant, or null when it belongs to none
 * @param grant       the grant that allows the call, or null when denied
 * @param explanation readable lines: tenant and why, each grant and why it allows or not, the result
 */
public record PolicyExplanation(boolean allowed, String tenant, String grant, List<String> explanation) {
    public PolicyExplanation {
        explanation = List.copyOf(explanation);
    }
}
