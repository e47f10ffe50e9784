package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkError;

import java.io.IOException;
import java.util.Map;

/**
 * One method call as a handler sees it. A handler returns the (last) reply's
 * parameters; a handler of a {@code more} call may first send any number of
 * intermediate replies with {@link #replyMore}.
 */
public final class Call {
    private final String interfaceName;
    private final String method;
    private final Params parameters;
    private final boolean more;
    private final boolean oneway;
    private final Connection connection;

    Call(String interfaceName, String method, Params parameters, boolean more, boolean oneway, Connection connection) {
        this.interfaceName = interfaceName;
        this.method = method;
        this.parameters = parameters;
        this.more = more;
        this.oneway = oneway;
        this.connection = connection;
    }

    public String interfaceName() {
        return interfaceName;
    }

    /** The method name without its interface, e.g. {@code Decrypt}. */
    public String method() {
        return method;
    }

    public String qualifiedMethod() {
        return interfaceName + "." + method;
    }

    public Params parameters() {
        return parameters;
    }

    /** The caller asked for a stream of replies. */
    public boolean more() {
        return more;
    }

    public boolean oneway() {
        return oneway;
    }

    public Peer peer() {
        return connection.peer();
    }

    /** State kept for the life of the connection (e.g. an authenticated token identity). */
    public Map<String, Object> session() {
        return connection.attributes();
    }

    /**
     * Sends an intermediate reply ({@code continues: true}); only valid when {@link #more()}.
     * Nothing is sent for a {@code oneway} call.
     *
     * @throws VarlinkError {@code org.varlink.service.ExpectedMore} when the caller did not
     *                      ask for more than one reply
     */
    public void replyMore(Map<String, Object> parameters) throws IOException, VarlinkError {
        if (!more) {
            throw new VarlinkError("org.varlink.service.ExpectedMore", Map.of(
                    "message", qualifiedMethod() + " sends several replies: call it with \"more\": true"));
        }
        if (!oneway) {
            connection.sendReply(parameters, true);
        }
    }
}
