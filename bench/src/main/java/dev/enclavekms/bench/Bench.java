package dev.enclavekms.bench;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.pkcs11.Pkcs11Config;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.json.Json;
import org.HdrHistogram.Histogram;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code bench/run [--quick]}: starts a dev daemon on a fresh SoftHSM token, measures every
 * operation through it and the baselines (direct in-process PKCS#11, process-per-call
 * pkcs11-tool, the empty-call transport floor) in the same run, and writes
 * {@code bench/results/latest.json} and {@code latest.md}. Nothing here asserts a time.
 */
public final class Bench {
    static final String KMS = "dev.enclavekms.Kms.";
    static final Map<String, String> CONTEXT = Map.of("bench", "1");
    static final int BATCH = 10_000;

    record Config(int conns, int depth) {
    }

    private final boolean quick;
    private final Path repo;
    private final Path out;
    private final double warmS;
    private final double repS;
    private final int reps;
    private final List<Config> configs;
    private final List<Row> rows = new ArrayList<>();
    private final SecureRandom rnd = new SecureRandom();

    Bench(boolean quick, Path repo, Path out) {
        this.quick = quick;
        this.repo = repo;
        this.out = out;
        this.warmS = quick ? 0.3 : 1.0;
        this.repS = quick ? 0.4 : 2.0;
        this.reps = quick ? 3 : 5;
        this.configs = quick
                ? List.of(new Config(1, 1), new Config(2, 1), new Config(4, 4), new Config(16, 1))
                : List.of(new Config(1, 1), new Config(2, 1), new Config(4, 1), new Config(8, 1), new Config(16, 1),
                        new Config(64, 1), new Config(1, 8), new Config(4, 8), new Config(16, 8));
    }

