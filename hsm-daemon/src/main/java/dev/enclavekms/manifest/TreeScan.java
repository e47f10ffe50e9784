package dev.enclavekms.manifest;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * What a tree holds, for a manifest: its regular files, and everything a manifest cannot
 * cover (symbolic links, FIFOs, sockets, devices, names that are not valid in the file-name
 * encoding, paths longer than {@link ManifestPaths#MAX_BYTES}). Links are never followed, so nothing outside the tree is read. Directories
 * are walked, not recorded: an empty directory is invisible.
 *
 * @param files     the regular files, sorted by {@link ManifestPaths#ORDER}
 * @param irregular the rest, sorted likewise
 */
public record TreeScan(List<File> files, List<Irregular> irregular) {

    /** A regular file: its manifest path, where it is, and its size when scanned. */
    public record File(String path, Path file, long size) { }

    /** An entry a manifest cannot hold: its path (as well as it can be told) and what it is. */
    public record Irregular(String path, String kind) { }

    /** The total size of the regular files. */
    public long bytes() {
        return files.stream().mapToLong(File::size).sum();
    }

    /**
     * Walks {@code root} (a directory; resolved to its real path first), leaving out the
     * files in {@code excluded} (the manifest and its signature).
     */
    public static TreeScan of(Path root, Set<Path> excluded) throws IOException {
        Path start = root.toRealPath();
        Set<Path> skip = Set.copyOf(excluded.stream().map(TreeScan::real).toList());
        List<File> files = new ArrayList<>();
        List<Irregular> irregular = new ArrayList<>();
        Files.walkFileTree(start, EnumSet.noneOf(java.nio.file.FileVisitOption.class), Integer.MAX_VALUE,
                new SimpleFileVisitor<>() {
                    @Override
                    public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) {
                        if (!dir.equals(start) && !decodable(dir.getFileName())) {
                            irregular.add(new Irregular(path(start, dir), "directory whose name is not valid UTF-8"));
                            return FileVisitResult.SKIP_SUBTREE;
                        }
                        return FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                        if (skip.contains(file)) {
                            return FileVisitResult.CONTINUE;
                        }
                        String path = path(start, file);
                        String problem = ManifestPaths.problem(path);
                        if (!decodable(file.getFileName())) {
                            irregular.add(new Irregular(path, "name not valid UTF-8"));
                        } else if (problem != null) {
                            irregular.add(new Irregular(path, "path " + problem));
                        } else if (attrs.isSymbolicLink()) {
                            irregular.add(new Irregular(path, "symbolic link"));
                        } else if (attrs.isRegularFile()) {
                            files.add(new File(path, file, attrs.size()));
                        } else {
                            irregular.add(new Irregular(path, "special file (FIFO, socket or device)"));
                        }
                        return FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                        throw e;
                    }
                });
        files.sort((a, b) -> ManifestPaths.ORDER.compare(a.path(), b.path()));
        irregular.sort((a, b) -> ManifestPaths.ORDER.compare(a.path(), b.path()));
        return new TreeScan(List.copyOf(files), List.copyOf(irregular));
    }

    /** {@code p} with its directory's real path, as the walk from the real root sees it. */
    private static Path real(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        try {
            return abs.getParent().toRealPath().resolve(abs.getFileName());
        } catch (IOException e) {
            return abs;
        }
    }

    /** The manifest path of {@code file}: relative to {@code start}, joined with '/'. */
    static String path(Path start, Path file) {
        StringBuilder b = new StringBuilder();
        for (Path name : start.relativize(file)) {
            if (!b.isEmpty()) b.append('/');
            b.append(name);
        }
        return b.toString();
    }

    /**
     * A name the JDK decoded without loss: bytes that are not valid in the file-name
     * encoding come back as U+FFFD, and the string then names another file.
     */
    private static boolean decodable(Path name) {
        return Path.of(name.toString()).equals(name);
    }
}
