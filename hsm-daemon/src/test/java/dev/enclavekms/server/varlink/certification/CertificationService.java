package dev.enclavekms.server.varlink.certification;

import dev.enclavekms.server.varlink.Call;
import dev.enclavekms.server.varlink.VarlinkInterface;
import dev.enclavekms.varlink.VarlinkError;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * {@code org.varlink.certification} on our server library: the server half of the
 * varlink certification. It checks what the reference server (varlink-go's
 * {@code varlink-go-certification}) checks — every parameter value of every call —
 * and, like the Python reference, also the order of the calls and the whole message:
 * no parameter too many, {@code more} on Test10 only, {@code oneway} on Test11 only.
 *
 * <p>Each client (one {@code Start}) has its own state: the method it must call next
 * and its first failure. A failure is answered with {@code CertificationError(wants,
 * got)}, both the relevant part of the message as JSON objects, and sticks: every
 * later call of that client gets the same error, so a failure of the oneway Test11,
 * which cannot be answered, is reported by {@code End}.
 *
 * <p>Numbers compare by type: an {@code int} must be a JSON integer; a {@code float}
 * may be written either way ({@code 1} or {@code 1.0}), as Go writes whole floats
 * without a fraction. A nullable field may be null or absent.
 */
final class CertificationService {
    static final String INTERFACE = "org.varlink.certification";
    static final String CLIENT_ID_ERROR = INTERFACE + ".ClientIdError";
    static final String CERTIFICATION_ERROR = INTERFACE + ".CertificationError";

    static final List<String> SEQUENCE = List.of("Start", "Test01", "Test02", "Test03", "Test04", "Test05",
            "Test06", "Test07", "Test08", "Test09", "Test10", "Test11", "End");

    /** Bounds the state a misbehaving client can make us keep. */
    private static final int MAX_CLIENTS = 100;
    private static final Duration CLIENT_LIFETIME = Duration.ofMinutes(10);

    private static final String A_LOT = "a lot of string";

    private final Map<String, ClientState> clients = new ConcurrentHashMap<>();
    private final List<String> completed = new CopyOnWriteArrayList<>();
    private final List<Map<String, Object>> failures = new CopyOnWriteArrayList<>();

    private static final class ClientState {
        final String id;
        final long startedNanos = System.nanoTime();
        String next = "Test01";
        Map<String, Object> failure; // {wants, got} of the first failed check

        ClientState(String id) {
            this.id = id;
        }
    }

    /** The IDL, as GetInterfaceDescription returns it. */
    static String idl() {
        try (InputStream in = CertificationService.class.getResourceAsStream("/varlink/" + INTERFACE + ".varlink")) {
            return new String(Objects.requireNonNull(in, "IDL resource").readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    VarlinkInterface varlinkInterface() {
        VarlinkInterface.Builder b = VarlinkInterface.builder(INTERFACE, idl()).method("Start", this::start);
        for (String m : SEQUENCE.subList(1, SEQUENCE.size())) {
            b.method(m, call -> step(call));
        }
        return b.build();
    }

    /** Client ids whose End succeeded. */
    List<String> completed() {
        return Collections.unmodifiableList(completed);
    }

    /** Every failure answered so far, as {@code {wants, got}}, for test diagnostics. */
    List<Map<String, Object>> failures() {
        return Collections.unmodifiableList(failures);
    }

    // ---------------------------------------------------------------- the calls

    private Map<String, Object> start(Call call) throws VarlinkError {
        Map<String, Object> wants = message("Start", false, false, Map.of());
        Map<String, Object> got = received(call);
        if (!JsonMatch.matches(wants, got)) {
            throw fail(null, wants, got);
        }
        ClientState c = newClient();
        return Map.of("client_id", c.id);
    }

    private Map<String, Object> step(Call call) throws VarlinkError, IOException {
        String method = call.method();
        String id = call.parameters().string("client_id", 64);
        ClientState c = clients.get(id);
        if (c == null) {
            throw new VarlinkError(CLIENT_ID_ERROR, Map.of());
        }
        synchronized (c) {
            if (c.failure != null) {
                throw new VarlinkError(CERTIFICATION_ERROR, c.failure);
            }
            Map<String, Object> got = received(call);
            if (!method.equals(c.next)) {
                throw fail(c, Map.of("method", qualified(c.next)), Map.of("method", qualified(method)));
            }
            Map<String, Object> wants = wants(method, id);
            if (!JsonMatch.matches(wants, got)) {
                throw fail(c, wants, got);
            }
            if (!method.equals("End")) {
                c.next = SEQUENCE.get(SEQUENCE.indexOf(method) + 1);
            }
            return switch (method) {
                case "Test01" -> Map.of("bool", true);
                case "Test02" -> Map.of("int", 1L);
                case "Test03" -> Map.of("float", 1.0);
                case "Test04" -> Map.of("string", "ping");
                case "Test05" -> fourTypes();
                case "Test06" -> Map.of("struct", fourTypes());
                case "Test07" -> Map.of("map", dictionary());
                case "Test08" -> Map.of("set", stringSet());
                case "Test09" -> Map.of("mytype", myType());
                case "Test10" -> {
                    for (int i = 1; i < 10; i++) {
                        call.replyMore(Map.of("string", "Reply number " + i));
                    }
                    yield Map.of("string", "Reply number 10");
                }
                case "Test11" -> Map.of();
                case "End" -> {
                    clients.remove(id);
                    completed.add(id);
                    yield Map.of("all_ok", true);
                }
                default -> throw new IllegalStateException("no step " + method);
            };
        }
    }

    /** The message that must have been sent for {@code method}, parameters included. */
    private static Map<String, Object> wants(String method, String id) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("client_id", id);
        switch (method) {
            case "Test01", "End" -> { }
            case "Test02" -> p.put("bool", true);
            case "Test03" -> p.put("int", 1L);
            case "Test04" -> p.put("float", 1.0);
            case "Test05" -> p.put("string", "ping");
            case "Test06" -> p.putAll(fourTypes());
            case "Test07" -> p.put("struct", fourTypes());
            case "Test08" -> p.put("map", dictionary());
            case "Test09" -> p.put("set", stringSet());
            case "Test10" -> p.put("mytype", myType());
            case "Test11" -> {
                List<String> replies = new ArrayList<>();
                for (int i = 1; i <= 10; i++) replies.add("Reply number " + i);
                p.put("last_more_replies", replies);
            }
            default -> throw new IllegalStateException("no step " + method);
        }
        return message(method, method.equals("Test10"), method.equals("Test11"), p);
    }

    // ---------------------------------------------------------------- values

    private static Map<String, Object> fourTypes() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("bool", false);
        m.put("int", 2L);
        m.put("float", Math.PI);
        m.put("string", A_LOT);
        return m;
    }

    private static Map<String, Object> dictionary() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("foo", "Foo");
        m.put("bar", "Bar");
        return m;
    }

