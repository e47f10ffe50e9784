package dev.enclavekms.cli;

import dev.enclavekms.cli.EnvelopeFile.Examined;
import dev.enclavekms.cli.EnvelopeFile.Found;
import dev.enclavekms.cli.EnvelopeFile.NotEnvelope;
import dev.enclavekms.cli.EnvelopeFile.Unreadable;
import dev.enclavekms.client.KmsException;
import dev.enclavekms.client.ReEncryptResult;
import dev.enclavekms.client.ReEncrypted;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code kmsctl rewrap}: moves every ciphertext envelope stored in files under the given
 * paths to the primary version of its key (or of {@code --to-key}) through
 * {@code Kms.ReEncryptBatch}, and rewrites the files that changed atomically
 * ({@link EnvelopeFile#replace}).
 *
 * <p>Resumable without any state of its own: the daemon answers {@code rewrapped = false}
 * for an envelope already on the target's primary version, and such files are not
 * touched, so running the same command again after an interruption (Ctrl-C, SIGKILL, a
 * lost connection) does only what is left. Leftover temp files of an interrupted run are
 * deleted when the next run starts; the files they were meant to replace still hold their
 * old, valid envelope.
 */
@Command(name = "rewrap", description = {
        "Re-encrypt files of ciphertext envelopes (binary, or base64 text) under PATHs to the primary version of "
                + "their key (or of --to-key), in batches, and rewrite the files that changed atomically (temp file, "
                + "fsync, rename, directory fsync). Directories are walked recursively; symbolic links inside them "
                + "are not followed; other files are skipped.",
        "Safe to interrupt and run again: files already on the primary version are left untouched. Prints "
                + "'rewrapped N, already current N, skipped N, failed N' and each failure; exits with 4 when any "
                + "file failed."})
final class RewrapCommand extends DaemonCommand {
    static final int MAX_BATCH = 10_000;
    /** Keeps a batch of large envelopes well under the daemon's message limit (16 MiB by default). */
    static final long MAX_BATCH_BASE64_BYTES = 8L * 1024 * 1024;

    @Parameters(arity = "1..*", paramLabel = "PATH", description = "Files or directories of envelope files.")
    List<Path> paths;

    @Mixin
    ContextOptions context;

    @Option(names = "--to-key", paramLabel = "KEY", description = "Move to this key's primary version "
            + "(default: each envelope's own key).")
    String toKey;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "200",
            description = "Envelopes per ReEncryptBatch call (1 to 10000; default ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--dry-run", description = "Ask the daemon, but write nothing (and leave leftover temp files): "
            + "reports what a real run would do. The daemon still re-encrypts (and audits) every envelope sent.")
    boolean dryRun;

    @Option(names = {"-v", "--verbose"}, description = "Also list every rewrapped, current and skipped file.")
    boolean verbose;

    @Option(names = "--progress-interval", paramLabel = "SECONDS", defaultValue = "10",
            description = "When standard error is not a terminal: seconds between progress lines "
                    + "(default ${DEFAULT-VALUE}; 0: after every file). On a terminal, a progress bar.")
    int progressInterval;

    /** What the walk found before any file was read. */
    private record Scan(List<Path> files, List<Examined> early, int removedTemps) { }

    @Override
    int run(Output out) {
        if (batch < 1 || batch > MAX_BATCH) {
            throw new ParameterException(commandLine(), "--batch must be 1 to " + MAX_BATCH + ", not " + batch);
        }
        if (progressInterval < 0) {
            throw new ParameterException(commandLine(), "--progress-interval must not be negative");
        }
        Map<String, String> ctx = context.context();
        Scan scan = scan();
        RewrapSummary summary = new RewrapSummary(dryRun, scan.removedTemps());
        for (Examined e : scan.early()) {
            record(out, summary, e);
        }
        RewrapProgress progress = new RewrapProgress(env().err(), env().stderrTerminal(),
                Duration.ofSeconds(progressInterval), scan.files().size());
        if (scan.removedTemps() > 0) {
            progress.note("rewrap: " + (dryRun ? "found " : "removed ") + scan.removedTemps()
                    + " leftover temp file(s) of an interrupted run");
        }
        progress.note("rewrap: " + scan.files().size() + " file(s) to examine");

        AtomicLong done = new AtomicLong();
        Thread onInterrupt = new Thread(() -> env().err().println(System.lineSeparator() + "rewrap: interrupted after "
                + done.get() + " of " + scan.files().size() + " files; every file holds a valid envelope, old or new;"
                + " run the same command again to finish"));
        boolean hooked = addShutdownHook(onInterrupt);
        List<Found> pending = new ArrayList<>();
        long pendingBytes = 0;
        try {
            for (Path file : scan.files()) {
                Examined e = EnvelopeFile.examine(file);
                if (e instanceof Found found) {
                    pending.add(found);
                    pendingBytes += (found.envelope().length + 2L) / 3 * 4;
                    if (pending.size() >= batch || pendingBytes >= MAX_BATCH_BASE64_BYTES) {
                        done.addAndGet(flush(out, summary, progress, pending, ctx));
                        pending.clear();
                        pendingBytes = 0;
                    }
                } else {
                    record(out, summary, e);
                    done.incrementAndGet();
                }
                progress.update(done.get());
            }
            if (!pending.isEmpty()) {
                done.addAndGet(flush(out, summary, progress, pending, ctx));
                progress.update(done.get());
            }
        } catch (IOException e) {
            progress.finish();
            return aborted(out, summary, scan.files().size() - done.get(), Kmsctl.EXIT_UNREACHABLE,
                    "ConnectionFailed", "connection to the daemon at " + root().socket() + " failed: " + e.getMessage());
        } catch (KmsException e) {
            progress.finish();
            return aborted(out, summary, scan.files().size() - done.get(), Kmsctl.EXIT_KMS_ERROR,
                    e.shortName(), e.getMessage());
        } finally {
            progress.finish();
            if (hooked) removeShutdownHook(onInterrupt);
        }
        summary.print(out, null);
        return summary.failed() > 0 ? Kmsctl.EXIT_KMS_ERROR : Kmsctl.EXIT_OK;
    }

    private int aborted(Output out, RewrapSummary summary, long notDone, int code, String error, String message) {
        summary.print(out, new RewrapSummary.Abort(error, message, notDone));
        env().err().println("kmsctl: " + (error.equals("ConnectionFailed") ? "" : error + ": ") + Output.clean(message)
                + "; " + notDone + " file(s) not done: run the same command again to finish");
        return code;
    }

    /** Sends one batch and settles each of its files; returns how many files it settled. */
    private int flush(Output out, RewrapSummary summary, RewrapProgress progress, List<Found> pending,
                      Map<String, String> ctx) throws KmsException, IOException {
        List<byte[]> envelopes = new ArrayList<>(pending.size());
        for (Found f : pending) envelopes.add(f.envelope());
        List<ReEncryptResult> results = kms().reEncryptBatch(envelopes, ctx, toKey);
        Set<Path> directories = new LinkedHashSet<>();
        for (int i = 0; i < pending.size(); i++) {
            Found f = pending.get(i);
            switch (results.get(i)) {
                case ReEncryptResult.Failure failure -> summary.failed(f.path(), failure.error(), failure.message());
                case ReEncrypted r when !r.rewrapped() -> {
                    summary.current();
                    if (verbose && !out.json()) out.line("current    " + f.path());
                }
                case ReEncrypted r when !EnvelopeFile.isEnvelope(r.ciphertext()) ->
                        // Never write what is not an envelope over one that is: that would lose the data.
                        summary.failed(f.path(), "MalformedReply", "the daemon's new envelope is not an envelope;"
                                + " file left as it is");
                case ReEncrypted r -> {
                    try {
                        if (!dryRun) {
                            EnvelopeFile.replace(f, r.ciphertext());
                            directories.add(f.path().toAbsolutePath().getParent());
                        }
                        summary.rewrapped();
                        if (verbose && !out.json()) {
                            out.line((dryRun ? "would rewrap " : "rewrapped  ") + f.path() + "  (" + r.sourceKey()
                                    + " v" + r.sourceVersion() + " -> " + r.key() + " v" + r.version() + ")");
                        }
                    } catch (EnvelopeFile.RewriteFailure w) {
                        summary.failed(f.path(), w.error(), w.getMessage());
                    }
                }
            }
        }
        for (Path dir : directories) {
            try {
                EnvelopeFile.syncDirectory(dir);
            } catch (IOException e) {
                progress.note("rewrap: warning: cannot fsync directory " + dir + " (" + Inputs.reason(e) + "): its"
                        + " rewritten files may revert to their old, still valid envelopes after a crash");
            }
        }
        return pending.size();
    }

    private void record(Output out, RewrapSummary summary, Examined e) {
        switch (e) {
            case NotEnvelope n -> {
                summary.skipped();
                if (verbose && !out.json()) out.line("skipped    " + n.path() + ": " + n.reason());
            }
            case Unreadable u -> summary.failed(u.path(), "ReadFailed", u.reason());
            case Found f -> throw new IllegalStateException("envelopes are batched, not recorded");
        }
    }

    /**
     * Every regular file under the paths, in a stable order (arguments in the order given,
     * each one's files sorted). Symbolic links met in the walk are not followed; those given
     * as arguments are (like {@code find -H}), because a link named on purpose means its
     * target — and renaming over the link itself would replace the link with a file.
     */
    private Scan scan() {
        List<Path> files = new ArrayList<>();
        List<Examined> early = new ArrayList<>();
        int[] removed = {0};
        Set<Path> seen = new HashSet<>();
        for (Path arg : paths) {
            if (!Files.exists(arg, LinkOption.NOFOLLOW_LINKS)) {
                throw CliFailure.local("cannot read " + arg + ": no such file or directory");
            }
            Path start = arg;
            if (Files.isSymbolicLink(arg)) {
                try {
                    start = arg.toRealPath();
                } catch (IOException e) {
                    early.add(new Unreadable(arg, "cannot follow " + arg + ": " + Inputs.reason(e)));
                    continue;
                }
            }
            List<Path> found = new ArrayList<>();
            try {
                Files.walkFileTree(start, Set.of(), Integer.MAX_VALUE, new SimpleFileVisitor<>() {
                    @Override
                    public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                        if (attrs.isSymbolicLink()) {
                            early.add(new NotEnvelope(file, "symbolic link (not followed)"));
                        } else if (!attrs.isRegularFile()) {
                            early.add(new NotEnvelope(file, "not a regular file"));
                        } else if (EnvelopeFile.isTemp(file)) {
                            removeTemp(file, early, removed);
                        } else if (seen.add(file.toAbsolutePath().normalize())) {
                            found.add(file);
                        }
                        return FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult visitFileFailed(Path file, IOException e) {
                        early.add(new Unreadable(file, "cannot read " + file + ": " + Inputs.reason(e)));
                        return FileVisitResult.CONTINUE;
                    }
                });
            } catch (IOException e) {
                early.add(new Unreadable(start, "cannot read " + start + ": " + Inputs.reason(e)));
            }
            found.sort(null);
            files.addAll(found);
        }
        return new Scan(files, early, removed[0]);
    }

    /**
     * A temp file is only ever renamed over its original once complete, so one still
     * present was abandoned by an interrupted run, and its original holds a valid envelope.
     */
    private void removeTemp(Path temp, List<Examined> early, int[] removed) {
        if (dryRun) {
            removed[0]++;
            return;
        }
        try {
            Files.deleteIfExists(temp);
            removed[0]++;
        } catch (IOException e) {
            early.add(new Unreadable(temp, "cannot delete leftover temp file " + temp + ": " + Inputs.reason(e)));
        }
    }

    private static boolean addShutdownHook(Thread hook) {
        try {
            Runtime.getRuntime().addShutdownHook(hook);
            return true;
        } catch (IllegalStateException | SecurityException e) {
            return false;
        }
    }

    private static void removeShutdownHook(Thread hook) {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // shutting down already: the hook is running or has run
        }
    }

    /** Counts and failures of one run, printed at the end as text or JSON. */
    static final class RewrapSummary {
        record Failure(Path path, String error, String message) { }

        record Abort(String error, String message, long notDone) { }

        private final boolean dryRun;
        private final int removedTemps;
        private long rewrapped;
        private long current;
        private long skipped;
        private final List<Failure> failures = new ArrayList<>();

        RewrapSummary(boolean dryRun, int removedTemps) {
            this.dryRun = dryRun;
            this.removedTemps = removedTemps;
        }

        void rewrapped() {
            rewrapped++;
        }

        void current() {
            current++;
        }

        void skipped() {
            skipped++;
        }

        void failed(Path path, String error, String message) {
            failures.add(new Failure(path, error, message));
        }

        long failed() {
            return failures.size();
        }

        void print(Output out, Abort abort) {
            if (out.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("rewrapped", rewrapped);
                m.put("already_current", current);
                m.put("skipped", skipped);
                m.put("failed", (long) failures.size());
                m.put("dry_run", dryRun);
                m.put("removed_temp_files", (long) removedTemps);
                List<Object> list = new ArrayList<>();
                for (Failure f : failures) {
                    list.add(ReplyJson.map("path", f.path().toString(), "error", f.error(), "message", f.message()));
                }
                m.put("failures", list);
                if (abort != null) {
                    m.put("aborted", ReplyJson.map("error", abort.error(), "message", abort.message(),
                            "not_done", abort.notDone()));
                }
                out.json(m);
                return;
            }
            out.line((dryRun ? "would rewrap " : "rewrapped ") + rewrapped + ", already current " + current
                    + ", skipped " + skipped + ", failed " + failures.size()
                    + (dryRun ? " (dry run: no file was changed)" : ""));
            for (Failure f : failures) {
                out.line("failed: " + f.path() + ": " + f.error() + ": " + f.message().replace('\n', ' '));
            }
        }
    }
}