    public static void main(String[] args) throws Exception {
        boolean quick = false;
        Path repo = Path.of(".").toAbsolutePath().normalize();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--quick" -> quick = true;
                case "--repo" -> repo = Path.of(args[++i]).toAbsolutePath().normalize();
                default -> throw new IllegalArgumentException("usage: bench/run [--quick]");
            }
        }
        new Bench(quick, repo, repo.resolve("bench/results")).runAll();
    }

    void runAll() throws Exception {
        Map<String, String> header = new LinkedHashMap<>();
        header.put("started", Instant.now().toString());
        header.put("mode", quick ? "--quick (short repetitions: smoke numbers, not a measurement to quote)" : "full");
        header.put("cpus", Runtime.getRuntime().availableProcessors() + " (shared with other users: numbers are noisy)");
        header.put("load average at start", loadAvg());
        header.put("jdk", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        header.put("repetitions", reps + " × " + repS + " s after " + warmS + " s warm-up (batch: " + reps
                + " calls after 1), after warming the daemon on every operation; ops/s = median, spread = min–max");
        String stateEnv = System.getenv("BENCH_STATE_DIR");
        Path state = stateEnv == null || stateEnv.isBlank() ? out.resolve("state") : Path.of(stateEnv);
        header.put("daemon state (token, registry, audit log)", state + " on " + fsType(state));
        Map<String, Object> dev;
        Process daemon = startDaemon(state);
        try {
            dev = Json.parseObject(Files.readString(state.resolve("dev.json")));
            runDaemon(Path.of((String) dev.get("socket")));
        } finally {
            daemon.destroy(); // SIGTERM: drains and exits, releasing the token
            if (!daemon.waitFor(30, TimeUnit.SECONDS)) daemon.destroyForcibly().waitFor();
        }
        runDirectAndProcess(dev);
        header.put("load average at end", loadAvg());
        header.put("finished", Instant.now().toString());
        Report.write(out, rows, header);
        System.out.println(Report.markdown(rows, header));
        System.out.println("wrote " + out.resolve("latest.json") + " and " + out.resolve("latest.md"));
    }

    // ---------------------------------------------------------------- daemon

    private Process startDaemon(Path state) throws Exception {
        Files.createDirectories(state);
        Path stdout = out.resolve("daemon-stdout.log");
        Path stderr = out.resolve("daemon-stderr.log");
        Files.deleteIfExists(stdout);
        ProcessBuilder pb = new ProcessBuilder(repo.resolve("bin/enclave-kmsd").toString(), "--dev", "--state-dir",
                state.toString()).directory(repo.toFile())
                .redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
        pb.environment().remove("ENCLAVE_KMS_SOCKET");
        // e.g. BENCH_DAEMON_ARGS=--audit-durability=none: audit on vs off (docs/performance.md)
        String extra = System.getenv("BENCH_DAEMON_ARGS");
        if (extra != null && !extra.isBlank()) pb.command().addAll(List.of(extra.trim().split("\\s+")));
        long t0 = System.nanoTime();
        Process p = pb.start();
        long deadline = t0 + TimeUnit.SECONDS.toNanos(120);
        while (!(Files.exists(stdout) && Files.readString(stdout).contains("enclave-kms is serving on"))) {
            if (!p.isAlive()) throw new IllegalStateException("daemon exited: " + Files.readString(stderr));
            if (System.nanoTime() > deadline) {
                p.destroyForcibly();
                throw new IllegalStateException("daemon not serving after 120 s: " + Files.readString(stderr));
            }
            p.waitFor(20, TimeUnit.MILLISECONDS);
        }
        System.err.printf("daemon serving after %.0f ms (includes build check and token set-up)%n",
                (System.nanoTime() - t0) / 1e6);
        return p;
    }

    private void runDaemon(Path socket) throws Exception {
        List<Load.Calls> ops = new ArrayList<>();
        Load.Calls batch;
        try (KmsClient kms = KmsClient.connect(socket)) {
            kms.createKey("bench-aes", "ENCRYPT", "AES_256_GCM", "bench", null);
            kms.createKey("bench-p256", "SIGN", "EC_P256_SHA256", "bench", null);
            kms.createKey("bench-ed25519", "SIGN", "ED25519", "bench", null);
            List<Map<String, Object>> decrypts = new ArrayList<>();
            for (int i = 0; i < 64; i++) {
                DataKey k = kms.generateDataKey("bench-aes", CONTEXT);
                decrypts.add(params("ciphertext", b64(k.ciphertext()), "context", CONTEXT));
            }
            List<Map<String, Object>> encrypts = new ArrayList<>();
            List<Map<String, Object>> p256 = new ArrayList<>();
            List<Map<String, Object>> ed = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
                encrypts.add(params("key", "bench-aes", "plaintext", b64(bytes(1024)), "context", CONTEXT));
                p256.add(params("key", "bench-p256", "digest", b64(sha256(bytes(64)))));
                ed.add(params("key", "bench-ed25519", "message", b64(bytes(32))));
            }
            ops.add(Load.Calls.of("status", KMS + "Status", List.of(Map.of())));
            ops.add(Load.Calls.of("unwrap", KMS + "Decrypt", decrypts));
            ops.add(Load.Calls.of("generate_data_key", KMS + "GenerateDataKey",
                    List.of(params("key", "bench-aes", "context", CONTEXT))));
            ops.add(Load.Calls.of("encrypt_1k", KMS + "Encrypt", encrypts));
            ops.add(Load.Calls.of("sign_p256", KMS + "Sign", p256));
            ops.add(Load.Calls.of("sign_ed25519", KMS + "Sign", ed));
            List<String> cts = new ArrayList<>();
            for (DataKey k : kms.generateDataKeys("bench-aes", BATCH, CONTEXT)) cts.add(b64(k.ciphertext()));
            batch = Load.Calls.of("decrypt_batch_10k", KMS + "DecryptBatch",
                    List.of(params("ciphertexts", cts, "context", CONTEXT)));
        }
        // Warm the daemon's JIT on every operation before the first measurement, so the
        // operation measured first (status, the floor) is not measured on a colder daemon.
        List<Load.Conn> warm = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) warm.add(new Load.Conn(socket));
            for (Load.Calls op : ops) {
                Load.run(warm, 2, op, warmS * 3, 0, 1, new Histogram(3_600_000_000_000L, 3));
            }
        } finally {
            for (Load.Conn conn : warm) conn.close();
        }
        for (Load.Calls op : ops) {
            for (Config c : configs) {
                Measure m = new Measure();
                List<Load.Conn> conns = new ArrayList<>();
                try {
                    for (int i = 0; i < c.conns(); i++) conns.add(new Load.Conn(socket));
                    Load.run(conns, c.depth(), op, warmS, 0, 1, new Histogram(3_600_000_000_000L, 3));
                    for (int r = 0; r < reps; r++) {
                        Histogram h = new Histogram(3_600_000_000_000L, 3);
                        m.add(Load.run(conns, c.depth(), op, repS, 0, 1, h), h);
                    }
                } finally {
                    for (Load.Conn conn : conns) conn.close();
                }
                String system = op.name().equals("status") ? "floor" : "daemon";
                add(m.row(op.name(), system, c.conns(), c.depth()));
            }
        }
        Measure m = new Measure();
        try (Load.Conn conn = new Load.Conn(socket)) {
            Load.run(List.of(conn), 1, batch, 600, 1, BATCH, new Histogram(3_600_000_000_000L, 3));
            for (int r = 0; r < reps; r++) {
                Histogram h = new Histogram(3_600_000_000_000L, 3);
                m.add(Load.run(List.of(conn), 1, batch, 600, 1, BATCH, h), h);
            }
        }
        m.note = "ops = data keys; latency per call of " + BATCH;
        add(m.row(batch.name(), "daemon", 1, 1));
        // The same keys, one Decrypt call at a time: what DecryptBatch is meant to beat.
        Row one = Report.find(rows, "unwrap", "daemon", 1, 1);
        if (one != null) {
            System.err.printf("decrypt_batch_10k vs one-at-a-time unwrap: %.1f×%n",
                    rows.getLast().opsPerS() / one.opsPerS());
        }
    }

    // ---------------------------------------------------------------- baselines

    private void runDirectAndProcess(Map<String, Object> dev) throws Exception {
        Path module = Path.of((String) dev.get("pkcs11_module"));
        String label = (String) dev.get("token_label");
        Path pinFile = Path.of((String) dev.get("pin_file"));
        Pkcs11Config cfg = new Pkcs11Config(module, label, null, pinFile, 4);
        ObjectId aes = ObjectId.random();
        ObjectId p256 = ObjectId.random();
        ObjectId ed = ObjectId.random();
        byte[] aad = Json.write(CONTEXT).getBytes(StandardCharsets.UTF_8);
        try (Pkcs11Enclave enclave = Pkcs11Enclave.open(cfg)) {
            try {
                enclave.generate(aes, KeyAlgorithm.AES_256_GCM, "bench-direct-aes");
                enclave.generate(p256, KeyAlgorithm.EC_P256_SHA256, "bench-direct-p256");
                enclave.generate(ed, KeyAlgorithm.ED25519, "bench-direct-ed25519");
                List<Sealed> sealed = new ArrayList<>();
                for (int i = 0; i < BATCH; i++) sealed.add(enclave.encrypt(aes, aad, bytes(32)));
                byte[] plain1k = bytes(1024);
                byte[] digest = sha256(bytes(64));
                byte[] message = bytes(32);
                Map<String, Direct.Op> ops = new LinkedHashMap<>();
                ops.put("unwrap", (t, i) -> {
                    enclave.decrypt(aes, aad, sealed.get((int) (i % 64))).close();
                    return 1;
                });
                ops.put("generate_data_key", (t, i) -> {
                    try (var k = enclave.random(32)) {
                        enclave.encrypt(aes, aad, k.reveal());
                    }
                    return 1;
                });
                ops.put("encrypt_1k", (t, i) -> {
                    enclave.encrypt(aes, aad, plain1k);
                    return 1;
                });
                ops.put("sign_p256", (t, i) -> {
                    enclave.sign(p256, KeyAlgorithm.EC_P256_SHA256, digest);
                    return 1;
                });
                ops.put("sign_ed25519", (t, i) -> {
                    enclave.sign(ed, KeyAlgorithm.ED25519, message);
                    return 1;
                });
                for (var e : ops.entrySet()) {
                    for (int threads : new int[] {1, 2}) {
                        Measure m = new Measure();
                        Direct.run(threads, e.getValue(), warmS, 0, new Histogram(3_600_000_000_000L, 3));
                        for (int r = 0; r < reps; r++) {
                            Histogram h = new Histogram(3_600_000_000_000L, 3);
                            m.add(Direct.run(threads, e.getValue(), repS, 0, h), h);
                        }
                        add(m.row(e.getKey(), "direct", threads, 1));
                    }
                }
                for (int threads : new int[] {1, 2}) {
                    final int n = threads;
                    Direct.Op batch = (t, i) -> {
                        for (int k = t; k < BATCH; k += n) enclave.decrypt(aes, aad, sealed.get(k)).close();
                        return (BATCH - t + n - 1) / n;
                    };
                    Measure m = new Measure();
                    Direct.run(threads, batch, 600, 1, new Histogram(3_600_000_000_000L, 3));
                    for (int r = 0; r < reps; r++) {
                        Histogram h = new Histogram(3_600_000_000_000L, 3);
                        m.add(Direct.run(threads, batch, 600, 1, h), h);
                    }
                    m.note = "ops = data keys; latency = one thread's share of " + BATCH;
                    add(m.row("decrypt_batch_10k", "direct", threads, 1));
                }
                runProcess(dev, module, label, pinFile, p256, digest);
                runP11Kit(cfg, p256, digest);
            } finally {
                for (ObjectId id : List.of(aes, p256, ed)) enclave.destroy(id);
            }
        }
        String why = "Debian's p11-kit remoting does not forward ";
        add(Row.unsupported("unwrap", "p11-kit", why + "AES-GCM"));
        add(Row.unsupported("generate_data_key", "p11-kit", why + "AES-GCM"));
        add(Row.unsupported("encrypt_1k", "p11-kit", why + "AES-GCM"));
        add(Row.unsupported("sign_ed25519", "p11-kit", why + "EdDSA"));
    }

    /**
     * ECDSA through {@code p11-kit server} and {@code p11-kit-client.so}: the same
     * Pkcs11Enclave code, loaded on the client module, against the same token and key.
     * bench/run exports P11_KIT_SERVER_ADDRESS (the client module reads it from the
     * environment, which a JVM cannot set for itself).
     */
    private void runP11Kit(Pkcs11Config cfg, ObjectId key, byte[] digest) throws Exception {
        String address = System.getenv("P11_KIT_SERVER_ADDRESS");
        Path client = Path.of("/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so");
        if (address == null || !address.startsWith("unix:path=") || !Files.exists(client)) {
            add(Row.noNumbers("sign_p256", "p11-kit", "not measured: no P11_KIT_SERVER_ADDRESS or no " + client));
            return;
        }
        Path sock = Path.of(address.substring("unix:path=".length()));
        Files.deleteIfExists(sock);
        Path log = out.resolve("p11-kit-server.log");
        Process server = new ProcessBuilder("p11-kit", "server", "-f", "-n", sock.toString(), "--provider",
                cfg.library().toString(), "pkcs11:token=" + cfg.tokenLabel())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!Files.exists(sock)) {
                if (!server.isAlive() || System.nanoTime() > deadline) {
                    throw new IllegalStateException("p11-kit server did not start: " + Files.readString(log));
                }
                java.util.concurrent.locks.LockSupport.parkNanos(10_000_000L); // poll for the socket
            }
            try (Pkcs11Enclave remote = Pkcs11Enclave.open(cfg.withLibrary(client))) {
                for (int threads : new int[] {1, 2}) {
                    Direct.Op op = (t, i) -> {
                        remote.sign(key, KeyAlgorithm.EC_P256_SHA256, digest);
                        return 1;
                    };
                    Measure m = new Measure();
                    Direct.run(threads, op, warmS, 0, new Histogram(3_600_000_000_000L, 3));
                    for (int r = 0; r < reps; r++) {
                        Histogram h = new Histogram(3_600_000_000_000L, 3);
                        m.add(Direct.run(threads, op, repS, 0, h), h);
                    }
                    m.note = "Pkcs11Enclave on p11-kit-client.so -> p11-kit server -> SoftHSM";
                    add(m.row("sign_p256", "p11-kit", threads, 1));
                }
            }
        } catch (Exception e) {
            add(Row.noNumbers("sign_p256", "p11-kit", "not measured: " + e.getMessage()));
        } finally {
            server.destroy();
            server.waitFor(10, TimeUnit.SECONDS);
            Files.deleteIfExists(sock);
        }
    }

    /** pkcs11-tool --sign, one process per signature: what provisioning scripts do. */
    private void runProcess(Map<String, Object> dev, Path module, String label, Path pinFile, ObjectId key,
                            byte[] digest) throws Exception {
        Path in = Files.createTempFile("bench-digest", ".bin");
        try {
            Files.write(in, digest);
            String pin = new String(Files.readAllBytes(pinFile), StandardCharsets.UTF_8).strip();
            List<String> cmd = List.of("pkcs11-tool", "--module", module.toString(), "--token-label", label,
                    "--login", "--pin", pin, "--sign", "--mechanism", "ECDSA", "--id", key.hex(),
                    "--input-file", in.toString(), "--output-file", "/dev/null");
            Direct.Op op = (t, i) -> {
                ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                        .redirectOutput(ProcessBuilder.Redirect.DISCARD);
                pb.environment().put("SOFTHSM2_CONF", (String) dev.get("softhsm_conf"));
                int rc = pb.start().waitFor();
                if (rc != 0) throw new IllegalStateException("pkcs11-tool --sign exited " + rc);
                return 1;
            };
            int n = quick ? 10 : 50;
            Measure m = new Measure();
            Direct.run(1, op, 600, 1, new Histogram(3_600_000_000_000L, 3));
            for (int r = 0; r < reps; r++) {
                Histogram h = new Histogram(3_600_000_000_000L, 3);
                m.add(Direct.run(1, op, 600, n / reps + 1, h), h);
            }
            m.note = "pkcs11-tool --sign --mechanism ECDSA, one process per signature";
            add(m.row("sign_p256", "process", 1, 1));
        } finally {
            Files.deleteIfExists(in);
        }
    }

    // ---------------------------------------------------------------- helpers

    private void add(Row r) {
        rows.add(r);
        System.err.printf("%-18s %-7s conn=%-3d depth=%-2d %10s ops/s  p50 %8s µs  p99 %8s µs  %s%n", r.operation(),
                r.system(), r.connections(), r.depth(), Report.f(r.opsPerS()), Report.f(r.p50Us()),
                Report.f(r.p99Us()), r.note() == null ? "" : r.note());
    }

    private static Map<String, Object> params(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    private byte[] bytes(int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    private static byte[] sha256(byte[] b) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(b);
    }

    private static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    /** The file system type of the mount holding {@code p} (from /proc/mounts), for the report. */
    private static String fsType(Path p) {
        try {
            Path abs = p.toAbsolutePath().normalize();
            String best = "";
            String type = "?";
            for (String line : Files.readAllLines(Path.of("/proc/mounts"))) {
                String[] f = line.split(" ");
                if (f.length > 2 && abs.startsWith(f[1]) && f[1].length() >= best.length()) {
                    best = f[1];
                    type = f[2] + " (" + f[0] + ")";
                }
            }
            return type;
        } catch (Exception e) {
            return "?";
        }
    }

    private static String loadAvg() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).strip();
        } catch (Exception e) {
            return "?";
        }
    }
}