    /** A varlink set, {@code [string]()}: an object whose values are empty objects. */
    private static Map<String, Object> stringSet() {
        Map<String, Object> m = new LinkedHashMap<>();
        for (String s : List.of("one", "two", "three")) m.put(s, Map.of());
        return m;
    }

    /**
     * The MyType value of Test09's reply and Test10's call. The reply spells out the nulls
     * of the nullable fields; a client may send them back as null or leave them out.
     */
    private static Map<String, Object> myType() {
        Map<String, Object> object = new LinkedHashMap<>();
        object.put("method", INTERFACE + ".Test09");
        object.put("parameters", Map.of("map", dictionary()));

        Map<String, Object> first = new LinkedHashMap<>();
        first.put("Foo", "foo");
        first.put("Bar", "bar");
        Map<String, Object> second = new LinkedHashMap<>();
        second.put("one", "foo");
        second.put("two", "bar");
        Map<String, Object> anon = new LinkedHashMap<>();
        anon.put("foo", true);
        anon.put("bar", false);
        Map<String, Object> iface = new LinkedHashMap<>();
        iface.put("foo", Arrays.asList(null, first, null, second));
        iface.put("anon", anon);

        Map<String, Object> m = new LinkedHashMap<>();
        m.put("object", object);
        m.put("enum", "two");
        m.put("struct", Map.of("first", 1L, "second", "2"));
        m.put("array", List.of("one", "two", "three"));
        m.put("dictionary", dictionary());
        m.put("stringset", stringSet());
        m.put("nullable", null); // JsonMatch: a null wanted means null or absent
        m.put("nullable_array_struct", null);
        m.put("interface", iface);
        return m;
    }

    // ---------------------------------------------------------------- bookkeeping

    private static String qualified(String method) {
        return INTERFACE + "." + method;
    }

    private static Map<String, Object> message(String method, boolean more, boolean oneway, Map<String, Object> params) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("method", qualified(method));
        if (!params.isEmpty()) m.put("parameters", params);
        if (more) m.put("more", true);
        if (oneway) m.put("oneway", true);
        return m;
    }

    /** The call as the client sent it (absent, null and empty parameters are one thing). */
    private static Map<String, Object> received(Call call) {
        return message(call.method(), call.more(), call.oneway(), call.parameters().asMap());
    }

    private VarlinkError fail(ClientState c, Map<String, Object> wants, Map<String, Object> got) {
        Map<String, Object> failure = new LinkedHashMap<>();
        failure.put("wants", wants);
        failure.put("got", got);
        if (c != null) {
            c.failure = failure;
        }
        failures.add(failure);
        return new VarlinkError(CERTIFICATION_ERROR, failure);
    }

    private ClientState newClient() {
        long now = System.nanoTime();
        clients.values().removeIf(c -> now - c.startedNanos > CLIENT_LIFETIME.toNanos());
        while (clients.size() >= MAX_CLIENTS) {
            clients.values().stream().min(Comparator.comparingLong(c -> c.startedNanos))
                    .ifPresent(oldest -> clients.remove(oldest.id));
        }
        ClientState c = new ClientState(UUID.randomUUID().toString());
        clients.put(c.id, c);
        return c;
    }
}
