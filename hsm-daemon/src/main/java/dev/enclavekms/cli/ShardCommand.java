package dev.enclavekms.cli;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.KmsException;
import dev.enclavekms.shard.DataKeyUnwrapper;
import dev.enclavekms.shard.ShardEncryptor;
import dev.enclavekms.shard.ShardException;
import dev.enclavekms.shard.ShardFormat;
import dev.enclavekms.shard.ShardHeader;
import dev.enclavekms.shard.ShardHeaders;
import dev.enclavekms.shard.ShardReader;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * {@code kmsctl shard encrypt|decrypt|rewrap|inspect}: shard files (docs/formats.md, "Shard
 * files, format 1") through the {@code dev.enclavekms.shard} library, on single files and
 * on directory trees.
 *
 * <p>Per-file failures (a damaged shard, a file that cannot be read, a daemon refusal for
 * one file) are reported as {@code kmsctl: PATH: ...} and the run goes on with the next
 * file; the exit code then says the worst that happened (4 if the daemon refused anything,
 * else 1). Losing the daemon stops the run (3). Outputs are written to a temporary file
 * beside the target and renamed into place only when complete, so a target never holds a
 * partial file — for decryption, never plaintext that did not authenticate.
 */
@Command(name = "shard", description = "Encrypted shard files (model weights, optimizer states): encrypt, decrypt, "
        + "rewrap after a key rotation, inspect.",
        subcommands = {ShardCommand.Encrypt.class, ShardCommand.Decrypt.class, ShardCommand.Rewrap.class,
                ShardCommand.Inspect.class})
final class ShardCommand extends CommandGroup {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String TEMP_INFIX = ".kmsctl-";

    /** {@code --progress} and {@code --threads}, shared by the commands that stream files. */
    static final class StreamOptions {
        @Option(names = "--progress", paramLabel = "WHEN", defaultValue = "auto",
                description = "Progress bar on standard error: auto (when it is a terminal; default), always, never.")
        String progress;

        @Option(names = "--threads", paramLabel = "N",
                description = "Threads encrypting or decrypting the segments of one file, each reading and writing "
                        + "its own segments (default: the number of processors). The output does not depend on it.")
        Integer threads;

        int threads(CommandSpec spec) {
            int n = threads != null ? threads : Math.min(256, Runtime.getRuntime().availableProcessors());
            if (n < 1 || n > 256) {
                throw new ParameterException(spec.commandLine(), "--threads must be 1..256");
            }
            return n;
        }

        /** Whether to draw a progress bar; checked before any work, so a bad value is a usage error. */
        boolean progressEnabled(CommandSpec spec, Environment env) {
            return switch (progress.toLowerCase(Locale.ROOT)) {
                case "auto" -> Progress.stderrIsTerminal(env);
                case "always" -> true;
                case "never" -> false;
                default -> throw new ParameterException(spec.commandLine(),
                        "--progress must be auto, always or never, not '" + progress + "'");
            };
        }
    }

    /** {@code 4096}, {@code 64K}, {@code 1M}, {@code 1MiB}: binary multiples. */
    static final class SizeConverter implements ITypeConverter<Integer> {
        @Override
        public Integer convert(String s) {
            String t = s.strip().toUpperCase(Locale.ROOT).replace("IB", "").replace("B", "");
            long mult = 1;
            if (t.endsWith("K")) mult = 1 << 10;
            if (t.endsWith("M")) mult = 1 << 20;
            if (mult > 1) t = t.substring(0, t.length() - 1);
            try {
                long v = Long.parseLong(t.strip()) * mult;
                if (v < ShardFormat.MIN_SEGMENT_SIZE || v > ShardFormat.MAX_SEGMENT_SIZE) {
                    throw new TypeConversionException("'" + s + "' is outside 64 bytes .. 64 MiB");
                }
                return (int) v;
            } catch (NumberFormatException e) {
                throw new TypeConversionException("'" + s + "' is not a size such as 4096, 64K or 1M");
            }
        }
    }

    // ----------------------------------------------------------------------- planning

    /** One file of a run: where it comes from, where its output goes (null: in place or none), its size. */
    record Job(Path source, Path target, long bytes) { }

    /** Files under {@code in} (itself if it is a file), sorted, with their targets under {@code out}. */
    static List<Job> plan(Path in, Path out, Predicate<Path> include) {
        if (!Files.exists(in, LinkOption.NOFOLLOW_LINKS)) {
            throw CliFailure.local("cannot read " + in + ": no such file or directory");
        }
        List<Job> jobs = new ArrayList<>();
        if (!Files.isDirectory(in)) {
            jobs.add(new Job(in, out, size(in)));
            return jobs;
        }
        if (out != null && out.toAbsolutePath().normalize().startsWith(in.toAbsolutePath().normalize())) {
            throw CliFailure.local("the output directory " + out + " is inside the input directory " + in);
        }
        try (Stream<Path> walk = Files.walk(in)) {
            for (Path p : walk.sorted().toList()) {
                if (!Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS) || isOurTemporary(p) || !include.test(p)) {
                    continue;
                }
                jobs.add(new Job(p, out == null ? null : out.resolve(in.relativize(p).toString()), size(p)));
            }
        } catch (IOException | java.io.UncheckedIOException e) {
            throw CliFailure.local("cannot list " + in + ": " + e.getMessage());
        }
        return jobs;
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return 0; // reported when the file is processed
        }
    }

    static boolean isOurTemporary(Path p) {
        String name = p.getFileName().toString();
        return ShardHeaders.isRewrapLeftover(p) || (name.startsWith(".") && name.contains(TEMP_INFIX)
                && name.endsWith(".tmp"));
    }

    static boolean isShard(Path p) {
        try {
            return ShardHeaders.isShard(p);
        } catch (IOException e) {
            return true; // let processing report why it cannot be read
        }
    }

    // ------------------------------------------------------------------ outcomes

    /** What a run did, for the summary and the exit code. */
    static final class Tally {
        final Map<String, Integer> counts = new LinkedHashMap<>();
        final List<Map<String, Object>> files = new ArrayList<>();
        boolean daemonRefused;
        boolean localFailure;

        void count(String what) {
            counts.merge(what, 1, Integer::sum);
        }

        void fail(Environment env, Path file, String message, boolean daemon) {
            env.err().println("kmsctl: " + file + ": " + Output.clean(message));
            count("failed");
            files.add(ReplyJson.map("path", file.toString(), "status", "failed", "error", message));
            if (daemon) daemonRefused = true;
            else localFailure = true;
        }

        int exitCode() {
            return daemonRefused ? Kmsctl.EXIT_KMS_ERROR : localFailure ? Kmsctl.EXIT_FAILED : Kmsctl.EXIT_OK;
        }

        int get(String what) {
            return counts.getOrDefault(what, 0);
        }
    }

    /** Runs {@code work} for one file; a failure of that file is recorded and the run goes on. */
    static void perFile(Environment env, Tally tally, Path file, FileWork work) {
        perFile(env, tally, file, null, work);
    }

    static void perFile(Environment env, Tally tally, Path file, Progress progress, FileWork work) {
        try {
            work.run();
        } catch (KmsException e) {
            if (progress != null) progress.clear();
            tally.fail(env, file, e.shortName() + ": " + e.getMessage(), true);
        } catch (ShardException e) {
            if (progress != null) progress.clear();
            tally.fail(env, file, e.getMessage(), false);
        } catch (IOException e) {
            if (progress != null) progress.clear();
            tally.fail(env, file, describe(e), false);
        }
    }

    @FunctionalInterface
    interface FileWork {
        void run() throws KmsException, IOException;
    }

    static String describe(IOException e) {
        return switch (e) {
            case FileAlreadyExistsException f -> f.getFile() + " exists (use --force to replace it)";
            case NoSuchFileException n -> "no such file: " + n.getFile();
            default -> Inputs.reason(e);
        };
    }

    /**
     * The daemon connection failed mid-run: that is not one file's problem, so it ends the
     * run (exit 3), unlike a file that cannot be read.
     */
    static CliFailure lost(DaemonCommand c, IOException e) {
        return CliFailure.unreachable("connection to the daemon at " + c.root().socket() + " failed: " + e.getMessage());
    }

    /**
     * Writes {@code target} through a temporary file beside it, renamed into place only when
     * {@code body} completed; plaintext goes into a file only its owner can read.
     */
    static void writeAtomically(Path target, boolean secret, boolean force, OutputWork body)
            throws KmsException, IOException {
        writeChannelAtomically(target, secret, force, ch -> {
            OutputStream out = new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16);
            body.write(out);
            out.flush(); // not closed: that would close the channel before it is forced
        });
    }

    /** As {@link #writeAtomically(Path, boolean, boolean, OutputWork)} for a writer of positioned writes. */
    static void writeChannelAtomically(Path target, boolean secret, boolean force, ChannelWork body)
            throws KmsException, IOException {
        if (!force && Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
            throw new FileAlreadyExistsException(target.toString());
        }
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path temp = dir.resolve("." + target.getFileName() + TEMP_INFIX + HexFormat.of().formatHex(random(6)) + ".tmp");
        Set<OpenOption> options = Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        FileAttribute<?>[] attrs = secret
                ? new FileAttribute<?>[] {PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"))}
                : new FileAttribute<?>[0];
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(temp, options, attrs)) {
                body.write(ch);
                ch.force(true);
            }
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            done = true;
        } finally {
            if (!done) {
                Files.deleteIfExists(temp);
            }
        }
    }

    @FunctionalInterface
    interface OutputWork {
        void write(OutputStream out) throws KmsException, IOException;
    }

    @FunctionalInterface
    interface ChannelWork {
        void write(FileChannel out) throws KmsException, IOException;
    }

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        RANDOM.nextBytes(b);
        return b;
    }

    static String rate(long bytes, double seconds) {
        return Progress.bytes(bytes) + " in " + String.format(Locale.ROOT, "%.1f s", seconds) + " ("
                + Progress.bytes((long) (bytes / Math.max(seconds, 1e-3))) + "/s)";
    }

    static String files(int n) {
        return n + (n == 1 ? " file" : " files");
    }

    // -------------------------------------------------------------------- encrypt

    @Command(name = "encrypt", description = {
            "Encrypt IN into the shard file OUT under a new data key from KEY's primary version.",
            "IN may be a directory: every file under it is encrypted to the same relative path under OUT, "
                    + "each with its own data key. OUT is written only when complete."})
    static final class Encrypt extends DaemonCommand {
        @Option(names = "--key", required = true, paramLabel = "KEY", description = "An ENCRYPT key.")
        String key;

        @Mixin
        ContextOptions context;

        @Mixin
        StreamOptions stream;

        @Option(names = "--segment-size", paramLabel = "SIZE", converter = SizeConverter.class,
                description = "Plaintext bytes per segment: 64 .. 64M, e.g. 64K, 1M (default 1M).")
        Integer segmentSize;

        @Option(names = "--force", description = "Replace output files that exist.")
        boolean force;

        @Parameters(index = "0", paramLabel = "IN", description = "A file or a directory.")
        Path in;

        @Parameters(index = "1", paramLabel = "OUT", description = "The shard file, or the output directory.")
        Path out;

        @Override
        int run(Output output) throws KmsException, IOException {
            Map<String, String> ctx = context.context();
            ShardEncryptor.Options options = new ShardEncryptor.Options(
                    segmentSize == null ? ShardFormat.DEFAULT_SEGMENT_SIZE : segmentSize, stream.threads(spec));
            boolean bar = stream.progressEnabled(spec, env());
            List<Job> jobs = plan(in, out, p -> true);
            Tally tally = new Tally();
            String usedKey = null;
            int usedVersion = 0;
            long plaintext = 0;
            try (Progress progress = new Progress(env().err(), bar, "encrypt",
                    jobs.stream().mapToLong(Job::bytes).sum(), jobs.size(), System::nanoTime)) {
                for (int i = 0; i < jobs.size(); i++) {
                    Job job = jobs.get(i);
                    progress.file(i + 1);
                    DataKey[] used = new DataKey[1];
                    perFile(env(), tally, job.source(), progress, () -> {
                        if (!force && Files.exists(job.target(), LinkOption.NOFOLLOW_LINKS)) {
                            throw new FileAlreadyExistsException(job.target().toString()); // before asking for a key
                        }
                        // File to file: each thread reads, encrypts and writes its own segments.
                        try (FileChannel src = FileChannel.open(job.source(), StandardOpenOption.READ)) {
                            DataKey dk = generate(ctx);
                            try (ShardEncryptor enc = ShardEncryptor.of(dk, ctx, options)) {
                                writeChannelAtomically(job.target(), false, force,
                                        o -> enc.encryptInto(src, o, progress::advance));
                            } finally {
                                Arrays.fill(dk.plaintext(), (byte) 0);
                            }
                            used[0] = dk;
                        }
                    });
                    if (used[0] != null) {
                        tally.count("encrypted");
                        plaintext += job.bytes();
                        usedKey = used[0].key();
                        usedVersion = used[0].version();
                        tally.files.add(ReplyJson.map("path", job.source().toString(), "out", job.target().toString(),
                                "status", "encrypted", "key", usedKey, "version", (long) usedVersion));
                    }
                }
                summary(output, tally, plaintext, progress.seconds(), usedKey, usedVersion);
            }
            return tally.exitCode();
        }

        private DataKey generate(Map<String, String> ctx) throws KmsException {
            try {
                return kms().generateDataKey(key, ctx);
            } catch (IOException e) {
                throw lost(this, e);
            }
        }

        private void summary(Output output, Tally tally, long bytes, double seconds, String usedKey, int version) {
            if (output.json()) {
                output.json(ReplyJson.map("encrypted", (long) tally.get("encrypted"), "failed", (long) tally.get("failed"),
                        "plaintext_bytes", bytes, "files", tally.files));
                return;
            }
            Output.Fields f = new Output.Fields().add("encrypted", files(tally.get("encrypted")) + ", "
                    + rate(bytes, seconds));
            if (usedKey != null) f.add("key", usedKey + " version " + version);
            if (tally.get("failed") > 0) f.add("failed", files(tally.get("failed")));
            output.fields(f);
        }
    }

    // -------------------------------------------------------------------- decrypt

    @Command(name = "decrypt", description = {
            "Decrypt the shard file IN into OUT (mode 0600), given the context it was encrypted with.",
            "IN may be a directory: every shard under it is decrypted to the same relative path under OUT "
                    + "(other files are skipped). OUT is written only when every segment authenticated."})
    static final class Decrypt extends DaemonCommand {
        @Mixin
        ContextOptions context;

        @Mixin
        StreamOptions stream;

        @Option(names = "--force", description = "Replace output files that exist.")
        boolean force;

        @Parameters(index = "0", paramLabel = "IN", description = "A shard file or a directory.")
        Path in;

        @Parameters(index = "1", paramLabel = "OUT", description = "The plaintext file, or the output directory.")
        Path out;

        @Override
        int run(Output output) throws KmsException, IOException {
            Map<String, String> ctx = context.context();
            int threads = stream.threads(spec);
            boolean bar = stream.progressEnabled(spec, env());
            boolean directory = Files.isDirectory(in);
            List<Job> all = plan(in, out, p -> true);
            List<Job> jobs = directory ? all.stream().filter(j -> isShard(j.source())).toList() : all;
            Tally tally = new Tally();
            DataKeyUnwrapper unwrapper = (wrapped, c) -> {
                try {
                    return kms().decrypt(wrapped, c).plaintext();
                } catch (IOException e) {
                    throw lost(this, e);
                }
            };
            long plaintext = 0;
            try (Progress progress = new Progress(env().err(), bar, "decrypt",
                    jobs.stream().mapToLong(Job::bytes).sum(), jobs.size(), System::nanoTime)) {
                for (int i = 0; i < jobs.size(); i++) {
                    Job job = jobs.get(i);
                    progress.file(i + 1);
                    long[] written = {-1};
                    perFile(env(), tally, job.source(), progress, () -> {
                        // File to file: the reader checks the header, layout and final segment, then each
                        // thread reads, decrypts and writes its own segments.
                        try (ShardReader reader = ShardReader.open(job.source(), unwrapper, ctx)) {
                            progress.advance(reader.header().length());
                            writeChannelAtomically(job.target(), true, force,
                                    o -> written[0] = reader.decryptInto(o, threads, progress::advance));
                        }
                    });
                    if (written[0] >= 0) {
                        tally.count("decrypted");
                        plaintext += written[0];
                        tally.files.add(ReplyJson.map("path", job.source().toString(), "out", job.target().toString(),
                                "status", "decrypted", "plaintext_bytes", written[0]));
                    }
                }
                int skipped = all.size() - jobs.size();
                if (output.json()) {
                    output.json(ReplyJson.map("decrypted", (long) tally.get("decrypted"), "skipped", (long) skipped,
                            "failed", (long) tally.get("failed"), "plaintext_bytes", plaintext, "files", tally.files));
                } else {
                    Output.Fields f = new Output.Fields().add("decrypted", files(tally.get("decrypted")) + ", "
                            + rate(plaintext, progress.seconds()));
                    if (skipped > 0) f.add("skipped", files(skipped) + " (not shards)");
                    if (tally.get("failed") > 0) f.add("failed", files(tally.get("failed")));
                    output.fields(f);
                }
            }
            return tally.exitCode();
        }
    }

    // --------------------------------------------------------------------- rewrap

    @Command(name = "rewrap", description = {
            "Move the data key of each shard to the primary version of its key (after a rotation): only the "
                    + "header changes; the body is copied byte for byte; the file is replaced atomically.",
            "Directories are walked; files that are not shards are skipped; shards already on the primary "
                    + "version are left as they are, so an interrupted run is resumed by running it again.",
            "Needs the re-encryption right (Kms.ReEncrypt), not the right to decrypt: the data key never "
                    + "leaves the daemon."})
    static final class Rewrap extends DaemonCommand {
        @Parameters(arity = "1..*", paramLabel = "PATH", description = "Shard files and directories.")
        List<Path> paths;

        @Option(names = "--progress", paramLabel = "WHEN", defaultValue = "auto",
                description = "Progress bar on standard error: auto (when it is a terminal; default), always, never.")
        String progressWhen;

        @Override
        int run(Output output) throws KmsException, IOException {
            StreamOptions progressOptions = new StreamOptions();
            progressOptions.progress = progressWhen;
            boolean bar = progressOptions.progressEnabled(spec, env());
            List<Job> all = new ArrayList<>();
            for (Path p : paths) {
                all.addAll(plan(p, null, q -> true));
            }
            List<Job> jobs = all.stream().filter(j -> isShard(j.source())).toList();
            int notShards = all.size() - jobs.size();
            Tally tally = new Tally();
            ShardHeaders.ReEncryptor reEncryptor = (wrapped, ctx) -> {
                try {
                    return kms().reEncrypt(wrapped, ctx);
                } catch (IOException e) {
                    throw lost(this, e);
                }
            };
            try (Progress progress = new Progress(env().err(), bar, "rewrap",
                    jobs.stream().mapToLong(Job::bytes).sum(), jobs.size(), System::nanoTime)) {
                for (int i = 0; i < jobs.size(); i++) {
                    Job job = jobs.get(i);
                    progress.file(i + 1);
                    ShardHeaders.Rewrap[] result = new ShardHeaders.Rewrap[1];
                    perFile(env(), tally, job.source(), progress, () -> result[0] = ShardHeaders.rewrap(job.source(), reEncryptor));
                    progress.advance(job.bytes());
                    ShardHeaders.Rewrap r = result[0];
                    if (r == null) {
                        continue;
                    }
                    tally.count(r.rewrapped() ? "rewrapped" : "current");
                    tally.files.add(ReplyJson.map("path", job.source().toString(), "status",
                            r.rewrapped() ? "rewrapped" : "current", "key", r.keyName(),
                            "from_version", (long) r.fromVersion(), "to_version", (long) r.toVersion()));
                    if (r.rewrapped() && !output.json()) {
                        progress.clear();
                        output.line("rewrapped " + job.source() + ": " + r.keyName() + " version " + r.fromVersion()
                                + " -> " + r.toVersion());
                    }
                }
            }
            if (output.json()) {
                output.json(ReplyJson.map("rewrapped", (long) tally.get("rewrapped"), "current",
                        (long) tally.get("current"), "not_shards", (long) notShards, "failed", (long) tally.get("failed"),
                        "files", tally.files));
            } else {
                output.fields(new Output.Fields()
                        .add("rewrapped", files(tally.get("rewrapped")))
                        .add("already current", files(tally.get("current")))
                        .add("not shards", files(notShards))
                        .add("failed", files(tally.get("failed"))));
            }
            return tally.exitCode();
        }
    }

    // -------------------------------------------------------------------- inspect

    @Command(name = "inspect", description = {
            "Show the headers of shard files: key, version, context, segment size, sizes. No key is needed "
                    + "and none is shown; sizes follow from the file length (decryption authenticates them).",
            "For a directory, one line per shard under it."})
    static final class Inspect implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(arity = "1..*", paramLabel = "PATH", description = "Shard files and directories.")
        List<Path> paths;

        @Override
        public Integer call() {
            Kmsctl root = Kmsctl.of(spec);
            Environment env = root.environment();
            Output output = root.output();
            boolean single = paths.size() == 1 && !Files.isDirectory(paths.getFirst());
            Tally tally = new Tally();
            List<List<String>> rows = new ArrayList<>();
            for (Path p : paths) {
                boolean dir = Files.isDirectory(p);
                for (Job job : plan(p, null, q -> !dir || isShard(q))) {
                    perFile(env, tally, job.source(), () -> {
                        ShardHeader h = ShardHeaders.read(job.source());
                        ShardHeaders.Layout layout = ShardHeaders.layout(h, Files.size(job.source()));
                        tally.files.add(json(job.source(), h, layout, job.bytes()));
                        if (single && !output.json()) {
                            output.fields(fields(job.source(), h, layout, job.bytes()));
                        }
                        rows.add(List.of(job.source().toString(), h.keyName(), String.valueOf(h.keyVersion()),
                                Progress.bytes(layout.plaintextSize()), Progress.bytes(h.segmentSize()),
                                context(h.context())));
                    });
                }
            }
            if (output.json()) {
                output.json(ReplyJson.map("shards", tally.files.stream().filter(f -> !"failed".equals(f.get("status")))
                        .toList()));
            } else if (!single) {
                output.table(List.of("PATH", "KEY", "VERSION", "SIZE", "SEGMENT", "CONTEXT"), rows);
            }
            return tally.exitCode();
        }

        private static Output.Fields fields(Path file, ShardHeader h, ShardHeaders.Layout layout, long fileBytes) {
            HexFormat hex = HexFormat.of();
            return new Output.Fields()
                    .add("file", file)
                    .add("format", ShardFormat.VERSION + " (HKDF-SHA256, AES-256-GCM segments)")
                    .add("key", h.keyName())
                    .add("key version", h.keyVersion())
                    .add("context", context(h.context()))
                    .add("segment size", h.segmentSize() + " bytes (" + Progress.bytes(h.segmentSize()) + ")")
                    .add("segments", layout.segments())
                    .add("plaintext size", layout.plaintextSize() + " bytes (" + Progress.bytes(layout.plaintextSize())
                            + ", from the file length)")
                    .add("file size", fileBytes + " bytes")
                    .add("header size", h.length() + " bytes")
                    .add("salt", hex.formatHex(h.salt()))
                    .add("nonce prefix", hex.formatHex(h.noncePrefix()))
                    .add("wrapped data key", h.wrappedDataKey().length + " bytes (KMS envelope)");
        }

        private static Map<String, Object> json(Path file, ShardHeader h, ShardHeaders.Layout layout, long fileBytes) {
            HexFormat hex = HexFormat.of();
            return ReplyJson.map("path", file.toString(), "format", (long) ShardFormat.VERSION, "key", h.keyName(),
                    "version", (long) h.keyVersion(), "context", new LinkedHashMap<>(h.context()),
                    "segment_size", (long) h.segmentSize(), "segments", layout.segments(),
                    "plaintext_bytes", layout.plaintextSize(), "file_bytes", fileBytes, "header_bytes", (long) h.length(),
                    "salt", hex.formatHex(h.salt()), "nonce_prefix", hex.formatHex(h.noncePrefix()),
                    "wrapped_data_key_bytes", (long) h.wrappedDataKey().length);
        }

        private static String context(Map<String, String> ctx) {
            if (ctx.isEmpty()) return "none";
            StringBuilder b = new StringBuilder();
            ctx.forEach((k, v) -> b.append(b.isEmpty() ? "" : ", ").append(k).append('=').append(v));
            return b.toString();
        }
    }
}
