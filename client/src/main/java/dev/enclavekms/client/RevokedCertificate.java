package dev.enclavekms.client;

import java.time.Instant;

/**
 * A certificate revoked by {@code Admin.RevokeCertificate}.
 *
 * @param key            the CA key that issued it
 * @param version        the CA version that issued it (whose CRL lists it)
 * @param reason         the RFC 5280 CRLReason name
 * @param alreadyRevoked an earlier call had revoked it; nothing changed
 */
public record RevokedCertificate(String serial, String key, int version, String reason, Instant revoked,
                                 Instant notAfter, boolean alreadyRevoked) { }
