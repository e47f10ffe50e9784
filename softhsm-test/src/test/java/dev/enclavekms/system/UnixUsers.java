package dev.enclavekms.system;

import java.util.ArrayList;
import java.util.List;

/**
 * Test accounts made with groupadd/useradd (the system tests run as root) and removed
 * again. Idempotent: what exists already is reused, so a run that died before cleaning up
 * does not break the next one.
 */
final class UnixUsers {
    private final List<String> users = new ArrayList<>();
    private final List<String> groups = new ArrayList<>();

    void group(String name) throws Exception {
        if (Commands.run("getent", "group", name).exit() != 0) {
            Commands.run("groupadd", name).requireSuccess();
        }
        groups.add(name);
    }

    /**
     * A login-less account with {@code primaryGroup} (null: a group of its own name) and
     * the supplementary groups given.
     */
    void user(String name, String primaryGroup, String... supplementary) throws Exception {
        if (Commands.run("id", "-u", name).exit() != 0) {
            List<String> cmd = new ArrayList<>(List.of("useradd", "-M", "-s", "/usr/sbin/nologin"));
            if (primaryGroup == null) {
                cmd.add("-U");
            } else {
                cmd.addAll(List.of("-N", "-g", primaryGroup));
            }
            if (supplementary.length > 0) cmd.addAll(List.of("-G", String.join(",", supplementary)));
            cmd.add(name);
            Commands.run(cmd, java.util.Map.of(), null).requireSuccess();
        }
        users.add(name);
    }

    long uid(String name) throws Exception {
        return Long.parseLong(Commands.run("id", "-u", name).requireSuccess().stdout().trim());
    }

    /** Removes the accounts (and the groups useradd -U made with them), then the groups. */
    void removeAll() throws Exception {
        for (String u : users) {
            Commands.run("userdel", u);
            if (Commands.run("getent", "group", u).exit() == 0) Commands.run("groupdel", u);
        }
        for (String g : groups) Commands.run("groupdel", g);
    }
}
