package dev.enclavekms.policy;

import dev.enclavekms.registry.Purpose;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.composer.Composer;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;
import org.yaml.snakeyaml.parser.ParserImpl;
import org.yaml.snakeyaml.reader.StreamReader;
import org.yaml.snakeyaml.resolver.Resolver;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Reads a policy file (YAML, schema in docs/policy.md). SnakeYAML only composes the
 * text into nodes — no objects are constructed, so no tag can instantiate a class —
 * and this class walks the nodes, so every problem is reported with its line. All
 * problems are collected, not just the first, and a file with any problem yields no
 * policy at all.
 *
 * <p>Limits: 1 MiB of text, nesting depth 20; anchors, aliases, merge keys and explicit
 * tags are refused (they make a policy harder to read, and aliases are the classic
 * YAML amplification attack).
 */
public final class PolicyParser {
    /** Longest grant max_ttl_seconds: as ca.max-ttl-seconds (DaemonConfig.MAX_CA_TTL), 90 days. */
    static final long MAX_CERTIFICATE_TTL_SECONDS = 90L * 86400;
    public static final int MAX_BYTES = 1 << 20;
    private static final Pattern TENANT_NAME = Pattern.compile("[a-z0-9][a-z0-9_-]{0,63}");
    private static final Pattern GRANT_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    private static final Pattern KEY_PREFIX = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/-]{0,127}");
    private static final Pattern KEY_GLOB = Pattern.compile("[A-Za-z0-9._/*?-]{1,128}");
    private static final Set<Tag> PLAIN_TAGS = Set.of(Tag.STR, Tag.INT, Tag.FLOAT, Tag.BOOL, Tag.NULL, Tag.TIMESTAMP,
            Tag.SEQ, Tag.MAP);

    private final String source;
    private final List<PolicyException.Problem> problems = new ArrayList<>();

    private PolicyParser(String source) {
        this.source = source;
    }

    /** Reads and parses a policy file; any problem, including an unreadable file, is a PolicyException. */
    public static Policy load(Path file) throws PolicyException {
        String source = file.toString();
        byte[] bytes;
        try {
            if (Files.size(file) > MAX_BYTES) {
                throw problem(source, 0, "larger than " + MAX_BYTES + " bytes; a policy is a short text file");
            }
            bytes = Files.readAllBytes(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw problem(source, 0, "no such file");
        } catch (IOException e) {
            throw problem(source, 0, "cannot read it: " + e.getMessage());
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw problem(source, 0, "not valid UTF-8");
        }
        return new PolicyParser(source).read(text, sha256(bytes));
    }

    /** Parses policy text; {@code source} names it in messages. */
    public static Policy parse(String text, String source) throws PolicyException {
        return new PolicyParser(source).read(text, sha256(text.getBytes(StandardCharsets.UTF_8)));
    }

    private static PolicyException problem(String source, int line, String message) {
        return new PolicyException(source, List.of(new PolicyException.Problem(line, message)));
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------------ the document

    private Policy read(String text, String digest) throws PolicyException {
        Node root = compose(text);
        if (root == null) {
            if (problems.isEmpty()) add(0, "the policy is empty; see docs/policy.md for the format");
            throw new PolicyException(source, problems);
        }
        refuseAnchorsAndTags(root);
        if (!problems.isEmpty()) throw new PolicyException(source, problems);
        Map<String, Node> top = fields(root, "the policy", List.of("version", "default_tenant", "tenants"));
        if (top == null) throw new PolicyException(source, problems);

        Node version = top.get("version");
        if (version == null) {
            add(line(root), "version: missing; write 'version: 1' at the top");
        } else if (!(version instanceof ScalarNode s) || !s.getTag().equals(Tag.INT) || !s.getValue().equals("1")) {
            add(line(version), "version: must be 1, the only version of this format");
        }

        Map<String, Tenant> tenants = new LinkedHashMap<>();
        Map<Principal, String> memberOf = new LinkedHashMap<>();
        Map<Principal, Integer> memberLine = new LinkedHashMap<>();
        Set<String> tenantNames = new LinkedHashSet<>();
        Node tenantsNode = top.get("tenants");
        if (tenantsNode == null) {
            add(line(root), "tenants: missing; a policy names at least one tenant");
        } else if (tenantsNode instanceof MappingNode m) {
            if (m.getValue().isEmpty()) add(line(m), "tenants: empty; a policy names at least one tenant");
            for (NodeTuple t : m.getValue()) {
                String name = scalarKey(t.getKeyNode(), "tenants", tenantNames);
                if (name == null) continue;
                if (!TENANT_NAME.matcher(name).matches()) {
                    add(line(t.getKeyNode()), "tenant '" + name + "': tenant names are 1-64 characters of lower-case"
                            + " letters, digits, '_' and '-', starting with a letter or digit");
                    continue;
                }
                Tenant tenant = tenant(name, t.getKeyNode(), t.getValueNode(), memberOf, memberLine);
                if (tenant != null) tenants.put(name, tenant);
            }
        } else {
            add(line(tenantsNode), "tenants: must be a mapping of tenant names to tenants");
        }

        String defaultTenant = null;
        Node dt = top.get("default_tenant");
        if (dt != null) {
            defaultTenant = string(dt, "default_tenant");
            if (defaultTenant != null && !tenantNames.contains(defaultTenant)) {
                add(line(dt), "default_tenant: '" + defaultTenant + "' is not a tenant of this policy");
            }
        }
        if (problems.isEmpty()) {
            // Checks across tenants, only on tenants that read cleanly: on a broken one
            // (say, unreadable key_prefixes) they would report consequences, not causes.
            crossChecks(tenants, memberOf);
        }
        if (!problems.isEmpty()) throw new PolicyException(source, problems);
        return new Policy(source, digest, defaultTenant, tenants);
    }

    private Node compose(String text) {
        if (text.length() > MAX_BYTES) {
            add(0, "larger than " + MAX_BYTES + " characters; a policy is a short text file");
            return null;
        }
        LoaderOptions o = new LoaderOptions();
        o.setAllowDuplicateKeys(false);
        o.setMaxAliasesForCollections(10);
        o.setAllowRecursiveKeys(false);
        o.setNestingDepthLimit(20);
        o.setCodePointLimit(MAX_BYTES);
        o.setProcessComments(false);
        try {
            return new Composer(new ParserImpl(new StreamReader(text), o), new Resolver(), o).getSingleNode();
        } catch (MarkedYAMLException e) {
            Mark m = e.getProblemMark() != null ? e.getProblemMark() : e.getContextMark();
            String what = e.getProblem() != null ? e.getProblem() : e.getMessage();
            add(m == null ? 0 : m.getLine() + 1, "not valid YAML: " + oneLine(what)
                    + (e.getContext() != null ? " (" + oneLine(e.getContext()) + ")" : ""));
        } catch (YAMLException e) {
            add(0, "not valid YAML: " + oneLine(e.getMessage()));
        }
        return null;
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s+", " ").trim();
    }

    private void refuseAnchorsAndTags(Node n) {
        if (n.getAnchor() != null) {
            add(line(n), "anchors and aliases (&" + n.getAnchor() + ", *" + n.getAnchor()
                    + ") are not supported: write each value out");
            return;
        }
        if (n.getTag().equals(Tag.MERGE)) {
            add(line(n), "merge keys (<<) are not supported: write each value out");
            return;
        }
        if (!PLAIN_TAGS.contains(n.getTag())) {
            add(line(n), "explicit tags (" + n.getTag().getValue() + ") are not supported");
            return;
        }
        if (n instanceof MappingNode m) {
            for (NodeTuple t : m.getValue()) {
                refuseAnchorsAndTags(t.getKeyNode());
                refuseAnchorsAndTags(t.getValueNode());
            }
        } else if (n instanceof SequenceNode s) {
            for (Node c : s.getValue()) refuseAnchorsAndTags(c);
        }
    }

    // ------------------------------------------------------------------ tenants and grants

    private Tenant tenant(String name, Node keyNode, Node node, Map<Principal, String> memberOf,
                         Map<Principal, Integer> memberLine) {
        String where = "tenant '" + name + "'";
        Map<String, Node> f;
        if (node instanceof ScalarNode s && s.getTag().equals(Tag.NULL)) {
            f = Map.of(); // "acme:" alone: a tenant with no members, prefixes or grants yet
        } else {
            f = fields(node, where, List.of("key_prefixes", "members", "grants", "session_max_ttl_seconds"));
            if (f == null) return null;
        }
        List<String> prefixes = new ArrayList<>();
        for (Item p : strings(f.get("key_prefixes"), where + ": key_prefixes")) {
            if (!KEY_PREFIX.matcher(p.value()).matches()) {
                add(p.line(), where + ": key prefix '" + p.value() + "' is not the start of a key name (letters, digits,"
                        + " '.', '_', '-', '/', starting with a letter or digit)");
            } else {
                prefixes.add(p.value());
            }
        }
        if (f.get("key_prefixes") instanceof SequenceNode kp && kp.getValue().isEmpty()) {
            add(line(f.get("key_prefixes")), where + ": key_prefixes is empty; leave it out to take every name no"
                    + " other tenant claims");
        }
        List<Principal> members = new ArrayList<>();
        for (Item m : strings(f.get("members"), where + ": members")) {
            Principal p = principal(m, where + ": members");
            if (p == null) continue;
            String other = memberOf.putIfAbsent(p, name);
            if (other != null) {
                add(m.line(), where + ": " + p + " is already a member of tenant '" + other + "' (line "
                        + memberLine.get(p) + "); an identity belongs to one tenant");
            } else {
                memberLine.put(p, m.line());
                members.add(p);
            }
        }
        List<Grant> grants = new ArrayList<>();
        Node g = f.get("grants");
        if (g != null) {
            if (g instanceof SequenceNode s) {
                Set<String> names = new LinkedHashSet<>();
                for (Node item : s.getValue()) {
                    Grant grant = grant(name, item, names);
                    if (grant != null) grants.add(grant);
                }
            } else {
                add(line(g), where + ": grants must be a list of grants (each item starting with '- name: ...')");
            }
        }
        java.time.Duration sessionMaxTtl = null;
        Node ttl = f.get("session_max_ttl_seconds");
        if (ttl != null) {
            long max = dev.enclavekms.service.KeySessions.HARD_MAX_TTL.toSeconds();
            long v = -1;
            if (ttl instanceof ScalarNode s && s.getTag().equals(Tag.INT)) {
                try {
                    v = Long.parseLong(s.getValue());
                } catch (NumberFormatException e) {
                    v = -1;
                }
            }
            if (v < 1 || v > max) {
                add(line(ttl), where + ": session_max_ttl_seconds must be an integer from 1 to " + max
                        + " (sessions never last longer than 4 hours)");
            } else {
                sessionMaxTtl = java.time.Duration.ofSeconds(v);
            }
        }
        return new Tenant(name, line(keyNode), prefixes, members, grants, sessionMaxTtl);
    }

    private Grant grant(String tenant, Node node, Set<String> names) {
        String where = "tenant '" + tenant + "': grant";
        Map<String, Node> f = fields(node, where, List.of("name", "to", "methods", "keys", "context", "purposes",
                "reencrypt_revoked", "token_admin", "all_tenants", "san", "max_ttl_seconds"));
        if (f == null) return null;
        int line = line(node);
        int before = problems.size();
        String name = null;
        if (!f.containsKey("name")) {
            add(line, where + ": name is missing; every grant has a name that explanations and denials show");
        } else {
            name = string(f.get("name"), where + ": name");
            if (name != null && !GRANT_NAME.matcher(name).matches()) {
                add(line(f.get("name")), where + " '" + name + "': grant names are 1-64 letters, digits, '.', '_', '-'");
            } else if (name != null && !names.add(name)) {
                add(line(f.get("name")), where + " '" + name + "': tenant '" + tenant + "' has two grants of this name");
            }
        }
        where = "tenant '" + tenant + "': grant '" + (name == null ? "?" : name) + "'";

        Set<Principal> to = new LinkedHashSet<>();
        if (f.containsKey("to")) {
            List<Item> items = strings(f.get("to"), where + ": to");
            if (items.isEmpty() && f.get("to") instanceof SequenceNode) {
                add(line(f.get("to")), where + ": to is empty, so the grant applies to nobody; leave it out to give"
                        + " it to every member");
            }
            for (Item i : items) {
                Principal p = principal(i, where + ": to");
                if (p != null) to.add(p);
            }
        }
        List<String> patterns = new ArrayList<>();
        Set<String> methods = new LinkedHashSet<>();
        for (Item m : strings(f.get("methods"), where + ": methods")) {
            try {
                methods.addAll(Methods.expand(m.value()));
                patterns.add(m.value());
            } catch (IllegalArgumentException e) {
                add(m.line(), where + ": methods: " + e.getMessage());
            }
        }
        List<Glob> keys = new ArrayList<>();
        for (Item k : strings(f.get("keys"), where + ": keys")) {
            if (!KEY_GLOB.matcher(k.value()).matches()) {
                add(k.line(), where + ": keys: '" + k.value() + "' is not a key-name pattern (key-name characters,"
                        + " '*' for any run of characters, '?' for one)");
            } else {
                keys.add(Glob.of(k.value()));
            }
        }
        Map<String, Glob> context = new LinkedHashMap<>();
        Node c = f.get("context");
        if (c != null) {
            Map<String, Node> entries = fields(c, where + ": context", null);
            if (entries != null) {
                if (entries.isEmpty()) add(line(c), where + ": context is empty; leave it out for no conditions");
                for (Map.Entry<String, Node> e : entries.entrySet()) {
                    String value = string(e.getValue(), where + ": context: " + e.getKey());
                    if (value != null && value.length() > 1024) {
                        add(line(e.getValue()), where + ": context: " + e.getKey() + ": longer than 1024 characters");
                    } else if (value != null) {
                        context.put(e.getKey(), Glob.of(value));
                    }
                }
            }
        }
        Set<Purpose> purposes = EnumSet.noneOf(Purpose.class);
        for (Item p : strings(f.get("purposes"), where + ": purposes")) {
            try {
                purposes.add(Purpose.valueOf(p.value()));
            } catch (IllegalArgumentException e) {
                add(p.line(), where + ": purposes: '" + p.value() + "' is not a purpose (ENCRYPT, SIGN, CERT_AUTHORITY, TLS_SERVER, TLS_CLIENT)");
            }
        }
        List<Glob> sans = new ArrayList<>();
        for (Item san : strings(f.get("san"), where + ": san")) {
            if (!san.value().startsWith("DNS:") && !san.value().startsWith("IP:")) {
                add(san.line(), where + ": san: '" + san.value() + "' names no kind; write DNS:PATTERN or IP:PATTERN");
            } else {
                sans.add(Glob.of(san.value()));
            }
        }
        java.time.Duration maxTtl = null;
        Node ttl = f.get("max_ttl_seconds");
        if (ttl != null) {
            long max = MAX_CERTIFICATE_TTL_SECONDS;
            long v = -1;
            if (ttl instanceof ScalarNode n && n.getTag().equals(Tag.INT)) {
                try {
                    v = Long.parseLong(n.getValue());
                } catch (NumberFormatException e) {
                    v = -1;
                }
            }
            if (v < 1 || v > max) {
                add(line(ttl), where + ": max_ttl_seconds must be an integer from 1 to " + max
                        + " (the longest certificate TTL through this grant; certificates never last over 90 days)");
            } else {
                maxTtl = java.time.Duration.ofSeconds(v);
            }
        }
        boolean revoked = bool(f.get("reencrypt_revoked"), where + ": reencrypt_revoked");
        boolean tokenAdmin = bool(f.get("token_admin"), where + ": token_admin");
        boolean allTenants = bool(f.get("all_tenants"), where + ": all_tenants");

        // Combinations that can never do what the operator meant.
        if (problems.size() == before) {
            List<String> keyed = methods.stream().filter(m -> Methods.has(m, Methods.Trait.KEYED)).toList();
            boolean withContext = methods.stream().anyMatch(m -> Methods.has(m, Methods.Trait.CONTEXT));
            if (methods.isEmpty() && !tokenAdmin) {
                add(line, where + ": grants nothing: give methods, or token_admin: true");
            }
            if (!keyed.isEmpty() && keys.isEmpty()) {
                add(line, where + ": covers methods that act on keys (" + abbreviate(keyed) + ") but has no keys;"
                        + " add keys: [\"PATTERN\"] (\"*\" for every key of the tenant)");
            }
            if (keyed.isEmpty() && f.containsKey("keys")) {
                add(line(f.get("keys")), where + ": keys: none of its methods acts on a key");
            }
            if (keyed.isEmpty() && f.containsKey("purposes")) {
                add(line(f.get("purposes")), where + ": purposes: none of its methods acts on a key");
            }
            if (!context.isEmpty() && !withContext) {
                add(line(c), where + ": context: none of its methods carries a context, so it could never match");
            }
            if (!sans.isEmpty() && !methods.contains("Kms.IssueCertificate")) {
                add(line(f.get("san")), where + ": san: it does not cover Kms.IssueCertificate");
            }
            if (maxTtl != null && !methods.contains("Kms.IssueCertificate")) {
                add(line(ttl), where + ": max_ttl_seconds: it does not cover Kms.IssueCertificate");
            }
            if (revoked && !methods.contains("Kms.ReEncrypt") && !methods.contains("Kms.ReEncryptBatch")) {
                add(line(f.get("reencrypt_revoked")), where + ": reencrypt_revoked: it covers neither Kms.ReEncrypt"
                        + " nor Kms.ReEncryptBatch");
            }
        }
        if (name == null) return null;
        return new Grant(tenant, name, line, to, patterns, methods, keys, context, purposes, revoked, tokenAdmin,
                allTenants, sans, maxTtl);
    }

    private static String abbreviate(List<String> methods) {
        return methods.size() <= 3 ? String.join(", ", methods) : String.join(", ", methods.subList(0, 3)) + ", ...";
    }

    /** Checks that need the whole file: namespaces, grants naming other tenants' members. */
    private void crossChecks(Map<String, Tenant> tenants, Map<Principal, String> memberOf) {
        List<Tenant> all = new ArrayList<>(tenants.values());
        List<String> catchAll = all.stream().filter(t -> t.keyPrefixes().isEmpty()).map(Tenant::name).toList();
        if (catchAll.size() > 1) {
            add(all.stream().filter(t -> t.keyPrefixes().isEmpty()).skip(1).findFirst().orElseThrow().line(),
                    "tenants " + catchAll + " have no key_prefixes; at most one tenant may take the names no other"
                            + " tenant claims (otherwise creating a key would tell one tenant that another holds its name)");
        }
        for (int i = 0; i < all.size(); i++) {
            for (int j = i + 1; j < all.size(); j++) {
                for (String a : all.get(i).keyPrefixes()) {
                    for (String b : all.get(j).keyPrefixes()) {
                        if (a.startsWith(b) || b.startsWith(a)) {
                            add(all.get(j).line(), "tenant '" + all.get(j).name() + "': key prefix '" + b
                                    + "' overlaps prefix '" + a + "' of tenant '" + all.get(i).name()
                                    + "'; tenants' key names must not overlap");
                        }
                    }
                }
            }
        }
        for (Tenant t : all) {
            for (Grant g : t.grants()) {
                for (Principal p : g.to()) {
                    String other = memberOf.get(p);
                    if (other != null && !other.equals(t.name())) {
                        add(g.line(), "tenant '" + t.name() + "': grant '" + g.name() + "': to: " + p
                                + " is a member of tenant '" + other + "', so this grant never applies to it");
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ node helpers

    private record Item(String value, int line) { }

    private void add(int line, String message) {
        problems.add(new PolicyException.Problem(line, message));
    }

    private static int line(Node n) {
        return n.getStartMark() == null ? 0 : n.getStartMark().getLine() + 1;
    }

    /**
     * A mapping's entries by key, refusing duplicates and (when {@code known} is not null)
     * unknown keys. Null, after reporting, when {@code node} is not a mapping.
     */
    private Map<String, Node> fields(Node node, String where, List<String> known) {
        if (!(node instanceof MappingNode m)) {
            add(line(node), where + ": must be a mapping (key: value lines)");
            return null;
        }
        Map<String, Node> out = new LinkedHashMap<>();
        Set<String> seen = new LinkedHashSet<>();
        for (NodeTuple t : m.getValue()) {
            String key = scalarKey(t.getKeyNode(), where, seen);
            if (key == null) continue;
            if (known != null && !known.contains(key)) {
                add(line(t.getKeyNode()), where + ": unknown key '" + key + "' (known: " + String.join(", ", known) + ")");
                continue;
            }
            out.put(key, t.getValueNode());
        }
        return out;
    }

    private String scalarKey(Node k, String where, Set<String> seen) {
        if (!(k instanceof ScalarNode s) || s.getTag().equals(Tag.NULL) || s.getValue().isEmpty()) {
            add(line(k), where + ": keys must be plain names");
            return null;
        }
        if (!seen.add(s.getValue())) {
            add(line(k), where + ": '" + s.getValue() + "' appears twice");
            return null;
        }
        return s.getValue();
    }

    private String string(Node n, String what) {
        if (!(n instanceof ScalarNode s)) {
            add(line(n), what + ": must be a single value, not a list or mapping");
            return null;
        }
        if (s.getTag().equals(Tag.NULL) || s.getValue().isEmpty()) {
            add(line(n), what + ": must not be empty");
            return null;
        }
        return s.getValue();
    }

    /** A list of single values; an absent node is an empty list. */
    private List<Item> strings(Node n, String what) {
        if (n == null) return List.of();
        if (!(n instanceof SequenceNode s)) {
            add(line(n), what + ": must be a list, e.g. [\"a\", \"b\"]");
            return List.of();
        }
        List<Item> out = new ArrayList<>();
        for (Node item : s.getValue()) {
            String v = string(item, what);
            if (v != null) out.add(new Item(v, line(item)));
        }
        return out;
    }

    private boolean bool(Node n, String what) {
        if (n == null) return false;
        if (n instanceof ScalarNode s && s.getTag().equals(Tag.BOOL)
                && (s.getValue().equals("true") || s.getValue().equals("false"))) {
            return s.getValue().equals("true");
        }
        add(line(n), what + ": must be true or false");
        return false;
    }

    private Principal principal(Item i, String what) {
        try {
            return Principal.parse(i.value());
        } catch (IllegalArgumentException e) {
            add(i.line(), what + ": " + e.getMessage());
            return null;
        }
    }
}
