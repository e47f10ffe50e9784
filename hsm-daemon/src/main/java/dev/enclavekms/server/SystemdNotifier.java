package dev.enclavekms.server;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * Tells the service manager about the daemon's state (systemd's {@code sd_notify}
 * protocol): one datagram per message, {@code KEY=value} lines, sent to the
 * {@code AF_UNIX} datagram socket named by {@code $NOTIFY_SOCKET} — a path, or an
 * abstract name when it starts with {@code @}. With {@code Type=notify} systemd starts
 * dependants only after {@code READY=1}.
 *
 * <p>JDK 25 has no {@code AF_UNIX} datagram channel ({@code DatagramChannel.open(UNIX)}
 * throws UnsupportedOperationException), so the datagram goes through the Foreign
 * Function API: {@code socket}, {@code sendto}, {@code close} from libc. A failed
 * notification is logged and otherwise ignored, as {@code sd_notify} callers do: the
 * daemon serves regardless, and systemd's start timeout reports a daemon that never
 * said it was ready.
 */
public final class SystemdNotifier {
    private static final System.Logger LOG = System.getLogger(SystemdNotifier.class.getName());

    /** Does nothing: no service manager is listening. */
    public static final SystemdNotifier NONE = new SystemdNotifier(null);

    private static final int AF_UNIX = 1;
    private static final int SOCK_DGRAM = 2;
    private static final int SOCK_CLOEXEC = 0x80000;
    /** sizeof(struct sockaddr_un): sa_family_t (2 bytes) and sun_path[108]. */
    private static final int SOCKADDR_UN_SIZE = 110;
    private static final int SUN_PATH_OFFSET = 2;
    private static final int SUN_PATH_SIZE = 108;

    private final String address;

    private SystemdNotifier(String address) {
        this.address = address;
    }

    /** The notifier for {@code $NOTIFY_SOCKET}, or {@link #NONE} when it is not set. */
    public static SystemdNotifier fromEnvironment() {
        return forSocket(System.getenv("NOTIFY_SOCKET"));
    }

    /** The notifier for this socket address ({@code /path} or {@code @abstract}); null or blank is NONE. */
    public static SystemdNotifier forSocket(String address) {
        return address == null || address.isBlank() ? NONE : new SystemdNotifier(address);
    }

    public boolean enabled() {
        return address != null;
    }

    /** The daemon serves: dependants may start. */
    public void ready(String status) {
        send("READY=1\nSTATUS=" + oneLine(status) + "\nMAINPID=" + ProcessHandle.current().pid());
    }

    /** The daemon is reloading its configuration; {@link #ready} follows. */
    public void reloading(String status) {
        send("RELOADING=1\nSTATUS=" + oneLine(status));
    }

    /** The daemon is stopping (draining calls in flight). */
    public void stopping(String status) {
        send("STOPPING=1\nSTATUS=" + oneLine(status));
    }

    /** A free-text status line for {@code systemctl status}. */
    public void status(String status) {
        send("STATUS=" + oneLine(status));
    }

    /** A newline would start another KEY=value assignment: status text stays on one line. */
    private static String oneLine(String s) {
        return s.replace('\n', ' ').replace('\r', ' ');
    }

    /** Sends one datagram; returns whether it was sent. */
    public boolean send(String message) {
        if (address == null) {
            return false;
        }
        try {
            Native.send(address, message.getBytes(StandardCharsets.UTF_8));
            return true;
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot notify the service manager at " + address + ": "
                    + e.getMessage());
            return false;
        }
    }

    /** libc through the Foreign Function API; loaded on the first notification only. */
    private static final class Native {
        private static final Linker LINKER = Linker.nativeLinker();
        private static final SymbolLookup LIBC = LINKER.defaultLookup();
        private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
        private static final VarHandle ERRNO_VALUE = Linker.Option.captureStateLayout()
                .varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));
        private static final MethodHandle SOCKET = LINKER.downcallHandle(LIBC.find("socket").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT), ERRNO);
        private static final MethodHandle SENDTO = LINKER.downcallHandle(LIBC.find("sendto").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT), ERRNO);
        private static final MethodHandle CLOSE = LINKER.downcallHandle(LIBC.find("close").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

        static void send(String address, byte[] message) throws IOException {
            byte[] path = address.getBytes(StandardCharsets.UTF_8);
            boolean abstractName = path.length > 0 && path[0] == '@';
            if (!abstractName && path.length > 0 && path[0] != '/') {
                throw new IOException("NOTIFY_SOCKET must be an absolute path or start with @");
            }
            // A path needs its terminating NUL; an abstract name is exactly its bytes after a NUL.
            if (path.length + (abstractName ? 0 : 1) > SUN_PATH_SIZE) {
                throw new IOException("NOTIFY_SOCKET is longer than a Unix socket address can be");
            }
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment errno = arena.allocate(Linker.Option.captureStateLayout());
                MemorySegment addr = arena.allocate(SOCKADDR_UN_SIZE);
                addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
                MemorySegment.copy(path, 0, addr, ValueLayout.JAVA_BYTE, SUN_PATH_OFFSET, path.length);
                if (abstractName) {
                    addr.set(ValueLayout.JAVA_BYTE, SUN_PATH_OFFSET, (byte) 0);
                }
                int addrLen = SUN_PATH_OFFSET + path.length + (abstractName ? 0 : 1);
                MemorySegment buf = arena.allocate(Math.max(1, message.length));
                MemorySegment.copy(message, 0, buf, ValueLayout.JAVA_BYTE, 0, message.length);

                int fd = (int) SOCKET.invokeExact(errno, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                    throw new IOException("socket(AF_UNIX, SOCK_DGRAM) failed: errno " + errno(errno));
                }
                try {
                    long sent = (long) SENDTO.invokeExact(errno, fd, buf, (long) message.length, 0, addr, addrLen);
                    if (sent < 0) {
                        throw new IOException("sendto failed: errno " + errno(errno));
                    }
                } finally {
                    int ignored = (int) CLOSE.invokeExact(fd);
                }
            } catch (IOException | RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IOException("native call failed: " + t, t);
            }
        }

        private static int errno(MemorySegment state) {
            return (int) ERRNO_VALUE.get(state, 0L);
        }
    }
}
