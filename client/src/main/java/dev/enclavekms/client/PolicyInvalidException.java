package dev.enclavekms.client;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@link KmsClient#reloadPolicy}: the policy file cannot be used; the policy in force
 * stays. {@link #problems()} lists every problem with its line.
 */
public final class PolicyInvalidException extends KmsException {
    /** One problem of the file: its line (1-based; 0 for the file as a whole) and why. */
    public record Problem(long line, String message) { }

    /** See {@link KmsException#KmsException(String, Map)}. */
    public PolicyInvalidException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The policy file, or null when the daemon did not say. */
    public String file() {
        return parameters().get("file") instanceof String s ? s : null;
    }

    /** Every problem the daemon reported, in file order (empty when it sent none in the expected shape). */
    public List<Problem> problems() {
        List<Problem> out = new ArrayList<>();
        if (parameters().get("problems") instanceof List<?> l) {
            for (Object o : l) {
                if (o instanceof Map<?, ?> m && m.get("line") instanceof Long line && m.get("message") instanceof String msg) {
                    out.add(new Problem(line, msg));
                }
            }
        }
        return List.copyOf(out);
    }
}
