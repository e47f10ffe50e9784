package dev.enclavekms.system;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The daemon's token as OpenSC's pkcs11-tool sees it: an independent reader of the
 * hardware, logged in with the daemon's user PIN (passed through the environment, never
 * argv). Usable while the daemon runs and after it was killed.
 */
final class TokenObjects {
    private TokenObjects() {
    }

    static Commands.Result pkcs11Tool(DaemonProcess daemon, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("pkcs11-tool", "--module", daemon.pkcs11Module().toString(),
                "--token-label", daemon.tokenLabel(), "--login", "--pin", "env:EKMS_TEST_PIN"));
        cmd.addAll(List.of(args));
        return Commands.run(cmd, Map.of("SOFTHSM2_CONF", daemon.softhsmConf().toString(),
                "EKMS_TEST_PIN", Files.readString(daemon.pinFile()).trim()), null);
    }

    /** {@code pkcs11-tool --list-objects}: one block per object, with its label and ID lines. */
    static String list(DaemonProcess daemon) throws Exception {
        return pkcs11Tool(daemon, "--list-objects").requireSuccess().stdout();
    }

    /** Whether any object (secret, private or public key) on the token has this CKA_ID (hex). */
    static boolean has(DaemonProcess daemon, String objectIdHex) throws Exception {
        return hasId(list(daemon), objectIdHex);
    }

    static boolean hasId(String listing, String objectIdHex) {
        String wanted = objectIdHex.toLowerCase(java.util.Locale.ROOT);
        return listing.lines().map(String::trim)
                .anyMatch(l -> l.startsWith("ID:") && l.substring(3).trim().toLowerCase(java.util.Locale.ROOT).equals(wanted));
    }

    /** pkcs11-tool -O prints one block per object, starting at an unindented line. */
    static List<String> blocks(String listing) {
        List<String> blocks = new ArrayList<>();
        StringBuilder cur = null;
        for (String line : listing.split("\n")) {
            if (line.isBlank() || line.startsWith("Using slot")) continue;
            if (!line.startsWith(" ")) {
                if (cur != null) blocks.add(cur.toString());
                cur = new StringBuilder(line).append('\n');
            } else if (cur != null) {
                cur.append(line).append('\n');
            }
        }
        if (cur != null) blocks.add(cur.toString());
        return blocks;
    }

    /** The value of the line {@code name} (e.g. "Access:") in one object's block, or "". */
    static String field(String block, String name) {
        return block.lines().map(String::strip).filter(l -> l.startsWith(name)).findFirst()
                .map(l -> l.substring(name.length()).strip()).orElse("");
    }
}
