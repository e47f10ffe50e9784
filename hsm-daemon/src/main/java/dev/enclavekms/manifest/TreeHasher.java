package dev.enclavekms.manifest;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.LinkOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.LongConsumer;

/**
 * SHA-256 of many files on a pool of threads, one file per task, each streamed in 1 MiB
 * reads (SHA-256 of one file cannot be split). The largest files start first, so one big
 * file does not end up alone at the end of a run. Files are opened without following a
 * final symbolic link (a file replaced by a link after the scan fails instead of being
 * read through it).
 */
public final class TreeHasher {
    private static final int BUFFER = 1 << 20;

    private TreeHasher() {
    }

    /**
     * One file's outcome: the digest and the bytes read, or why it could not be read.
     */
    public record Result(byte[] sha256, long bytes, String error) {
        public boolean ok() {
            return error == null;
        }
    }

    /**
     * Hashes {@code files} with {@code threads} threads; {@code progress} is told every
     * chunk read (from any thread, one at a time). The results are in the order of {@code files}.
     */
    public static List<Result> hash(List<TreeScan.File> files, int threads, LongConsumer progress)
            throws InterruptedException {
        LongConsumer counted = n -> {
            synchronized (progress) {
                progress.accept(n);
            }
        };
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) order.add(i);
        order.sort(Comparator.comparingLong((Integer i) -> files.get(i).size()).reversed());
        List<Future<Result>> futures = new ArrayList<>(files.size());
        for (int i = 0; i < files.size(); i++) futures.add(null);
        try (ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads), r -> {
            Thread t = new Thread(r, "manifest-hash");
            t.setDaemon(true);
            return t;
        })) {
            for (int i : order) {
                TreeScan.File f = files.get(i);
                futures.set(i, pool.submit(() -> one(f, counted)));
            }
            List<Result> results = new ArrayList<>(files.size());
            for (Future<Result> f : futures) {
                results.add(f.get());
            }
            return results;
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
    }

    private static Result one(TreeScan.File f, LongConsumer progress) {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        long total = 0;
        try (FileChannel ch = FileChannel.open(f.file(), StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            ByteBuffer buf = ByteBuffer.allocate(BUFFER);
            int n;
            while ((n = ch.read(buf)) >= 0) {
                if (n == 0) continue;
                buf.flip();
                sha.update(buf);
                buf.clear();
                total += n;
                progress.accept(n);
            }
        } catch (IOException e) {
            return new Result(null, total, reason(e));
        }
        return new Result(sha.digest(), total, null);
    }

    private static String reason(IOException e) {
        return switch (e) {
            case java.nio.file.NoSuchFileException n -> "no such file";
            case java.nio.file.AccessDeniedException a -> "permission denied";
            case java.nio.file.FileSystemException fs when fs.getReason() != null -> fs.getReason();
            default -> e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        };
    }
}
