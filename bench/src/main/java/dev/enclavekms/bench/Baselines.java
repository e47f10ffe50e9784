package dev.enclavekms.bench;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.pkcs11.Pkcs11Binding;
import dev.enclavekms.enclave.pkcs11.Pkcs11Config;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.json.Json;
import org.HdrHistogram.Histogram;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The baselines, on the daemon's token after the daemon has stopped (so the two never
 * compete for it): direct (the project's Pkcs11Enclave in this JVM, 1 and 2 threads, through the
 * IAIK wrapper as the issue defines it; direct-ffm the same through the daemon's FFM binding),
 * process per call (pkcs11-tool --sign) and p11-kit (Pkcs11Enclave on p11-kit-client.so
 * through {@code p11-kit server}). Each uses its own keys of the same algorithms,
 * generated on the token and destroyed afterwards.
 */
final class Baselines {
    private final Bench bench;
    private final Mode mode;
    private final Map<String, Object> dev;
    private final SecureRandom rnd = new SecureRandom();

    Baselines(Bench bench, Mode mode, Map<String, Object> dev) {
        this.bench = bench;
        this.mode = mode;
        this.dev = dev;
    }

    void run() throws Exception {
        Path module = Path.of((String) dev.get("pkcs11_module"));
        String label = (String) dev.get("token_label");
        Path pinFile = Path.of((String) dev.get("pin_file"));
        // direct is defined by the issue as the IAIK wrapper; direct-ffm is the same calls
        // through the daemon's own FFM binding (Pkcs11Binding.FFM, the daemon's default)
        Pkcs11Config cfg = new Pkcs11Config(module, label, null, pinFile, 4).withBinding(Pkcs11Binding.WRAPPER);
        ObjectId aes = ObjectId.random();
        ObjectId p256 = ObjectId.random();
        ObjectId ed = ObjectId.random();
        byte[] aad = Json.write(Workload.CONTEXT).getBytes(StandardCharsets.UTF_8);
        try (Pkcs11Enclave enclave = Pkcs11Enclave.open(cfg)) {
            try {
                enclave.generate(aes, KeyAlgorithm.AES_256_GCM, "bench-direct-aes");
                enclave.generate(p256, KeyAlgorithm.EC_P256_SHA256, "bench-direct-p256");
                enclave.generate(ed, KeyAlgorithm.ED25519, "bench-direct-ed25519");
                List<Sealed> sealed = new ArrayList<>();
                for (int i = 0; i < Workload.BATCH; i++) sealed.add(enclave.encrypt(aes, aad, bytes(32)));
                Keys keys = new Keys(aes, p256, ed, aad, sealed, Workload.sha256(bytes(64)));
                Map<String, Direct.Op> ops = direct(enclave, keys, "direct", "the IAIK wrapper (JNI)");
                directPinned(ops);
                try (Pkcs11Enclave ffm = Pkcs11Enclave.open(cfg.withBinding(Pkcs11Binding.FFM))) {
                    if (ffm.binding() == Pkcs11Binding.FFM) {
                        direct(ffm, keys, "direct-ffm", "the daemon's FFM binding");
                    } else {
                        for (String op : Targets.SINGLE_OPS) {
                            bench.add(Row.noNumbers(op, "direct-ffm", "not measured: the FFM binding fell back to the wrapper"), null);
                        }
                    }
                }
                runProcess(module, label, pinFile, p256, keys.digest);
                runP11Kit(cfg, p256, keys.digest);
            } finally {
                for (ObjectId id : List.of(aes, p256, ed)) enclave.destroy(id);
            }
        }
        String why = "Debian's p11-kit remoting does not forward ";
        for (String op : List.of("unwrap", "generate_data_key", "encrypt_1k", "decrypt_batch_10k", "mix")) {
            bench.add(Row.unsupported(op, "p11-kit", why + "AES-GCM"), null);
        }
        bench.add(Row.unsupported("sign_ed25519", "p11-kit", why + "EdDSA"), null);
    }

    /** The direct baseline's keys and inputs, shared by both bindings. */
    private final class Keys {
        final ObjectId aes;
        final ObjectId p256;
        final ObjectId ed;
        final byte[] aad;
        final List<Sealed> sealed;
        final byte[] plain1k = bytes(1024);
        final byte[] digest;
        final byte[] message = bytes(32);

        Keys(ObjectId aes, ObjectId p256, ObjectId ed, byte[] aad, List<Sealed> sealed, byte[] digest) {
            this.digest = digest;
            this.aes = aes;
            this.p256 = p256;
            this.ed = ed;
            this.aad = aad;
            this.sealed = sealed;
        }
    }

    /**
     * Every operation in-process on 1 and 2 threads, then the batch, as rows of {@code system};
     * returns the single operations (for the pinned run).
     */
    private Map<String, Direct.Op> direct(Pkcs11Enclave enclave, Keys k, String system, String binding)
            throws Exception {
        Map<String, Direct.Op> ops = new LinkedHashMap<>();
        ops.put("unwrap", (t, i) -> {
            enclave.decrypt(k.aes, k.aad, k.sealed.get((int) (i % 64))).close();
            return 1;
        });
        ops.put("generate_data_key", (t, i) -> {
            try (var key = enclave.random(32)) {
                enclave.encrypt(k.aes, k.aad, key.reveal());
            }
            return 1;
        });
        ops.put("encrypt_1k", (t, i) -> {
            enclave.encrypt(k.aes, k.aad, k.plain1k);
            return 1;
        });
        ops.put("sign_p256", (t, i) -> {
            enclave.sign(k.p256, KeyAlgorithm.EC_P256_SHA256, k.digest);
            return 1;
        });
        ops.put("sign_ed25519", (t, i) -> {
            enclave.sign(k.ed, KeyAlgorithm.ED25519, k.message);
            return 1;
        });
        Map<String, Direct.Op> byName = new LinkedHashMap<>(ops);
        ops.put("mix", (t, i) -> byName.get(Workload.MIX.get((int) (i % Workload.MIX.size()))).run(t, i));
        for (var e : ops.entrySet()) {
            for (int threads : new int[] {1, 2}) {
                Measure m = timed(threads, e.getValue());
                m.note = e.getKey().equals("mix") ? "the same 70/15/10/5 mix in-process through " + binding
                        : "in-process through " + binding;
                bench.add(m.row(e.getKey(), system, threads, 1), m.latencyNs);
            }
        }
        for (int threads : new int[] {1, 2}) {
            final int n = threads;
            Direct.Op batch = (t, i) -> {
                for (int j = t; j < Workload.BATCH; j += n) enclave.decrypt(k.aes, k.aad, k.sealed.get(j)).close();
                return (Workload.BATCH - t + n - 1) / n;
            };
            Measure m = new Measure();
            if (!mode.smoke()) Direct.run(threads, batch, 600, 1, new Histogram(3_600_000_000_000L, 3));
            for (int r = 0; r < batchReps(); r++) {
                Histogram h = new Histogram(3_600_000_000_000L, 3);
                ProcCpu.Mark cpu = ProcCpu.mark(0);
                m.add(Direct.run(threads, batch, 600, 1, h), h);
                m.cpu(cpu, Workload.BATCH);
            }
            m.note = "ops = data keys; latency = one thread's share of " + Workload.BATCH + "; through " + binding;
            bench.add(m.row("decrypt_batch_10k", system, threads, 1), m.latencyNs);
        }
        return ops;
    }

    /** One thread on CPU 0 — the core the pinned daemon had — for {@link PinnedCapacity#OPS}. */
    private void directPinned(Map<String, Direct.Op> ops) throws Exception {
        String why = Pinning.unavailable();
        if (why != null) {
            for (String op : PinnedCapacity.OPS) bench.add(Row.noNumbers(op, "direct-pinned", "skipped: " + why), null);
            return;
        }
        String original = Pinning.allowedList(Pinning.SELF);
        try {
            int threads;
            try {
                Pinning.pin(Pinning.SELF, PinnedCapacity.DAEMON_CPU);
                threads = Pinning.verify(Pinning.SELF, PinnedCapacity.DAEMON_CPU);
            } catch (IllegalStateException e) {
                for (String op : PinnedCapacity.OPS) {
                    bench.add(Row.noNumbers(op, "direct-pinned", "skipped: pinning not in effect: " + e.getMessage()), null);
                }
                return;
            }
            for (String op : PinnedCapacity.OPS) {
                Measure m = timed(1, ops.get(op));
                m.note = "one thread; the bench JVM (all " + threads + " threads: JIT and GC too) pinned to CPU "
                        + PinnedCapacity.DAEMON_CPU + " (taskset), as the daemon was for daemon-pinned";
                bench.add(m.row(op, "direct-pinned", 1, 1), m.latencyNs);
            }
        } finally {
            Pinning.pin(Pinning.SELF, original);
        }
    }

    int batchReps() {
        return mode.smoke() ? 1 : mode.reps();
    }

    private Measure timed(int threads, Direct.Op op) throws Exception {
        return timed(threads, op, 0);
    }

    /** Warm-up and repetitions of {@code op}; CPU per op of this JVM and of {@code serverPid} (if > 0). */
    private Measure timed(int threads, Direct.Op op, long serverPid) throws Exception {
        Measure m = new Measure();
        Direct.run(threads, op, mode.warmS(), 0, new Histogram(3_600_000_000_000L, 3));
        for (int r = 0; r < mode.reps(); r++) {
            Histogram h = new Histogram(3_600_000_000_000L, 3);
            ProcCpu.Mark cpu = ProcCpu.mark(serverPid);
            m.add(Direct.run(threads, op, mode.repS(), 0, h), h, cpu, 1);
        }
        return m;
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
            bench.add(Row.noNumbers("sign_p256", "p11-kit", "not measured: no P11_KIT_SERVER_ADDRESS or no " + client),
                    null);
            return;
        }
        Path sock = Path.of(address.substring("unix:path=".length()));
        Files.deleteIfExists(sock);
        Path log = bench.out.resolve("p11-kit-server.log");
        Process server = new ProcessBuilder("p11-kit", "server", "-f", "-n", sock.toString(), "--provider",
                cfg.library().toString(), "pkcs11:token=" + cfg.tokenLabel())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!Files.exists(sock)) {
                if (!server.isAlive() || System.nanoTime() > deadline) {
                    throw new IllegalStateException("p11-kit server did not start: " + Files.readString(log));
                }
                LockSupport.parkNanos(10_000_000L); // poll for the socket
            }
            try (Pkcs11Enclave remote = Pkcs11Enclave.open(cfg.withLibrary(client))) {
                for (int threads : new int[] {1, 2}) {
                    Measure m = timed(threads, (t, i) -> {
                        remote.sign(key, KeyAlgorithm.EC_P256_SHA256, digest);
                        return 1;
                    }, server.pid());
                    m.note = "Pkcs11Enclave on p11-kit-client.so -> p11-kit server -> SoftHSM";
                    bench.add(m.row("sign_p256", "p11-kit", threads, 1), m.latencyNs);
                }
            }
        } catch (Exception e) {
            bench.add(Row.noNumbers("sign_p256", "p11-kit", "not measured: " + e.getMessage()), null);
        } finally {
            server.destroy();
            server.waitFor(10, TimeUnit.SECONDS);
            Files.deleteIfExists(sock);
        }
    }

    /** pkcs11-tool --sign, one process per signature: what provisioning scripts do. */
    private void runProcess(Path module, String label, Path pinFile, ObjectId key, byte[] digest) throws Exception {
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
            int reps = Math.min(mode.reps(), mode.processCalls());
            Measure m = new Measure();
            Direct.run(1, op, 600, 1, new Histogram(3_600_000_000_000L, 3));
            for (int r = 0; r < reps; r++) {
                Histogram h = new Histogram(3_600_000_000_000L, 3);
                m.add(Direct.run(1, op, 600, Math.max(1, mode.processCalls() / reps), h), h);
            }
            m.note = "pkcs11-tool --sign --mechanism ECDSA, one process per signature";
            bench.add(m.row("sign_p256", "process", 1, 1), m.latencyNs);
        } finally {
            Files.deleteIfExists(in);
        }
    }

    private byte[] bytes(int n) {
        return Workload.bytes(rnd, n);
    }
}
