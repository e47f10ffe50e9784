package dev.enclavekms.registry;

import java.util.EnumSet;
import java.util.Set;

/**
 * States of a key version (DESIGN.md). Codes are stored in the registry and never change.
 *
 * <pre>
 * PENDING --promote--> ENABLED <--enable/disable--> DISABLED
 * ENABLED|DISABLED --revoke--> REVOKED
 * any but DESTROYED --schedule--> DESTROY_SCHEDULED --waiting period--> DESTROYED
 * DESTROY_SCHEDULED --cancel--> DISABLED (REVOKED if it was revoked, PENDING if it was pending)
 * </pre>
 */
public enum VersionState {
    PENDING(1),
    ENABLED(2),
    DISABLED(3),
    REVOKED(4),
    DESTROY_SCHEDULED(5),
    DESTROYED(6);

    private final int code;

    VersionState(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** The only place that decides which transitions are legal. */
    public boolean canBecome(VersionState next) {
        Set<VersionState> allowed = switch (this) {
            case PENDING -> EnumSet.of(ENABLED, DESTROY_SCHEDULED);
            case ENABLED -> EnumSet.of(DISABLED, REVOKED, DESTROY_SCHEDULED);
            case DISABLED -> EnumSet.of(ENABLED, REVOKED, DESTROY_SCHEDULED);
            case REVOKED -> EnumSet.of(DESTROY_SCHEDULED);
            // Back to REVOKED or PENDING only when cancelling the destruction of a version that
            // was in that state (the registry checks which): revocation stays irreversible.
            case DESTROY_SCHEDULED -> EnumSet.of(DISABLED, REVOKED, PENDING, DESTROYED);
            case DESTROYED -> EnumSet.noneOf(VersionState.class);
        };
        return allowed.contains(next);
    }

    /**
     * The state a cancelled destruction returns to: a revoked version stays revoked and a
     * pending one pending; anything else becomes DISABLED, never straight ENABLED.
     */
    public static VersionState afterCancelledDestruction(VersionState before) {
        return before == REVOKED || before == PENDING ? before : DISABLED;
    }

    /** Whether the hardware object of a version in this state must still exist. */
    public boolean hasHardwareObject() {
        return this != DESTROYED;
    }

    public static VersionState ofCode(int code) {
        for (VersionState s : values()) {
            if (s.code == code) return s;
        }
        throw new IllegalArgumentException("unknown version state code " + code);
    }
}
