package dev.enclavekms.policy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Every method a policy can grant, as policies write them ({@code Kms.Decrypt},
 * {@code Admin.RotateKey}), with what the policy engine needs to know about each. A
 * test keeps this list equal to the methods of the shipped IDL files, so a new method
 * cannot be added to the protocol without deciding how it is granted.
 */
public final class Methods {
    public static final String KMS = "Kms";
    public static final String ADMIN = "Admin";

    public enum Trait {
        /** Acts on a key: grants must name key patterns. */
        KEYED,
        /** Carries an encryption context that grant conditions can test. */
        CONTEXT,
        /** Open to every identified caller without a grant ({@code Kms.Authenticate}). */
        OPEN,
        /** Mints or retires identities: granted only by {@code token_admin: true}, never by a method pattern. */
        TOKEN,
        /** Acts on the whole daemon, not one tenant: needs a grant with {@code all_tenants: true}. */
        GLOBAL
    }

    private static final Map<String, Set<Trait>> ALL = build();

    private static Map<String, Set<Trait>> build() {
        Map<String, Set<Trait>> m = new LinkedHashMap<>();
        for (String s : List.of("GenerateDataKey", "GenerateDataKeys", "Encrypt", "Decrypt", "DecryptBatch", "ReEncrypt",
                "ReEncryptBatch")) {
            m.put(KMS + "." + s, EnumSet.of(Trait.KEYED, Trait.CONTEXT));
        }
        for (String s : List.of("Sign", "Verify", "GetPublicKey", "GetPublicKeys", "GetCaCertificates",
                "IssueCertificate", "IssueTlsCertificate", "GetCrl")) {
            m.put(KMS + "." + s, EnumSet.of(Trait.KEYED));
        }
        // Sessions belong to the caller's tenant; no key patterns (docs/sessions.md).
        for (String s : List.of("OpenSession", "PutSessionMaterial", "GetSessionMaterial", "CloseSession")) {
            m.put(KMS + "." + s, EnumSet.noneOf(Trait.class));
        }
        m.put(KMS + ".Status", EnumSet.noneOf(Trait.class));
        // Tenant-scoped like Status: the stream names only versions of keys the caller sees.
        m.put(KMS + ".WatchRevocations", EnumSet.noneOf(Trait.class));
        m.put(KMS + ".Authenticate", EnumSet.of(Trait.OPEN));
        for (String s : List.of("CreateKey", "ListKeys", "DescribeKey", "UpdateKeyPolicy", "RotateKey", "PromoteKeyVersion",
                "EnableKeyVersion", "DisableKeyVersion", "RevokeKeyVersion", "ScheduleKeyVersionDestruction",
                "CancelKeyVersionDestruction", "GetCaCsr", "ImportCaCertificate", "RevokeCertificate")) {
            m.put(ADMIN + "." + s, EnumSet.of(Trait.KEYED));
        }
        for (String s : List.of("CreateToken", "ListTokens", "RevokeToken")) {
            m.put(ADMIN + "." + s, EnumSet.of(Trait.TOKEN));
        }
        m.put(ADMIN + ".ReloadPolicy", EnumSet.of(Trait.GLOBAL));
        // The audit log covers every tenant: reading its key, computing its HMACs (a guessing
        // oracle against the log) and forcing checkpoints are for global administrators.
        for (String s : List.of("AuditPublicKey", "AuditHmac", "AuditCheckpoint")) {
            m.put(ADMIN + "." + s, EnumSet.of(Trait.GLOBAL));
        }
        // The caller's own tenant; any tenant with all_tenants (Caller.requireTenant).
        m.put(ADMIN + ".RevokeSessions", EnumSet.noneOf(Trait.class));
        m.put(ADMIN + ".ExplainPolicy", EnumSet.noneOf(Trait.class));
        Map<String, Set<Trait>> frozen = new LinkedHashMap<>();
        m.forEach((k, v) -> frozen.put(k, Collections.unmodifiableSet(v)));
        return Collections.unmodifiableMap(frozen);
    }

    private Methods() {
    }

    /** Every method, in IDL order: {@code Kms.GenerateDataKey}, ... */
    public static Set<String> all() {
        return ALL.keySet();
    }

    public static boolean known(String method) {
        return ALL.containsKey(method);
    }

    public static boolean has(String method, Trait t) {
        return traits(method).contains(t);
    }

    /** The traits of a method, none for an unknown one: one lookup where a caller asks about several. */
    public static Set<Trait> traits(String method) {
        Set<Trait> traits = ALL.get(method);
        return traits != null ? traits : Set.of();
    }

    /** The policy's short name of a varlink method: {@code dev.enclavekms.Kms.Decrypt} → {@code Kms.Decrypt}. */
    public static String shortName(String qualified) {
        String prefix = "dev.enclavekms.";
        return qualified.startsWith(prefix) ? qualified.substring(prefix.length()) : qualified;
    }

    /**
     * The methods a pattern of a grant's {@code methods} covers: an exact name, or
     * {@code Kms.*} / {@code Admin.*}. Patterns never cover open or token methods.
     *
     * @throws IllegalArgumentException naming what is wrong, for an unknown method or pattern
     */
    public static List<String> expand(String pattern) {
        if (pattern.equals(KMS + ".*") || pattern.equals(ADMIN + ".*")) {
            String iface = pattern.substring(0, pattern.length() - 1);
            List<String> out = new ArrayList<>();
            for (Map.Entry<String, Set<Trait>> e : ALL.entrySet()) {
                if (e.getKey().startsWith(iface) && !e.getValue().contains(Trait.OPEN)
                        && !e.getValue().contains(Trait.TOKEN)) {
                    out.add(e.getKey());
                }
            }
            return out;
        }
        if (pattern.contains("*") || pattern.contains("?")) {
            throw new IllegalArgumentException("'" + pattern + "': the only method patterns are Kms.* and Admin.*;"
                    + " otherwise name methods exactly");
        }
        if (pattern.startsWith("dev.enclavekms.")) {
            throw new IllegalArgumentException("'" + pattern + "': write methods without the dev.enclavekms. prefix,"
                    + " e.g. " + shortName(pattern));
        }
        if (!ALL.containsKey(pattern)) {
            throw new IllegalArgumentException("unknown method '" + pattern + "'" + suggestion(pattern));
        }
        if (has(pattern, Trait.OPEN)) {
            throw new IllegalArgumentException("'" + pattern + "' is open to every caller; leave it out");
        }
        if (has(pattern, Trait.TOKEN)) {
            throw new IllegalArgumentException("'" + pattern + "' mints or retires identities: grant the token methods"
                    + " with token_admin: true");
        }
        return List.of(pattern);
    }

    private static String suggestion(String pattern) {
        String lower = pattern.toLowerCase(java.util.Locale.ROOT);
        for (String m : ALL.keySet()) {
            if (m.toLowerCase(java.util.Locale.ROOT).equals(lower) || m.endsWith("." + pattern)) {
                return "; did you mean " + m + "?";
            }
        }
        return " (methods are written Kms.Decrypt, Admin.RotateKey, ...; see docs/policy.md)";
    }
}
