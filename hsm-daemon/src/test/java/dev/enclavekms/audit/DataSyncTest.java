package dev.enclavekms.audit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The native fdatasync the audit log commits with (real files, real system calls). */
class DataSyncTest {
    @TempDir
    Path dir;

    @Test
    void sync_realFile_succeedsAndKnowsItsFile() throws Exception {
        Path f = dir.resolve("audit-00000000000000000001.jsonl");
        Files.writeString(f, "{}\n");
        Object key = Files.readAttributes(f, BasicFileAttributes.class).fileKey();
        DataSync s = DataSync.open(f, key);
        assertNotNull(s, "FFM and libc's fdatasync are available on the platforms the daemon supports");
        try {
            s.sync();
            assertTrue(s.isOf(key));
            assertFalse(s.isOf("another file"));
        } finally {
            s.close();
        }
        assertFalse(s.isOf(key), "closed");
    }

    @Test
    void open_missingFile_refusedWithTheSystemsReason() {
        IOException e = assertThrows(IOException.class, () -> DataSync.open(dir.resolve("gone"), null));
        assertTrue(e.getMessage().contains("No such file or directory"), e.getMessage());
    }

    @Test
    void requireInPlace_fileRemovedOrReplaced_saysWhich() throws Exception {
        Path f = dir.resolve("audit-00000000000000000001.jsonl");
        Files.writeString(f, "{}\n");
        DataSync s = DataSync.open(f, Files.readAttributes(f, BasicFileAttributes.class).fileKey());
        try {
            s.requireInPlace();
            Files.move(f, dir.resolve("moved"));
            IOException gone = assertThrows(IOException.class, s::requireInPlace);
            assertTrue(gone.getMessage().contains("is gone"), gone.getMessage());
            Files.writeString(f, "{}\n");
            IOException replaced = assertThrows(IOException.class, s::requireInPlace);
            assertTrue(replaced.getMessage().contains("was replaced by another file"), replaced.getMessage());
        } finally {
            s.close();
        }
    }

    @Test
    void open_fileReplacedSinceTheLogOpenedIt_refused() throws Exception {
        Path f = dir.resolve("audit-00000000000000000001.jsonl");
        Files.writeString(f, "{}\n");
        Object key = Files.readAttributes(f, BasicFileAttributes.class).fileKey();
        Path other = Files.writeString(dir.resolve("other"), "{}\n{}\n"); // made while f exists: another inode
        Files.move(other, f, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        IOException e = assertThrows(IOException.class, () -> DataSync.open(f, key));
        assertTrue(e.getMessage().contains("was replaced"), e.getMessage());
    }
}
