package dev.enclavekms.cli;

import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.PublicKeyInfo;
import dev.enclavekms.client.PublicKeys;
import dev.enclavekms.client.Signature;
import dev.enclavekms.manifest.MalformedManifestException;
import dev.enclavekms.manifest.Manifest;
import dev.enclavekms.manifest.ManifestFormat;
import dev.enclavekms.manifest.ManifestSignatures;
import dev.enclavekms.manifest.TreeDiff;
import dev.enclavekms.manifest.TreeHasher;
import dev.enclavekms.manifest.TreeScan;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code kmsctl manifest sign|verify}: a signed list of the SHA-256 of every file of a
 * directory tree (docs/manifest.md). The manifest is sha256sum-compatible text; its
 * signature is the SIGN key's own, detached, so OpenSSL checks it without enclave-kms.
 */
@Command(name = "manifest", description = "Signed manifests of directory trees: the SHA-256 of every file, "
        + "signed by a SIGN key; verified offline from the published public keys.",
        subcommands = {ManifestCommand.Sign.class, ManifestCommand.Verify.class})
final class ManifestCommand extends CommandGroup {
    static final String DEFAULT_NAME = ".enclave-manifest";
    /** The largest signature of the four algorithms is RSA-3072's 384 bytes. */
    private static final int MAX_SIGNATURE_BYTES = 4096;
    /** Signing retries when a rotation makes another version primary between reading the keys and signing. */
    private static final int SIGN_ATTEMPTS = 3;

    /** {@code --manifest}, {@code --threads}, {@code --progress}: shared by sign and verify. */
    static final class TreeOptions {
        @Option(names = "--manifest", paramLabel = "FILE",
                description = "The manifest file (default: DIR/" + DEFAULT_NAME + "); its signature is FILE.sig.")
        Path manifest;

        @Option(names = "--threads", paramLabel = "N",
                description = "Files hashed at the same time (default: the number of processors, at most 4).")
        Integer threads;

        @Option(names = "--progress", paramLabel = "WHEN", defaultValue = "auto",
                description = "Progress bar on standard error: auto (when it is a terminal; default), always, never.")
        String progress;

        Path manifest(Path dir) {
            return manifest != null ? manifest : dir.resolve(DEFAULT_NAME);
        }

        int threads(CommandSpec spec) {
            int n = threads != null ? threads : Math.min(4, Runtime.getRuntime().availableProcessors());
            if (n < 1 || n > 256) {
                throw new ParameterException(spec.commandLine(), "--threads must be 1..256");
            }
            return n;
        }

        boolean progressEnabled(CommandSpec spec, Environment env) {
            return switch (progress.toLowerCase(Locale.ROOT)) {
                case "auto" -> env.stderrTerminal();
                case "always" -> true;
                case "never" -> false;
                default -> throw new ParameterException(spec.commandLine(),
                        "--progress must be auto, always or never, not '" + progress + "'");
            };
        }
    }

    static Path signatureOf(Path manifest) {
        return Path.of(manifest + ".sig");
    }

    /**
     * The tree's files but the manifest and its signature, and never DIR/.enclave-manifest
     * and its .sig: a tree may carry its own manifest and also be signed into others.
     */
    static TreeScan scan(Path dir, Path manifest, Path signature) {
        if (!Files.isDirectory(dir)) {
            throw CliFailure.local(dir + " is not a directory");
        }
        try {
            Path defaultManifest = dir.resolve(DEFAULT_NAME);
            return TreeScan.of(dir, new HashSet<>(List.of(manifest, signature, defaultManifest,
                    signatureOf(defaultManifest))));
        } catch (IOException e) {
            throw CliFailure.local("cannot list " + dir + ": " + Inputs.reason(e)
                    + (e instanceof java.nio.file.FileSystemException f && f.getFile() != null ? " (" + f.getFile() + ")" : ""));
        }
    }

    /** Hashes the tree's files with a progress bar; returns the results in the tree's order. */
    static List<TreeHasher.Result> hash(Environment env, TreeScan tree, int threads, boolean bar, String verb,
                                        double[] seconds) {
        try (Progress progress = new Progress(env.err(), bar, verb, tree.bytes(), 0, System::nanoTime)) {
            List<TreeHasher.Result> results = TreeHasher.hash(tree.files(), threads, progress::advance);
            seconds[0] = progress.seconds();
            return results;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw CliFailure.local("interrupted");
        }
    }

    static String display(String path) {
        return ManifestFormat.escape(path);
    }

    // ----------------------------------------------------------------------- sign

