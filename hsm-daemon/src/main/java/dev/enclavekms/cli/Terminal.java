package dev.enclavekms.cli;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Whether a file descriptor is a terminal: {@code isatty(3)} through the FFM API. The JDK
 * has no portable answer for standard error ({@code Console.isTerminal()} speaks of
 * standard input and output together), and the answer decides whether kmsctl may ask a
 * question or redraw a progress bar. bin/kmsctl enables native access; without it the
 * JDK warns once, and on any failure the answer is "not a terminal", the safe side
 * (no prompt, plain progress lines).
 */
final class Terminal {
    private Terminal() {
    }

    static boolean isTerminal(int fd) {
        try {
            Linker linker = Linker.nativeLinker();
            MethodHandle isatty = linker.downcallHandle(linker.defaultLookup().find("isatty").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            return (int) isatty.invokeExact(fd) == 1;
        } catch (Throwable e) {
            return false;
        }
    }

    /**
     * This process's streams, asked on first use: setting up the native call costs about
     * a tenth of a second, which most kmsctl commands have no reason to pay.
     */
    static final class Process implements Environment.Terminals {
        private Boolean stdin;
        private Boolean stderr;

        @Override
        public synchronized boolean stdin() {
            if (stdin == null) stdin = isTerminal(0);
            return stdin;
        }

        @Override
        public synchronized boolean stderr() {
            if (stderr == null) stderr = isTerminal(2);
            return stderr;
        }
    }
}
