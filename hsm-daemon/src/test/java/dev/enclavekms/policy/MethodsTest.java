package dev.enclavekms.policy;

import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The policy knows every method of the shipped IDL, and no other: a new method must be classified here. */
class MethodsTest {
    private static Set<String> idlMethods(String iface, String prefix) throws Exception {
        try (InputStream in = MethodsTest.class.getResourceAsStream("/varlink/dev.enclavekms." + iface + ".varlink")) {
            String idl = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            Set<String> out = new LinkedHashSet<>();
            Matcher m = Pattern.compile("(?m)^method (\\w+)\\(").matcher(idl);
            while (m.find()) out.add(prefix + m.group(1));
            return out;
        }
    }

    @Test
    void methods_areExactlyThoseOfTheIdl() throws Exception {
        Set<String> idl = new LinkedHashSet<>(idlMethods("Kms", "Kms."));
        idl.addAll(idlMethods("Admin", "Admin."));
        assertEquals(new java.util.TreeSet<>(idl), new java.util.TreeSet<>(Methods.all()));
    }
}
