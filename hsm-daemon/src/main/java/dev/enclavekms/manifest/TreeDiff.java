package dev.enclavekms.manifest;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * How a tree differs from its manifest: every path added, removed or modified, sorted by
 * path. A renamed file is a removal and an addition. Anything the manifest cannot hold
 * (a symbolic link, a FIFO ...) is a difference: added, or modified when its path names
 * a file of the manifest.
 */
public final class TreeDiff {
    private TreeDiff() {
    }

    public enum Change { ADDED, REMOVED, MODIFIED }

    /** One difference; {@code detail} says what is there now when it is not a readable regular file. */
    public record Difference(String path, Change change, String detail) { }

    public static List<Difference> of(Manifest manifest, TreeScan tree, List<TreeHasher.Result> hashes) {
        Map<String, byte[]> expected = new TreeMap<>(ManifestPaths.ORDER);
        for (Manifest.Entry e : manifest.entries()) expected.put(e.path(), e.sha256());
        Map<String, Difference> found = new TreeMap<>(ManifestPaths.ORDER);
        Map<String, Boolean> seen = new TreeMap<>(ManifestPaths.ORDER);
        for (int i = 0; i < tree.files().size(); i++) {
            String path = tree.files().get(i).path();
            TreeHasher.Result r = hashes.get(i);
            seen.put(path, true);
            byte[] want = expected.get(path);
            if (want == null) {
                found.put(path, new Difference(path, Change.ADDED, r.ok() ? null : "unreadable: " + r.error()));
            } else if (!r.ok()) {
                found.put(path, new Difference(path, Change.MODIFIED, "unreadable: " + r.error()));
            } else if (!Arrays.equals(want, r.sha256())) {
                found.put(path, new Difference(path, Change.MODIFIED, null));
            }
        }
        for (TreeScan.Irregular x : tree.irregular()) {
            seen.put(x.path(), true);
            found.put(x.path(), new Difference(x.path(), expected.containsKey(x.path()) ? Change.MODIFIED : Change.ADDED,
                    x.kind()));
        }
        for (String path : expected.keySet()) {
            if (!seen.containsKey(path)) {
                found.put(path, new Difference(path, Change.REMOVED, null));
            }
        }
        return new ArrayList<>(found.values());
    }
}
