package dev.enclavekms.cli;

import picocli.CommandLine;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code --context KEY=VALUE}, repeatable: the encryption context bound to a ciphertext.
 * The key ends at the first {@code =}, so values may contain {@code =} (and may be
 * empty); an empty key or a missing {@code =} is rejected while parsing, a key given
 * twice by {@link #context()}; both are usage errors.
 */
final class ContextOptions {
    /** One {@code KEY=VALUE}. */
    record Entry(String key, String value) { }

    static final class EntryConverter implements ITypeConverter<Entry> {
        @Override
        public Entry convert(String s) {
            int eq = s.indexOf('=');
            if (eq < 0) {
                throw new TypeConversionException("'" + s + "' is not KEY=VALUE");
            }
            if (eq == 0) {
                throw new TypeConversionException("'" + s + "' has an empty key");
            }
            return new Entry(s.substring(0, eq), s.substring(eq + 1));
        }
    }

    @Option(names = "--context", paramLabel = "KEY=VALUE", converter = EntryConverter.class,
            description = "Encryption context entry (repeatable). Decryption must give the same entries. "
                    + "The key ends at the first '='; the value may contain '='.")
    List<Entry> entries = new ArrayList<>();

    @Spec(Spec.Target.MIXEE)
    CommandSpec command;

    /** The context, or null when none was given. */
    Map<String, String> context() {
        return toMap(command.commandLine(), "--context", entries);
    }

    /**
     * Entries of a repeatable {@code KEY=VALUE} option (such as {@code --new-context}) as a
     * map, or null when there are none; a key given twice is a usage error.
     */
    static Map<String, String> toMap(CommandLine cl, String option, List<Entry> entries) {
        if (entries == null || entries.isEmpty()) {
            return null;
        }
        Map<String, String> context = new LinkedHashMap<>();
        for (Entry e : entries) {
            if (context.put(e.key(), e.value()) != null) {
                throw new ParameterException(cl, option + ": key '" + e.key() + "' given twice");
            }
        }
        return context;
    }
}
