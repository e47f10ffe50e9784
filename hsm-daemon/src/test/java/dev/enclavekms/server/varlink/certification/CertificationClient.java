package dev.enclavekms.server.varlink.certification;

import dev.enclavekms.varlink.VarlinkClient;
import dev.enclavekms.varlink.VarlinkError;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The client half of the varlink certification, on our {@link VarlinkClient}: Start,
 * Test01 … Test11, End, each call built from the previous reply, Test10 with
 * {@code more}, Test11 {@code oneway}.
 *
 * <p>Each reply is checked for the varlink type the IDL declares before it is passed
 * on, so a decoding mistake of our client shows here with the method's name, even
 * against a server that would not notice it.
 */
final class CertificationClient {
    private static final String I = CertificationService.INTERFACE + ".";

    /** What the run saw: the id, the streamed replies of Test10 and End's reply. */
    record Result(String clientId, List<String> moreReplies, Map<String, Object> end) { }

    private final VarlinkClient client;

    CertificationClient(VarlinkClient client) {
        this.client = client;
    }

    Result run() throws IOException, VarlinkError {
        String id = string(call("Start", Map.of()), "Start", "client_id");

        boolean b = bool(call("Test01", params(id)), "Test01", "bool");

        long i = integer(call("Test02", params(id, "bool", b)), "Test02", "int");

        double f = number(call("Test03", params(id, "int", i)), "Test03", "float");

        String s = string(call("Test04", params(id, "float", f)), "Test04", "string");

        Map<String, Object> t5 = call("Test05", params(id, "string", s));
        Map<String, Object> p6 = params(id, "bool", bool(t5, "Test05", "bool"), "int", integer(t5, "Test05", "int"),
                "float", number(t5, "Test05", "float"), "string", string(t5, "Test05", "string"));

        Map<String, Object> struct = object(call("Test06", p6), "Test06", "struct");
        bool(struct, "Test06 struct", "bool");
        integer(struct, "Test06 struct", "int");
        number(struct, "Test06 struct", "float");
        string(struct, "Test06 struct", "string");

        Map<String, Object> map = object(call("Test07", params(id, "struct", struct)), "Test07", "map");
        for (String k : map.keySet()) string(map, "Test07 map", k);

        Map<String, Object> set = object(call("Test08", params(id, "map", map)), "Test08", "set");
        for (String k : set.keySet()) {
            if (!object(set, "Test08 set", k).isEmpty()) {
                throw new AssertionError("Test08: set member " + k + " is not {}");
            }
        }

        Map<String, Object> mytype = object(call("Test09", params(id, "set", set)), "Test09", "mytype");
        object(mytype, "Test09 mytype", "object");
        string(mytype, "Test09 mytype", "enum");
        object(mytype, "Test09 mytype", "struct");
        list(mytype, "Test09 mytype", "array");
        object(mytype, "Test09 mytype", "dictionary");
        object(mytype, "Test09 mytype", "stringset");
        object(mytype, "Test09 mytype", "interface");

        List<String> replies = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        client.callMore(I + "Test10", params(id, "mytype", mytype), reply -> {
            if (reply.get("string") instanceof String r) {
                replies.add(r);
            } else {
                problems.add("Test10: a reply without a string: " + reply);
            }
        });
        if (!problems.isEmpty()) {
            throw new AssertionError(String.join("; ", problems));
        }

        client.oneway(I + "Test11", params(id, "last_more_replies", replies));

        Map<String, Object> end = call("End", params(id));
        bool(end, "End", "all_ok");
        return new Result(id, List.copyOf(replies), end);
    }

    private Map<String, Object> call(String method, Map<String, Object> parameters) throws IOException, VarlinkError {
        return client.call(I + method, parameters);
    }

    private static Map<String, Object> params(String clientId, Object... more) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("client_id", clientId);
        for (int k = 0; k < more.length; k += 2) {
            p.put((String) more[k], more[k + 1]);
        }
        return p;
    }

    private static <T> T typed(Map<String, Object> reply, String where, String name, Class<T> type, String varlinkType) {
        Object v = reply.get(name);
        if (!type.isInstance(v)) {
            throw new AssertionError(where + ": \"" + name + "\" should be " + varlinkType + " but is "
                    + (v == null ? "missing or null" : v.getClass().getSimpleName() + " " + v));
        }
        return type.cast(v);
    }

    private static String string(Map<String, Object> r, String where, String name) {
        return typed(r, where, name, String.class, "a string");
    }

    private static boolean bool(Map<String, Object> r, String where, String name) {
        return typed(r, where, name, Boolean.class, "a bool");
    }

    /** A varlink int must arrive as a JSON integer (Long), never as 1.0. */
    private static long integer(Map<String, Object> r, String where, String name) {
        return typed(r, where, name, Long.class, "an int");
    }

    /** A varlink float may arrive as 1 (Go writes whole floats so) or 1.0. */
    private static double number(Map<String, Object> r, String where, String name) {
        return typed(r, where, name, Number.class, "a float").doubleValue();
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Map<String, Object> r, String where, String name) {
        return typed(r, where, name, Map.class, "an object");
    }

    private static List<?> list(Map<String, Object> r, String where, String name) {
        return typed(r, where, name, List.class, "an array");
    }
}
