package dev.enclavekms.system;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A throw-away file-system root for the systemd tools' {@code --root=}: the host's own
 * unit files (so that sysinit.target, sockets.target … resolve) and {@code kill}, plus
 * whatever a test installs into it. {@code systemd-analyze verify --root} then checks our
 * units as installed, including that every executable they name exists.
 */
final class HostRoot {
    private final Path root;

    private HostRoot(Path root) {
        this.root = root;
    }

    static HostRoot create(Path root) throws IOException {
        Path hostUnits = Stream.of(Path.of("/usr/lib/systemd/system"), Path.of("/lib/systemd/system"))
                .filter(Files::isDirectory).findFirst()
                .orElseThrow(() -> new AssertionError("no systemd unit directory on this host: install the"
                        + " 'systemd' package (bin/lib.sh ensure_packages does)"));
        Path units = root.resolve("usr/lib/systemd/system");
        Files.createDirectories(units);
        try (Stream<Path> s = Files.list(hostUnits)) {
            for (Path p : s.toList()) {
                if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                    Files.copy(p, units.resolve(p.getFileName()), StandardCopyOption.COPY_ATTRIBUTES);
                }
            }
        }
        Files.createDirectories(root.resolve("usr/bin"));
        Files.copy(Path.of("/usr/bin/kill"), root.resolve("usr/bin/kill"), StandardCopyOption.COPY_ATTRIBUTES);
        if (!Files.exists(root.resolve("bin"), LinkOption.NOFOLLOW_LINKS)) {
            Files.createSymbolicLink(root.resolve("bin"), Path.of("usr/bin"));
        }
        Files.createDirectories(root.resolve("etc"));
        return new HostRoot(root);
    }

    Path path() {
        return root;
    }

    /** {@code /usr/sbin/x} inside the root. */
    Path resolve(String absolute) {
        return root.resolve(absolute.substring(1));
    }

    /** Copies a repository file to an absolute path inside the root. */
    HostRoot install(String repoFile, String absolute, boolean executable) throws IOException {
        Path target = resolve(absolute);
        Files.createDirectories(target.getParent());
        Files.copy(Commands.repoFile(repoFile), target, StandardCopyOption.REPLACE_EXISTING);
        if (executable) {
            target.toFile().setExecutable(true, false);
        }
        return this;
    }

    /** Runs a systemd tool; fails with a clear message when it is not installed. */
    static Commands.Result systemdTool(String... command) throws IOException, InterruptedException {
        requireTool(command[0]);
        return Commands.run(List.of(command), Map.of("SYSTEMD_LOG_COLOR", "0", "SYSTEMD_COLORS", "0"), null);
    }

    static void requireTool(String tool) throws IOException, InterruptedException {
        if (Commands.run("sh", "-c", "command -v " + tool).exit() != 0) {
            throw new AssertionError(tool + " is not installed; these checks need it. On Debian it comes with"
                    + " the 'systemd' package (apt-get install systemd; bin/lib.sh ensure_packages installs it)");
        }
    }

    /** The enclave-kms* unit files installed in the root (/usr/lib/systemd/system or /lib/systemd/system). */
    List<Path> ourUnitFiles() throws IOException {
        List<Path> files = new ArrayList<>();
        for (String d : List.of("/usr/lib/systemd/system", "/lib/systemd/system")) {
            Path dir = resolve(d);
            if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) continue;
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(p -> p.getFileName().toString().startsWith("enclave-kms")).sorted().forEach(files::add);
            }
        }
        return files;
    }

    /** The names of {@link #ourUnitFiles}. */
    List<String> ourUnits() throws IOException {
        return ourUnitFiles().stream().map(p -> p.getFileName().toString()).toList();
    }
}