    @Command(name = "sign", description = {
            "Write a manifest of every regular file under DIR (its SHA-256 and path, sorted) and have KEY's "
                    + "primary version sign it: DIR/" + DEFAULT_NAME + " and the detached signature "
                    + DEFAULT_NAME + ".sig (or --manifest FILE and FILE.sig).",
            "Symbolic links, FIFOs, sockets and devices under DIR are refused: a manifest covers regular files "
                    + "only. Empty directories and file modes are not recorded."})
    static final class Sign extends DaemonCommand {
        @Option(names = "--key", required = true, paramLabel = "KEY", description = "A SIGN key.")
        String key;

        @Mixin
        TreeOptions options;

        @Option(names = "--force", description = "Replace a manifest and signature that exist.")
        boolean force;

        @Parameters(index = "0", paramLabel = "DIR", description = "The directory tree.")
        Path dir;

        @Override
        int run(Output output) throws KmsException, IOException {
            int threads = options.threads(spec);
            boolean bar = options.progressEnabled(spec, env());
            Path manifestFile = options.manifest(dir);
            Path signatureFile = signatureOf(manifestFile);
            for (Path p : List.of(manifestFile, signatureFile)) {
                if (!force && Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
                    throw CliFailure.local(p + " exists (use --force to replace it)");
                }
            }
            TreeScan tree = scan(dir, manifestFile, signatureFile);
            if (!tree.irregular().isEmpty()) {
                for (TreeScan.Irregular x : tree.irregular()) {
                    env().err().println("kmsctl: " + Output.clean(display(x.path())) + ": " + x.kind());
                }
                throw CliFailure.local("refusing to sign " + dir + ": " + tree.irregular().size()
                        + " entries are not regular files (a manifest covers regular files only; remove them, or "
                        + "replace a link with the file)");
            }
            PublicKeys keys = kms().getPublicKeys(key); // before hashing: an unknown key fails at once
            double[] seconds = {0};
            List<TreeHasher.Result> hashes = hash(env(), tree, threads, bar, "hash", seconds);
            List<Manifest.Entry> entries = new ArrayList<>(hashes.size());
            long bytes = 0;
            int unreadable = 0;
            for (int i = 0; i < hashes.size(); i++) {
                TreeHasher.Result r = hashes.get(i);
                if (!r.ok()) {
                    env().err().println("kmsctl: " + Output.clean(display(tree.files().get(i).path())) + ": " + r.error());
                    unreadable++;
                    continue;
                }
                entries.add(new Manifest.Entry(tree.files().get(i).path(), r.sha256()));
                bytes += r.bytes();
            }
            if (unreadable > 0) {
                throw CliFailure.local("refusing to sign " + dir + ": " + unreadable + " files could not be read");
            }
            Instant created = Instant.now();
            byte[] body = null;
            Signature signature = null;
            PublicKeys.Version version = null;
            for (int attempt = 0; attempt < SIGN_ATTEMPTS && signature == null; attempt++) {
                if (attempt > 0) keys = kms().getPublicKeys(key);
                version = keys.primary().orElseThrow(() -> CliFailure.local(key + " has no primary version"));
                body = ManifestFormat.write(new Manifest(keys.key(), version.version(), keys.algorithm(), created,
                        bytes, entries));
                byte[] digest = ManifestSignatures.digest(keys.algorithm(), body);
                if (digest == null && body.length > ManifestSignatures.MAX_ED25519_MANIFEST) {
                    throw CliFailure.local("the manifest has " + body.length + " bytes; an Ed25519 key signs the "
                            + "whole manifest and Kms.Sign takes at most 1 MiB: use an ECDSA or RSA key for a tree "
                            + "this large");
                }
                Signature s = digest == null ? kms().sign(key, body) : kms().signDigest(key, digest);
                if (s.version() == version.version()) {
                    signature = s; // else: rotated meanwhile; the header must name the version that signs
                }
            }
            if (signature == null) {
                throw CliFailure.local("the primary version of " + key + " kept changing while signing; try again");
            }
            // The published key must verify what was signed, or verifiers would reject the manifest.
            if (!ManifestSignatures.verify(keys.algorithm(), publicKey(keys.key(), version, keys.algorithm()), body,
                    signature.signature())) {
                throw CliFailure.local("the signature of " + key + " version " + version.version()
                        + " does not verify with its published public key; nothing written");
            }
            byte[] manifestBytes = body;
            byte[] sig = signature.signature();
            ShardCommand.writeAtomically(manifestFile, false, true, o -> o.write(manifestBytes));
            ShardCommand.writeAtomically(signatureFile, false, true, o -> o.write(sig));
            if (output.json()) {
                output.json(ReplyJson.map("manifest", manifestFile.toString(), "signature", signatureFile.toString(),
                        "key", keys.key(), "version", (long) version.version(), "algorithm", keys.algorithm(),
                        "created", ManifestFormat.created(created), "files", (long) entries.size(), "bytes", bytes));
            } else {
                output.fields(new Output.Fields()
                        .add("manifest", manifestFile + " (" + ShardCommand.files(entries.size()) + ", "
                                + ShardCommand.rate(bytes, seconds[0]) + ")")
                        .add("signature", signatureFile.toString())
                        .add("key", keys.key() + " version " + version.version() + " (" + keys.algorithm() + ")"));
            }
            return Kmsctl.EXIT_OK;
        }
    }

