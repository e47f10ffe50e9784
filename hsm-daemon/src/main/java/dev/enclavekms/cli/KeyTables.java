package dev.enclavekms.cli;

import dev.enclavekms.client.KeyDescription;
import dev.enclavekms.client.KeyVersionInfo;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;

/**
 * How kmsctl shows a key: a {@code key: value} block and the versions table, the same
 * table after every lifecycle command so that an operator always sees the state the
 * command left behind. Times are UTC to the second; {@code --json} has them exact.
 */
final class KeyTables {
    static final List<String> VERSION_COLUMNS =
            List.of("VERSION", "STATE", "PRIMARY", "CREATED", "CHANGED", "DESTROY AT", "ENCRYPTIONS");

    private KeyTables() {
    }

    /** {@code key describe}: every field, then the versions table with the hardware object ids. */
    static void describe(Output out, KeyDescription k) {
        if (out.json()) {
            out.json(ReplyJson.map("key", ReplyJson.key(k)));
            return;
        }
        out.fields(new Output.Fields()
                .add("name", k.name())
                .add("purpose", k.purpose())
                .add("algorithm", k.algorithm())
                .add("description", k.description().isEmpty() ? "-" : k.description())
                .add("created", time(k.created()))
                .add("primary version", k.primaryVersion())
                .add("required context", Output.list(k.requiredContext()))
                .add("rotation period", rotationPeriod(k))
                .add("next rotation", k.nextRotation() == null ? "-" : time(k.nextRotation()))
                .add("destroy wait", days(k.destroyWaitDays())));
        out.line("");
        table(out, k, true);
        // TLS keys: where a TLS server finds each version's private key on the token (docs/tls.md).
        for (KeyVersionInfo v : k.versions()) {
            if (v.pkcs11Uri() != null) out.line("v" + v.version() + " " + v.pkcs11Uri());
        }
    }

    /** The lifecycle commands and {@code key versions}: the versions table alone. */
    static void versions(Output out, KeyDescription k) {
        if (out.json()) {
            out.json(ReplyJson.map("key", ReplyJson.key(k)));
            return;
        }
        table(out, k, false);
    }

    /** {@code key update}: the policy it changed, then the versions table. */
    static void policy(Output out, KeyDescription k) {
        if (out.json()) {
            out.json(ReplyJson.map("key", ReplyJson.key(k)));
            return;
        }
        out.fields(new Output.Fields()
                .add("name", k.name())
                .add("rotation period", rotationPeriod(k))
                .add("next rotation", k.nextRotation() == null ? "-" : time(k.nextRotation()))
                .add("destroy wait", days(k.destroyWaitDays())));
        out.line("");
        table(out, k, false);
    }

    private static void table(Output out, KeyDescription k, boolean objectIds) {
        List<String> headers = new ArrayList<>(VERSION_COLUMNS);
        if (objectIds) headers.add("OBJECT ID");
        List<List<String>> rows = new ArrayList<>();
        for (KeyVersionInfo v : k.versions()) {
            List<String> row = new ArrayList<>(List.of(String.valueOf(v.version()), v.state(),
                    v.version() == k.primaryVersion() ? "*" : "", time(v.created()), time(v.stateChanged()),
                    v.destroyAt() == null ? "-" : time(v.destroyAt()), String.valueOf(v.encryptions())));
            if (objectIds) row.add(v.objectId());
            rows.add(row);
        }
        out.table(headers, rows);
    }

    static String time(Instant t) {
        return t.truncatedTo(ChronoUnit.SECONDS).toString();
    }

    private static String rotationPeriod(KeyDescription k) {
        return k.rotationPeriod() == null || k.rotationPeriod().isZero()
                ? "off (on demand and at the usage limit only)" : Durations.format(k.rotationPeriod());
    }

    private static String days(int n) {
        return n + (n == 1 ? " day" : " days");
    }
}
