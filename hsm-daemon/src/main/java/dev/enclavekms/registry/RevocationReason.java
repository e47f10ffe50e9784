package dev.enclavekms.registry;

import java.util.Locale;

/**
 * Why a certificate was revoked: the CRLReason codes of RFC 5280 (5.3.1) an operator may
 * give. {@code certificateHold} (6) and {@code removeFromCRL} (8) are left out on purpose:
 * a revocation here is final, and a short-lived certificate is simply not renewed instead
 * of being held. The codes are stored and go into CRLs; the names are on the wire.
 */
public enum RevocationReason {
    UNSPECIFIED(0, "unspecified"),
    KEY_COMPROMISE(1, "keyCompromise"),
    CA_COMPROMISE(2, "cACompromise"),
    AFFILIATION_CHANGED(3, "affiliationChanged"),
    SUPERSEDED(4, "superseded"),
    CESSATION_OF_OPERATION(5, "cessationOfOperation"),
    PRIVILEGE_WITHDRAWN(9, "privilegeWithdrawn"),
    AA_COMPROMISE(10, "aACompromise");

    private final int code;
    private final String rfcName;

    RevocationReason(int code, String rfcName) {
        this.code = code;
        this.rfcName = rfcName;
    }

    /** The CRLReason value (RFC 5280). */
    public int code() {
        return code;
    }

    /** The ASN.1 name of RFC 5280, e.g. {@code keyCompromise}: how the wire and kmsctl write it. */
    public String rfcName() {
        return rfcName;
    }

    public static RevocationReason ofCode(int code) {
        for (RevocationReason r : values()) {
            if (r.code == code) return r;
        }
        throw new IllegalArgumentException("unknown revocation reason code " + code);
    }

    /** By RFC name or constant name, case-insensitively ({@code keyCompromise}, {@code KEY_COMPROMISE}); null if none. */
    public static RevocationReason parse(String s) {
        if (s == null) return null;
        String flat = s.replace("_", "").replace("-", "").toLowerCase(Locale.ROOT);
        for (RevocationReason r : values()) {
            if (r.rfcName.toLowerCase(Locale.ROOT).equals(flat)) return r;
        }
        return null;
    }

    /** The names {@link #parse} accepts, for error messages. */
    public static String names() {
        StringBuilder b = new StringBuilder();
        for (RevocationReason r : values()) b.append(b.isEmpty() ? "" : ", ").append(r.rfcName);
        return b.toString();
    }
}