    static PublicKey publicKey(String key, PublicKeys.Version v, String algorithm) {
        try {
            return new PublicKeyInfo(key, v.version(), algorithm, v.pem()).toPublicKey();
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            throw CliFailure.local("the public key of " + key + " version " + v.version() + " cannot be read: "
                    + e.getMessage());
        }
    }

    // --------------------------------------------------------------------- verify

    @Command(name = "verify", description = {
            "Check the manifest's signature with the published public key of the version it names, then hash "
                    + "DIR and report every file added, removed or modified since it was signed.",
            "The trusted key comes from --public-keys FILE (saved with 'kmsctl pubkeys KEY --json > FILE'; no "
                    + "daemon needed) or, with --key KEY alone, from the daemon. Only ENABLED versions are "
                    + "accepted: a version disabled, revoked or destroyed is no longer published.",
            "Exit codes: 0 the signature is valid and the tree matches; 6 the signature or its key is not "
                    + "accepted (the tree is not examined); 7 the signature is valid but the tree differs."})
    static final class Verify extends DaemonCommand {
        @Option(names = "--public-keys", paramLabel = "FILE",
                description = "The published public keys of the key you trust, as 'kmsctl pubkeys KEY --json' writes"
                        + " them.")
        Path publicKeys;

        @Option(names = "--key", paramLabel = "KEY",
                description = "The key you trust. Without --public-keys, its public keys are fetched from the daemon.")
        String key;

        @Option(names = "--signature", paramLabel = "FILE", description = "The signature (default: the manifest's"
                + " name + .sig).")
        Path signatureFile;

        @Mixin
        TreeOptions options;

        @Parameters(index = "0", paramLabel = "DIR", description = "The directory tree.")
        Path dir;

        @Override
        int run(Output output) throws KmsException, IOException {
            if (publicKeys == null && key == null) {
                throw new ParameterException(spec.commandLine(), "give --public-keys FILE, or --key KEY to fetch the "
                        + "public keys from the daemon (the key a manifest names is no trust anchor)");
            }
            int threads = options.threads(spec);
            boolean bar = options.progressEnabled(spec, env());
            Path manifestFile = options.manifest(dir);
            Path sigFile = signatureFile != null ? signatureFile : signatureOf(manifestFile);
            byte[] body = readAtMost(manifestFile, ManifestFormat.MAX_BYTES);
            byte[] sig = readAtMost(sigFile, MAX_SIGNATURE_BYTES);
            PublicKeys keys = publicKeys != null ? PublicKeysFile.read(publicKeys) : kms().getPublicKeys(key);
            if (key != null && !key.equals(keys.key())) {
                throw CliFailure.local(publicKeys + " holds the public keys of " + keys.key() + ", not of " + key);
            }
            Manifest m = checkSignature(output, body, sig, keys);
            TreeScan tree = scan(dir, manifestFile, sigFile);
            double[] seconds = {0};
            List<TreeHasher.Result> hashes = hash(env(), tree, threads, bar, "verify", seconds);
            List<TreeDiff.Difference> diff = TreeDiff.of(m, tree, hashes);
            long bytes = hashes.stream().mapToLong(TreeHasher.Result::bytes).sum();
            if (output.json()) {
                List<Object> differences = new ArrayList<>();
                for (TreeDiff.Difference d : diff) {
                    Map<String, Object> j = ReplyJson.map("path", d.path(), "change",
                            d.change().name().toLowerCase(Locale.ROOT));
                    if (d.detail() != null) j.put("detail", d.detail());
                    differences.add(j);
                }
                Map<String, Object> reply = signatureJson(m, "valid", null);
                reply.put("tree", diff.isEmpty() ? "matches" : "differs");
                reply.put("files", (long) tree.files().size());
                reply.put("bytes", bytes);
                reply.put("differences", differences);
                output.json(reply);
            } else {
                for (TreeDiff.Difference d : diff) {
                    output.line(String.format(Locale.ROOT, "%-9s %s", d.change().name().toLowerCase(Locale.ROOT),
                            display(d.path())) + (d.detail() == null ? "" : " (" + d.detail() + ")"));
                }
                if (!diff.isEmpty()) output.line("");
                output.fields(new Output.Fields()
                        .add("manifest", manifestFile + " (" + ShardCommand.files(m.entries().size()) + ")")
                        .add("signature", "valid: " + m.key() + " version " + m.version() + " (" + m.algorithm()
                                + "), created " + ManifestFormat.created(m.created()))
                        .add("tree", ShardCommand.files(tree.files().size() + tree.irregular().size()) + ", "
                                + ShardCommand.rate(bytes, seconds[0]))
                        .add("result", diff.isEmpty() ? "the tree matches the manifest" : summary(diff)));
            }
            return diff.isEmpty() ? Kmsctl.EXIT_OK : Kmsctl.EXIT_TREE_DIFFERS;
        }

