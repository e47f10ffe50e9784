package dev.enclavekms.registry;

/** A registry command was refused (its precondition failed) or the store failed. */
public class RegistryException extends Exception {
    public RegistryException(String message) {
        super(message);
    }

    public RegistryException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The command conflicts with the registry's state (e.g. the key exists already). */
    public static sealed class Conflict extends RegistryException {
        public Conflict(String message) {
            super(message);
        }
    }

    /** A version state change the state machine does not allow from the current state. */
    public static final class IllegalTransition extends Conflict {
        private final VersionState current;

        public IllegalTransition(String message, VersionState current) {
            super(message);
            this.current = current;
        }

        public VersionState current() {
            return current;
        }
    }
}
