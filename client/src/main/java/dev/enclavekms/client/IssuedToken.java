package dev.enclavekms.client;

import java.util.Objects;

/**
 * A token just created by {@link KmsClient#createToken}. {@code token} is shown this once:
 * the daemon keeps only its hash. {@link #toString()} leaves it out, so logging the
 * object does not leak it.
 */
public record IssuedToken(String token, TokenInfo info) {
    public IssuedToken {
        Objects.requireNonNull(token, "token");
        Objects.requireNonNull(info, "info");
    }

    @Override
    public String toString() {
        return "IssuedToken[" + info + "]";
    }
}