        /** The parsed manifest once its signature is accepted; otherwise exit 6 with the reason. */
        private Manifest checkSignature(Output output, byte[] body, byte[] sig, PublicKeys keys) {
            Manifest m;
            try {
                m = ManifestFormat.parse(body);
            } catch (MalformedManifestException e) {
                throw rejected(output, null, "the manifest is malformed: " + e.getMessage());
            }
            if (!m.key().equals(keys.key())) {
                throw rejected(output, m, "the manifest names the key " + m.key() + "; the trusted key is " + keys.key());
            }
            if (!m.algorithm().equals(keys.algorithm())) {
                throw rejected(output, m, "the manifest names the algorithm " + m.algorithm() + "; " + keys.key()
                        + " is " + keys.algorithm());
            }
            PublicKeys.Version v = keys.versions().stream().filter(x -> x.version() == m.version()).findFirst()
                    .orElseThrow(() -> rejected(output, m, "version " + m.version() + " of " + keys.key()
                            + " is not published (published: " + published(keys) + "); a DISABLED, REVOKED or "
                            + "DESTROYED version no longer verifies"));
            if (!"ENABLED".equals(v.state())) {
                throw rejected(output, m, "version " + m.version() + " of " + keys.key() + " is " + v.state()
                        + ", not ENABLED: it has not signed anything");
            }
            if (!ManifestSignatures.verify(m.algorithm(), publicKey(keys.key(), v, keys.algorithm()), body, sig)) {
                throw rejected(output, m, "the signature does not verify with " + keys.key() + " version "
                        + m.version() + ": the manifest or its signature was changed");
            }
            return m;
        }

        private CliFailure rejected(Output output, Manifest m, String reason) {
            if (output.json()) {
                output.json(signatureJson(m, "invalid", reason));
            }
            return new CliFailure(Kmsctl.EXIT_SIGNATURE_INVALID, "manifest rejected: " + reason);
        }

        private static Map<String, Object> signatureJson(Manifest m, String status, String reason) {
            Map<String, Object> j = ReplyJson.map("signature", status);
            if (reason != null) j.put("reason", reason);
            if (m != null) {
                j.put("key", m.key());
                j.put("version", (long) m.version());
                j.put("algorithm", m.algorithm());
                j.put("created", ManifestFormat.created(m.created()));
            }
            return j;
        }

        private static String published(PublicKeys keys) {
            List<String> list = new ArrayList<>();
            for (PublicKeys.Version v : keys.versions()) list.add(v.version() + " " + v.state());
            return list.isEmpty() ? "none" : String.join(", ", list);
        }

        private static String summary(List<TreeDiff.Difference> diff) {
            Map<TreeDiff.Change, Integer> counts = new java.util.EnumMap<>(TreeDiff.Change.class);
            for (TreeDiff.Difference d : diff) counts.merge(d.change(), 1, Integer::sum);
            List<String> parts = new ArrayList<>();
            counts.forEach((c, n) -> parts.add(n + " " + c.name().toLowerCase(Locale.ROOT)));
            return "the tree differs: " + diff.size() + (diff.size() == 1 ? " difference (" : " differences (")
                    + String.join(", ", parts) + ")";
        }

        private byte[] readAtMost(Path file, int max) {
            try (InputStream in = Files.newInputStream(file)) {
                byte[] b = in.readNBytes(max + 1);
                if (b.length > max) {
                    throw new CliFailure(Kmsctl.EXIT_SIGNATURE_INVALID, "manifest rejected: " + file
                            + " is larger than " + max + " bytes");
                }
                return b;
            } catch (IOException e) {
                throw CliFailure.local("cannot read " + file + ": " + Inputs.reason(e));
            }
        }
    }
}
