package dev.enclavekms.client;

import java.time.Instant;

/**
 * What {@link KmsClient#authenticate} answers: the connection now acts as {@code identity}.
 *
 * @param identity {@code token:IDENTITY}
 * @param tokenId  the token's id (not secret)
 * @param expires  after this the daemon refuses the token and this connection's calls
 */
public record Authenticated(String identity, String tenant, String tokenId, Instant expires) { }
