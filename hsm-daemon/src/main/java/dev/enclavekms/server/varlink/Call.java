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
    private final FirstReply firstReply;
    private boolean replied;

    /** Runs before the first intermediate reply of a streamed call leaves (the audit hook). */
    @FunctionalInterface
    interface FirstReply {
        void before(Map<String, Object> parameters) throws VarlinkError;
    }

    Call(String interfaceName, String method, Params parameters, boolean more, boolean oneway, Connection connection) {
        this(interfaceName, method, parameters, more, oneway, connection, p -> { });
    }

    Call(String interfaceName, String method, Params parameters, boolean more, boolean oneway, Connection connection,
         FirstReply firstReply) {
        this.interfaceName = interfaceName;
        this.method = method;
        this.parameters = parameters;
        this.more = more;
        this.oneway = oneway;
        this.connection = connection;
        this.firstReply = firstReply;
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

    /**
     * State kept for the life of the connection (e.g. an authenticated token identity). The
     * audit log reads two entries from it, set by the identity layer: {@code audit.token_id}
     * (the id of the token the connection authenticated with — never the token) and
     * {@code audit.tenant} (see {@code dev.enclavekms.audit.CallAuditor}).
     */
    public Map<String, Object> session() {
        return connection.attributes();
    }

    /**
     * True once the connection is closed or asked to close (daemon shutdown): a streaming
     * handler stops and returns its final reply.
     */
    public boolean closing() {
        return connection.closing() || !connection.channel().isOpen();
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
        if (!replied) {
            replied = true;
            firstReply.before(parameters); // e.g. the audit record must be durable before anything leaves
        }
        if (!oneway) {
            connection.sendReply(parameters, true);
        }
    }
}
