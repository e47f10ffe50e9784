package dev.enclavekms.client;

import dev.enclavekms.server.varlink.ServerLimits;
import dev.enclavekms.server.varlink.VarlinkInterface;
import dev.enclavekms.server.varlink.VarlinkServer;
import dev.enclavekms.varlink.VarlinkError;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A real {@link VarlinkServer} on a real Unix socket serving {@code dev.enclavekms.Kms}
 * and {@code dev.enclavekms.Admin} with test-supplied replies, where the shipped IDL
 * files are the judge: every call's parameters are checked against the method's input
 * (names, types, nothing extra), and every reply and error a test supplies is checked
 * against the method's output or the error's declaration. A mismatch is recorded as a
 * violation (see {@link #assertNoViolations()}) and answered with a
 * {@code test.ContractViolation} error, so the call under test fails too.
 *
 * <p>This tests the wire contract of clients (KmsClient, kmsctl); the real daemon is
 * tested end to end elsewhere.
 */
public final class ContractServer implements AutoCloseable {
    public static final String KMS = "dev.enclavekms.Kms";
    public static final String ADMIN = "dev.enclavekms.Admin";

    /**
     * Answers one call: returns the reply's parameters or throws a varlink error; throwing
     * {@link #hangUp()} closes the connection without an answer instead (a daemon that died
     * or lost the connection mid-call).
     */
    @FunctionalInterface
    public interface Responder {
        Map<String, Object> respond(Map<String, Object> parameters) throws VarlinkError, IOException;
    }

    /** For a {@link Responder} to throw: the server closes the connection without answering. */
    public static IOException hangUp() {
        return new IOException("test: the server hangs up");
    }

    /** One call as the server received it. */
    public record Received(String method, Map<String, Object> parameters) { }

    private final Map<String, VarlinkIdl> idls = new LinkedHashMap<>();
    private final Map<String, Responder> responders = new ConcurrentHashMap<>();
    private final Map<String, Boolean> unchecked = new ConcurrentHashMap<>();
    private final List<Received> received = new CopyOnWriteArrayList<>();
    private final List<String> violations = new CopyOnWriteArrayList<>();
    private final VarlinkServer server;
    private final Path socket;

    private ContractServer(Path socket, ServerLimits limits) throws IOException {
        this.socket = socket;
        List<VarlinkInterface> served = new ArrayList<>();
        for (String name : List.of(KMS, ADMIN)) {
            String text = VarlinkIdl.resourceText(name);
            VarlinkIdl idl = VarlinkIdl.parse(text);
            idls.put(name, idl);
            VarlinkInterface.Builder b = VarlinkInterface.builder(name, text)
                    .errors(name + ".InvalidParameter", name + ".InternalError");
            idl.methods().forEach((method, signature) -> b.method(method, call -> handle(idl, method, signature,
                    call.parameters().asMap())));
            served.add(b.build());
        }
        server = new VarlinkServer(new VarlinkServer.ServiceInfo("enclave-kms test", "contract server", "0.0.0-test",
                "https://example.invalid/enclave-kms"), served, limits, KMS, null);
        server.bind(socket);
    }

    /** Binds a server at {@code socket} with the default limits. */
    public static ContractServer start(Path socket) throws IOException {
        return new ContractServer(socket, ServerLimits.DEFAULT);
    }

    public static ContractServer start(Path socket, ServerLimits limits) throws IOException {
        return new ContractServer(socket, limits);
    }

    public Path socket() {
        return socket;
    }

    public VarlinkIdl idl(String interfaceName) {
        return idls.get(interfaceName);
    }

    /** Answers {@code method} (fully qualified, e.g. {@code dev.enclavekms.Kms.Encrypt}) with {@code r}. */
    public ContractServer on(String method, Responder r) {
        responders.put(method, r);
        unchecked.remove(method);
        return this;
    }

    /** Answers {@code method} with a fixed reply. */
    public ContractServer reply(String method, Map<String, Object> reply) {
        return on(method, p -> reply);
    }

    /** Answers {@code method} with {@code r} without checking its replies (tests of malformed replies). */
    public ContractServer onUnchecked(String method, Responder r) {
        responders.put(method, r);
        unchecked.put(method, true);
        return this;
    }

    public List<Received> received() {
        return List.copyOf(received);
    }

    /** The parameters of the last call of {@code method}; fails the test when there was none. */
    public Map<String, Object> lastParameters(String method) {
        for (int i = received.size() - 1; i >= 0; i--) {
            if (received.get(i).method().equals(method)) return received.get(i).parameters();
        }
        return fail("no call of " + method + " received; got " + received);
    }

    public List<String> violations() {
        return List.copyOf(violations);
    }

    public void assertNoViolations() {
        assertEquals(List.of(), violations(), "wire-contract violations");
    }

    /** A varlink error with alternating name/value parameters. */
    public static VarlinkError error(String qualifiedName, Object... keyValues) {
        Map<String, Object> p = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) p.put((String) keyValues[i], keyValues[i + 1]);
        return new VarlinkError(qualifiedName, p);
    }

    private Map<String, Object> handle(VarlinkIdl idl, String method, VarlinkIdl.Method signature,
                                       Map<String, Object> params) throws VarlinkError, IOException {
        String qualified = idl.name() + "." + method;
        received.add(new Received(qualified, params));
        violate(qualified + " call", idl.check(signature.in(), params));
        Responder r = responders.get(qualified);
        if (r == null) {
            throw error("test.NoResponder", "message", "the test set no reply for " + qualified);
        }
        Map<String, Object> reply;
        try {
            reply = r.respond(params);
        } catch (VarlinkError e) {
            String prefix = idl.name() + ".";
            if (e.error().startsWith(prefix)) {
                VarlinkIdl.Struct declared = idl.errors().get(e.error().substring(prefix.length()));
                if (declared == null) {
                    violate(qualified + " error", List.of(e.error() + ": not declared in the IDL"));
                } else {
                    violate(qualified + " error " + e.error(), idl.check(declared, e.parameters()));
                }
            }
            throw e;
        }
        if (!unchecked.containsKey(qualified)) {
            violate(qualified + " reply", idl.check(signature.out(), reply));
        }
        return reply;
    }

    private void violate(String where, List<String> found) throws VarlinkError {
        if (found.isEmpty()) return;
        for (String f : found) violations.add(where + ": " + f);
        throw error("test.ContractViolation", "message", where + ": " + found);
    }

    @Override
    public void close() {
        server.shutdown(Duration.ofSeconds(2));
    }
}
