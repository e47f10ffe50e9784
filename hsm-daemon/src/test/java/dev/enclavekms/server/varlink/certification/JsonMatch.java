package dev.enclavekms.server.varlink.certification;

import java.util.List;
import java.util.Map;

/**
 * Compares a received JSON value with the wanted one by varlink's types rather than by
 * spelling: object member order does not matter; a wanted {@code Long} (varlink
 * {@code int}) needs a JSON integer; a wanted {@code Double} (varlink {@code float})
 * takes any number of that value; a wanted null (a nullable field) takes null or an
 * absent member. Nothing unwanted may be present.
 */
final class JsonMatch {
    private JsonMatch() {
    }

    static boolean matches(Object want, Object got) {
        return switch (want) {
            case null -> got == null;
            case Double d -> got instanceof Long || got instanceof Double
                    ? ((Number) got).doubleValue() == d : false;
            case Long l -> l.equals(got);
            case Map<?, ?> wm -> got instanceof Map<?, ?> gm && membersMatch(wm, gm);
            case List<?> wl -> got instanceof List<?> gl && elementsMatch(wl, gl);
            default -> want.equals(got);
        };
    }

    private static boolean membersMatch(Map<?, ?> want, Map<?, ?> got) {
        for (Object k : got.keySet()) {
            if (!want.containsKey(k)) {
                return false;
            }
        }
        for (Map.Entry<?, ?> e : want.entrySet()) {
            if (!matches(e.getValue(), got.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }

    private static boolean elementsMatch(List<?> want, List<?> got) {
        if (want.size() != got.size()) {
            return false;
        }
        for (int i = 0; i < want.size(); i++) {
            if (!matches(want.get(i), got.get(i))) {
                return false;
            }
        }
        return true;
    }
}
