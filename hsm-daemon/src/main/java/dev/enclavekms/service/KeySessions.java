package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.json.Json;

import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Ephemeral key sessions (docs/sessions.md): a tenant opens a session for one task,
 * uploads named blobs (evaluation keys, public keys) in chunks, reads them back, and
 * closes it — or lets it expire, or an operator revokes all of the tenant's sessions.
 *
 * <p>Storage, under one directory:
 * <ul>
 *   <li>{@code keys/ID.json} — the session's record: tenant, identity, times, and its
 *       AES-256 data key wrapped by the enclave under {@value #WRAP_KEY};</li>
 *   <li>{@code material/ID/NAME.blob} — each blob as AES-256-GCM chunks under the data
 *       key (format in docs/formats.md).</li>
 * </ul>
 *
 * <p>Ending a session is crypto-shredding, in this order: the in-memory data key is
 * zeroed, the key record is overwritten, synced and unlinked and its directory synced —
 * from then on the material is unreadable, whatever happens next — and only then are the
 * material files removed. A crash between the two steps leaves ciphertext without a
 * key; the sweep at start removes it. Every session of another tenant is reported
 * exactly as a missing one.
 */
public final class KeySessions {
    /** The internal enclave key that wraps every session's data key. */
    public static final String WRAP_KEY = "_sessions/wrap";
    public static final Duration DEFAULT_TTL = Duration.ofHours(1);
    /** No configuration can make a session live longer than this. */
    public static final Duration HARD_MAX_TTL = Duration.ofHours(4);
    /** Largest chunk of one PutSessionMaterial call, and of each streamed GetSessionMaterial reply. */
    public static final int MAX_CHUNK_BYTES = 1024 * 1024;
    public static final int MAX_NAME = 128;
    /** Random 96-bit nonces: far below the 2^32 messages NIST allows per key. */
    static final long MAX_CHUNKS_PER_SESSION = 1L << 24;

    private static final System.Logger LOG = System.getLogger(KeySessions.class.getName());
    private static final Pattern ID = Pattern.compile("[0-9a-f]{48}");
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    private static final int ID_BYTES = 24;
    private static final int KEY_BYTES = 32;
    private static final int NONCE_BYTES = 12;
    private static final int TAG_BYTES = 16;
    /** Chunk record header: plaintext length (u32), flags (u8), nonce. */
    private static final int HEADER_BYTES = 4 + 1 + NONCE_BYTES;
    private static final byte FINAL = 1;
    private static final byte[] CHUNK_AAD_LABEL = "enclave-kms session chunk v1".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] KEY_AAD_LABEL = "enclave-kms session key v1".getBytes(StandardCharsets.US_ASCII);

    /**
     * @param defaultTtl           when OpenSession names none
     * @param maxTtl               the longest a caller may ask for (capped at {@link #HARD_MAX_TTL})
     * @param maxSessionBytes      all blobs of one session together
     * @param maxBlobBytes         one blob
     * @param maxBlobs             blobs per session
     * @param maxSessionsPerTenant open sessions per tenant
     */
    public record Limits(Duration defaultTtl, Duration maxTtl, long maxSessionBytes, long maxBlobBytes, int maxBlobs,
                         int maxSessionsPerTenant) {
        public static final Limits DEFAULT = new Limits(DEFAULT_TTL, HARD_MAX_TTL, 1L << 30, 1L << 30, 64, 64);

        public Limits {
            if (maxTtl.compareTo(HARD_MAX_TTL) > 0 || maxTtl.isNegative() || maxTtl.isZero()) {
                throw new IllegalArgumentException("sessions.max-ttl-seconds must be 1.." + HARD_MAX_TTL.toSeconds());
            }
            if (defaultTtl.compareTo(maxTtl) > 0) {
                defaultTtl = maxTtl;
            }
            if (maxSessionBytes < 1 || maxBlobBytes < 1 || maxBlobs < 1 || maxSessionsPerTenant < 1) {
                throw new IllegalArgumentException("session limits must be positive");
            }
        }

        public Limits withMaxTtl(Duration d) {
            return new Limits(defaultTtl, d, maxSessionBytes, maxBlobBytes, maxBlobs, maxSessionsPerTenant);
        }

        public Limits withMaxSessionBytes(long n) {
            return new Limits(defaultTtl, maxTtl, n, Math.min(maxBlobBytes, n), maxBlobs, maxSessionsPerTenant);
        }
    }

    /** A session as the caller learns of it on opening. */
    public record Opened(String id, String tenant, Instant expires, long ttlSeconds) {
    }

    /** What a put left: the blob's size so far and whether it is sealed. */
    public record Stored(String name, long size, boolean sealed) {
    }

    /** The daemon's record of one session's end (open and close are audited as calls). */
    public record Ended(String id, String tenant, String reason) {
    }

    private final Enclave enclave;
    private final ObjectId wrapKey;
    private final Path keysDir;
    private final Path materialDir;
    private final Clock clock;
    private final Limits limits;
    private final Consumer<Ended> ended;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, Session> sessions = new ConcurrentHashMap<>();

    private KeySessions(Enclave enclave, ObjectId wrapKey, Path dir, Clock clock, Limits limits, Consumer<Ended> ended) {
        this.enclave = enclave;
        this.wrapKey = wrapKey;
        this.keysDir = dir.resolve("keys");
        this.materialDir = dir.resolve("material");
        this.clock = clock;
        this.limits = limits;
        this.ended = ended;
    }

    /**
     * Loads the sessions left by the previous process and shreds those that expired
     * meanwhile; removes material whose key record is gone (a crash while shredding).
     *
     * @param ended told of every session that ends other than by a call (expiry), for the audit log
     */
    public static KeySessions open(Enclave enclave, ObjectId wrapKey, Path dir, Clock clock, Limits limits,
                                   Consumer<Ended> ended) throws IOException {
        KeySessions s = new KeySessions(enclave, wrapKey, dir, clock, limits, ended);
        Files.createDirectories(s.keysDir);
        Files.createDirectories(s.materialDir);
        s.load();
        s.sweep();
        return s;
    }

    public Limits limits() {
        return limits;
    }

    // ------------------------------------------------------------------ operations

    /**
     * Opens a session for the caller's tenant; {@code ttl} null for the default. The longest
     * allowed is the daemon's {@code sessions.max-ttl-seconds}, or the tenant's
     * {@code session_max_ttl_seconds} in the policy when that is shorter.
     */
    public Opened open(Caller caller, Duration ttl) throws KmsError {
        Duration max = limits.maxTtl();
        String maxSource = "the daemon's sessions.max-ttl-seconds";
        dev.enclavekms.policy.Tenant own = caller.tenant() == null || caller.policy() == null ? null
                : caller.policy().tenant(caller.tenant());
        if (own != null && own.sessionMaxTtl() != null && own.sessionMaxTtl().compareTo(max) < 0) {
            max = own.sessionMaxTtl();
            maxSource = "tenant " + own.name() + "'s session_max_ttl_seconds";
        }
        Duration t = ttl == null ? (limits.defaultTtl().compareTo(max) > 0 ? max : limits.defaultTtl()) : ttl;
        if (t.compareTo(max) > 0 || t.isNegative() || t.isZero()) {
            throw new KmsError.InvalidParameter("ttl_seconds", "ttl_seconds must be 1.." + max.toSeconds()
                    + " (" + maxSource + ")");
        }
        String tenant = caller.tenant();
        if (tenant == null) {
            throw new KmsError.PermissionDenied("the caller belongs to no tenant");
        }
        long open = sessions.values().stream().filter(x -> x.tenant.equals(tenant)).count();
        if (open >= limits.maxSessionsPerTenant()) {
            throw new KmsError.SessionLimitExceeded(limits.maxSessionsPerTenant(), "tenant " + tenant + " has "
                    + open + " open sessions, the most allowed (sessions.max-per-tenant); close one first");
        }
        String id;
        byte[] dataKey;
        try (SecretBytes idBytes = enclave.random(ID_BYTES)) {
            id = HexFormat.of().formatHex(idBytes.reveal());
        } catch (EnclaveException e) {
            throw new KmsError.EnclaveUnavailable("cannot draw a session id: " + e.getMessage(), e);
        }
        try (SecretBytes k = enclave.random(KEY_BYTES)) {
            dataKey = k.reveal();
        } catch (EnclaveException e) {
            throw new KmsError.EnclaveUnavailable("cannot draw a session key: " + e.getMessage(), e);
        }
        Instant now = clock.instant();
        Session s = new Session(id, tenant, caller.isSystem() ? "system" : caller.identity().describe(), now,
                now.plus(t));
        try {
            Sealed wrapped = enclave.encrypt(wrapKey, keyAad(id), dataKey);
            writeKeyRecord(s, wrapped);
            Files.createDirectories(materialDir.resolve(id));
        } catch (EnclaveException e) {
            Arrays.fill(dataKey, (byte) 0);
            throw new KmsError.EnclaveUnavailable("cannot wrap the session key: " + e.getMessage(), e);
        } catch (IOException e) {
            Arrays.fill(dataKey, (byte) 0);
            throw new KmsError.Internal("cannot store the session", e);
        }
        s.dataKey = dataKey;
        sessions.put(id, s);
        return new Opened(id, tenant, s.expires, t.toSeconds());
    }

    /**
     * Appends one chunk to blob {@code name}; {@code offset} must be the blob's size so far
     * (chunks are contiguous), and {@code last} seals it.
     */
    public Stored put(Caller caller, String id, String name, byte[] data, long offset, boolean last) throws KmsError {
        checkName(name);
        if (data.length > MAX_CHUNK_BYTES) {
            throw new KmsError.InvalidParameter("data", "a chunk is at most " + MAX_CHUNK_BYTES + " bytes");
        }
        Session s = find(caller, id);
        synchronized (s) {
            live(s);
            Blob b = s.blobs.get(name);
            if (b == null) {
                if (s.blobs.size() >= limits.maxBlobs()) {
                    throw new KmsError.SessionLimitExceeded(limits.maxBlobs(), "the session has "
                            + s.blobs.size() + " blobs, the most allowed (sessions.max-blobs)");
                }
                b = new Blob(name);
            }
            if (b.sealed) {
                throw new KmsError.InvalidParameter("name", "blob '" + name + "' is final; it cannot be changed");
            }
            if (offset != b.size) {
                throw new KmsError.InvalidParameter("offset", "blob '" + name + "' has " + b.size
                        + " bytes; the next chunk must start at offset " + b.size);
            }
            if (data.length == 0 && !last) {
                throw new KmsError.InvalidParameter("data", "only the final chunk may be empty");
            }
            if (b.size + data.length > limits.maxBlobBytes()) {
                throw new KmsError.SessionLimitExceeded(limits.maxBlobBytes(), "a blob is at most "
                        + limits.maxBlobBytes() + " bytes (sessions.max-blob-bytes)");
            }
            if (s.bytes + data.length > limits.maxSessionBytes()) {
                throw new KmsError.SessionLimitExceeded(limits.maxSessionBytes(), "a session holds at most "
                        + limits.maxSessionBytes() + " bytes (sessions.max-session-bytes)");
            }
            if (s.chunks >= MAX_CHUNKS_PER_SESSION) {
                throw new KmsError.SessionLimitExceeded(MAX_CHUNKS_PER_SESSION, "a session holds at most "
                        + MAX_CHUNKS_PER_SESSION + " chunks; send larger chunks");
            }
            byte[] key = dataKey(s);
            byte[] nonce = new byte[NONCE_BYTES];
            random.nextBytes(nonce);
            byte flags = last ? FINAL : 0;
            try {
                byte[] ct = cipher(Cipher.ENCRYPT_MODE, key, nonce, chunkAad(s.id, name, b.chunks, flags)).doFinal(data);
                ByteBuffer rec = ByteBuffer.allocate(HEADER_BYTES + ct.length);
                rec.putInt(data.length).put(flags).put(nonce).put(ct).flip();
                try (FileChannel ch = FileChannel.open(blobFile(s.id, name), StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE)) {
                    // Written at the end of what the session knows of, and cut back there on
                    // failure: a torn record must not sit before the next chunk.
                    long at = ch.size();
                    try {
                        while (rec.hasRemaining()) at += ch.write(rec, at);
                        if (last) ch.force(false);
                    } catch (IOException e) {
                        ch.truncate(at - rec.position());
                        throw e;
                    }
                }
            } catch (GeneralSecurityException | IOException e) {
                throw new KmsError.Internal("cannot store session material", e);
            }
            b.size += data.length;
            b.chunks++;
            b.sealed = last;
            s.bytes += data.length;
            s.chunks++;
            s.blobs.put(name, b);
            return new Stored(name, b.size, b.sealed);
        }
    }

    /**
     * A reader of sealed blob {@code name}, one chunk at a time (as it was put), so that a
     * blob of any size is streamed in bounded memory. The session's end stops it.
     */
    public MaterialReader read(Caller caller, String id, String name) throws KmsError {
        checkName(name);
        Session s = find(caller, id);
        synchronized (s) {
            live(s);
            Blob b = s.blobs.get(name);
            if (b == null || !b.sealed) {
                throw new KmsError.SessionMaterialNotFound(name, b == null ? "the session has no blob '" + name + "'"
                        : "blob '" + name + "' is not final yet (put its last chunk with final: true)");
            }
            try {
                return new MaterialReader(s, name, b.size, b.chunks, dataKey(s),
                        FileChannel.open(blobFile(s.id, name), StandardOpenOption.READ));
            } catch (IOException e) {
                throw new KmsError.Internal("cannot read session material", e);
            }
        }
    }

    /** Ends the session now (CloseSession). */
    public void close(Caller caller, String id) throws KmsError {
        Session s = find(caller, id);
        synchronized (s) {
            live(s);
            shred(s, "closed");
        }
    }

    /** Ends every session of {@code tenant} (RevokeSessions); returns how many. */
    public int revoke(Caller caller, String tenant) throws KmsError {
        caller.requireTenant(tenant);
        int n = 0;
        for (Session s : List.copyOf(sessions.values())) {
            if (!s.tenant.equals(tenant)) continue;
            synchronized (s) {
                if (!s.ended) {
                    shred(s, "revoked");
                    n++;
                }
            }
        }
        return n;
    }

    /** Shreds every expired session; the scheduler runs it periodically, and it ran at start. */
    public void sweep() {
        Instant now = clock.instant();
        for (Session s : List.copyOf(sessions.values())) {
            if (!now.isBefore(s.expires)) {
                synchronized (s) {
                    if (!s.ended) {
                        try {
                            shred(s, "expired");
                        } catch (KmsError e) {
                            LOG.log(System.Logger.Level.ERROR, "cannot end expired session " + s.id + ": "
                                    + e.getMessage() + "; retried at the next sweep", e.getCause());
                        }
                    }
                }
            }
        }
    }

    /**
     * The daemon stops: the in-memory data keys are zeroed. The sessions stay (their wrapped
     * keys are on disk) and are loaded by the next start, or shredded then if expired.
     */
    public void close() {
        for (Session s : sessions.values()) {
            synchronized (s) {
                if (s.dataKey != null) {
                    Arrays.fill(s.dataKey, (byte) 0);
                    s.dataKey = null;
                }
            }
        }
    }

    /** Open sessions of {@code tenant} (for tests and status). */
    public long count(String tenant) {
        return sessions.values().stream().filter(s -> s.tenant.equals(tenant)).count();
    }

    // ------------------------------------------------------------------ the reader

    /** Sequential decryption of one sealed blob; not thread-safe. */
    public final class MaterialReader implements AutoCloseable {
        private final Session session;
        private final String name;
        private final long size;
        private final long chunks;
        private final byte[] key;
        private final FileChannel file;
        private long index;
        private long offset;

        private MaterialReader(Session session, String name, long size, long chunks, byte[] key, FileChannel file) {
            this.session = session;
            this.name = name;
            this.size = size;
            this.chunks = chunks;
            this.key = key;
            this.file = file;
        }

        public long size() {
            return size;
        }

        public boolean hasNext() {
            return index < chunks;
        }

        /** The offset of the chunk {@link #next()} returns. */
        public long offset() {
            return offset;
        }

        /** The next chunk's plaintext, its tag and its place in the blob checked. */
        public byte[] next() throws KmsError {
            synchronized (session) {
                if (session.ended) {
                    throw new KmsError.SessionNotFound(session.id);
                }
            }
            try {
                ByteBuffer h = ByteBuffer.allocate(HEADER_BYTES);
                readFully(h);
                h.flip();
                int length = h.getInt();
                byte flags = h.get();
                byte[] nonce = new byte[NONCE_BYTES];
                h.get(nonce);
                boolean last = index == chunks - 1;
                if (length < 0 || length > MAX_CHUNK_BYTES || flags != (last ? FINAL : 0)) {
                    throw corrupt(null);
                }
                ByteBuffer ct = ByteBuffer.allocate(length + TAG_BYTES);
                readFully(ct);
                byte[] pt = cipher(Cipher.DECRYPT_MODE, key, nonce, chunkAad(session.id, name, index, flags))
                        .doFinal(ct.array());
                index++;
                offset += pt.length;
                return pt;
            } catch (GeneralSecurityException | IOException e) {
                throw corrupt(e);
            }
        }

        private KmsError corrupt(Exception e) {
            return new KmsError.Internal("session material " + session.id + "/" + name + " is corrupt", e);
        }

        private void readFully(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) {
                if (file.read(b) < 0) throw new IOException("truncated");
            }
        }

        @Override
        public void close() {
            try {
                file.close();
            } catch (IOException ignored) {
                // read-only
            }
        }
    }

    // ------------------------------------------------------------------ internals

    private static final class Session {
        final String id;
        final String tenant;
        final String identity;
        final Instant created;
        final Instant expires;
        final Map<String, Blob> blobs = new LinkedHashMap<>();
        long bytes;
        long chunks;
        /** Unwrapped on first use after a restart; zeroed when the session ends. */
        byte[] dataKey;
        boolean ended;

        Session(String id, String tenant, String identity, Instant created, Instant expires) {
            this.id = id;
            this.tenant = tenant;
            this.identity = identity;
            this.created = created;
            this.expires = expires;
        }
    }

    private static final class Blob {
        final String name;
        long size;
        long chunks;
        boolean sealed;

        Blob(String name) {
            this.name = name;
        }
    }

    /** The session, if it is the caller's tenant's; another tenant's is exactly a missing one. */
    private Session find(Caller caller, String id) throws KmsError {
        Session s = id == null || !ID.matcher(id).matches() ? null : sessions.get(id);
        if (s == null || !(caller.isSystem() || s.tenant.equals(caller.tenant()))) {
            throw new KmsError.SessionNotFound(id);
        }
        return s;
    }

    /** Holding the session's lock: refuses an ended session, and ends an expired one on the spot. */
    private void live(Session s) throws KmsError {
        if (s.ended) {
            throw new KmsError.SessionNotFound(s.id);
        }
        if (!clock.instant().isBefore(s.expires)) {
            shred(s, "expired");
            throw new KmsError.SessionNotFound(s.id);
        }
    }

    private static void checkName(String name) throws KmsError {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new KmsError.InvalidParameter("name", "a material name is 1-" + MAX_NAME
                    + " characters of A-Z a-z 0-9 . _ -, starting with a letter or digit");
        }
    }

    private byte[] dataKey(Session s) throws KmsError {
        if (s.dataKey != null) {
            return s.dataKey;
        }
        try {
            Map<String, Object> rec = Json.parseObject(Files.readString(keyFile(s.id)));
            Sealed wrapped = new Sealed(Base64.getDecoder().decode((String) rec.get("iv")),
                    Base64.getDecoder().decode((String) rec.get("wrapped")));
            try (SecretBytes k = enclave.decrypt(wrapKey, keyAad(s.id), wrapped)) {
                s.dataKey = k.reveal();
            }
            return s.dataKey;
        } catch (EnclaveException e) {
            throw new KmsError.EnclaveUnavailable("cannot unwrap the session key: " + e.getMessage(), e);
        } catch (IOException | dev.enclavekms.json.JsonException | RuntimeException e) {
            throw new KmsError.Internal("cannot read the session key record", e);
        }
    }

    /**
     * Crypto-shredding, holding the session's lock. The key record goes first and durably:
     * once it is gone the material is ciphertext under a key that exists nowhere, so the
     * files that follow can be removed lazily (and are, by the sweep at start, after a crash).
     */
    private void shred(Session s, String reason) throws KmsError {
        s.ended = true;
        if (s.dataKey != null) {
            Arrays.fill(s.dataKey, (byte) 0);
            s.dataKey = null;
        }
        try {
            destroyKeyRecord(s.id);
        } catch (IOException e) {
            s.ended = false; // still listed: the next sweep tries again
            throw new KmsError.Internal("cannot destroy the key of session " + s.id, e);
        }
        sessions.remove(s.id);
        removeMaterial(s.id);
        if (!reason.equals("closed")) {
            ended.accept(new Ended(s.id, s.tenant, reason));
        }
        LOG.log(System.Logger.Level.INFO, "session " + s.id + " of tenant " + s.tenant + " " + reason);
    }

    /** Overwrites the wrapped key in place (best effort on copy-on-write media), then unlinks it; both synced. */
    private void destroyKeyRecord(String id) throws IOException {
        Path f = keyFile(id);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
            long n = ch.size();
            ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(n, 1 << 16));
            for (long at = 0; at < n; ) {
                zeros.clear().limit((int) Math.min(zeros.capacity(), n - at));
                at += ch.write(zeros, at);
            }
            ch.force(true);
        } catch (NoSuchFileException gone) {
            return;
        }
        Files.deleteIfExists(f);
        syncDir(keysDir);
    }

    private void removeMaterial(String id) {
        Path d = materialDir.resolve(id);
        try (Stream<Path> files = Files.walk(d)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (NoSuchFileException gone) {
            // nothing left
        } catch (IOException e) {
            // The key is gone, so what is left is unreadable; the sweep at the next start removes it.
            LOG.log(System.Logger.Level.WARNING, "cannot remove the files of ended session " + id + ": " + e.getMessage());
        }
    }

    private void writeKeyRecord(Session s, Sealed wrapped) throws IOException {
        Map<String, Object> rec = new LinkedHashMap<>();
        rec.put("format", 1L);
        rec.put("id", s.id);
        rec.put("tenant", s.tenant);
        rec.put("identity", s.identity);
        rec.put("created", s.created.toString());
        rec.put("expires", s.expires.toString());
        rec.put("wrap_key", WRAP_KEY);
        rec.put("iv", Base64.getEncoder().encodeToString(wrapped.iv()));
        rec.put("wrapped", Base64.getEncoder().encodeToString(wrapped.ciphertext()));
        Path tmp = keysDir.resolve(s.id + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(Json.write(rec).getBytes(StandardCharsets.UTF_8)));
            ch.force(true);
        }
        Files.move(tmp, keyFile(s.id), StandardCopyOption.ATOMIC_MOVE);
        syncDir(keysDir);
    }

    private void load() throws IOException {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(keysDir)) {
            for (Path f : ds) {
                String file = f.getFileName().toString();
                if (file.endsWith(".tmp")) {
                    Files.deleteIfExists(f); // never renamed: its session was never opened
                    continue;
                }
                String id = file.endsWith(".json") ? file.substring(0, file.length() - 5) : "";
                if (!ID.matcher(id).matches()) continue;
                try {
                    Map<String, Object> rec = Json.parseObject(Files.readString(f));
                    Session s = new Session(id, (String) rec.get("tenant"), (String) rec.get("identity"),
                            Instant.parse((String) rec.get("created")), Instant.parse((String) rec.get("expires")));
                    loadBlobs(s);
                    sessions.put(id, s);
                } catch (RuntimeException | IOException | dev.enclavekms.json.JsonException e) {
                    LOG.log(System.Logger.Level.ERROR, "session record " + f + " is unreadable; its session is"
                            + " shredded: " + e.getMessage());
                    destroyKeyRecord(id);
                }
            }
        }
        // Material without a key record: a crash after the key was shredded. Unreadable; removed.
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(materialDir)) {
            for (Path d : ds) {
                String id = d.getFileName().toString();
                if (!sessions.containsKey(id)) {
                    removeMaterial(id);
                }
            }
        }
    }

    /** Rebuilds sizes from the chunk headers; a torn last record (crash mid-put) is cut off. */
    private void loadBlobs(Session s) throws IOException {
        Path d = materialDir.resolve(s.id);
        if (!Files.isDirectory(d)) return;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(d, "*.blob")) {
            for (Path f : ds) {
                String file = f.getFileName().toString();
                Blob b = new Blob(file.substring(0, file.length() - 5));
                try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                    long at = 0;
                    long end = ch.size();
                    ByteBuffer h = ByteBuffer.allocate(HEADER_BYTES);
                    while (at + HEADER_BYTES <= end && !b.sealed) {
                        h.clear();
                        ch.read(h, at);
                        int length = h.getInt(0);
                        byte flags = h.get(4);
                        long next = at + HEADER_BYTES + length + TAG_BYTES;
                        if (length < 0 || length > MAX_CHUNK_BYTES || next > end) break;
                        b.size += length;
                        b.chunks++;
                        b.sealed = flags == FINAL;
                        at = next;
                    }
                    if (at < end) ch.truncate(at);
                }
                s.blobs.put(b.name, b);
                s.bytes += b.size;
                s.chunks += b.chunks;
            }
        }
    }

    private Path keyFile(String id) {
        return keysDir.resolve(id + ".json");
    }

    private Path blobFile(String id, String name) {
        return materialDir.resolve(id).resolve(name + ".blob");
    }

    private static void syncDir(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    private static Cipher cipher(int mode, byte[] key, byte[] nonce, byte[] aad) throws GeneralSecurityException {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(mode, new SecretKeySpec(key, "AES"), new GCMParameterSpec(TAG_BYTES * 8, nonce));
        c.updateAAD(aad);
        return c;
    }

    /** label ‖ u8 len ‖ session id ‖ u8 len ‖ name ‖ u64 chunk index ‖ u8 flags (docs/formats.md). */
    static byte[] chunkAad(String id, String name, long index, byte flags) {
        byte[] i = id.getBytes(StandardCharsets.US_ASCII);
        byte[] n = name.getBytes(StandardCharsets.US_ASCII);
        return ByteBuffer.allocate(CHUNK_AAD_LABEL.length + 1 + i.length + 1 + n.length + 8 + 1)
                .put(CHUNK_AAD_LABEL).put((byte) i.length).put(i).put((byte) n.length).put(n).putLong(index).put(flags)
                .array();
    }

    /** label ‖ session id: the wrapped key opens only for its own session. */
    static byte[] keyAad(String id) {
        byte[] i = id.getBytes(StandardCharsets.US_ASCII);
        return ByteBuffer.allocate(KEY_AAD_LABEL.length + i.length).put(KEY_AAD_LABEL).put(i).array();
    }

    /** For tests: the ids of the open sessions. */
    List<String> ids() {
        return new ArrayList<>(sessions.keySet());
    }
}
