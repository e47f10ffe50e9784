package dev.enclavekms.server.varlink;

/**
 * Who is on the other end of a connection, as the kernel reports it (SO_PEERCRED at
 * connect time). Names as the JDK resolves them; an unknown uid or gid appears as its
 * number.
 *
 * @param connectionId a number unique within this daemon's run, for logs and audit
 */
public record Peer(String user, String group, long connectionId) {
    /** The name of a peer whose credentials could not be read; it is never granted anything. */
    public static final String UNKNOWN = "?";

    @Override
    public String toString() {
        return "uid=" + user + " gid=" + group + " conn=" + connectionId;
    }
}
