package dev.enclavekms.service;

import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.VersionState;

import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArraySet;
import java.util.function.Consumer;

/**
 * Tells subscribers ({@code Kms.WatchRevocations}) when a key version stops being usable
 * for decryption: it became DISABLED, REVOKED, DESTROY_SCHEDULED or DESTROYED. Events are
 * published after the registry recorded the change, on the thread that made it; a
 * subscriber must only queue them (it must not block or call back into the lifecycle).
 */
public final class RevocationFeed {
    private static final System.Logger LOG = System.getLogger(RevocationFeed.class.getName());
    /** The states in which cached data keys of the version must no longer be used. */
    public static final Set<VersionState> UNUSABLE = EnumSet.of(VersionState.DISABLED, VersionState.REVOKED,
            VersionState.DESTROY_SCHEDULED, VersionState.DESTROYED);

    /** A version of {@code key} (whose tenant decides who hears of it) reached {@code state}. */
    public record Event(KeyRecord key, int version, VersionState state) {
        public Event {
            Objects.requireNonNull(key, "key");
            Objects.requireNonNull(state, "state");
        }
    }

    private final Set<Consumer<Event>> subscribers = new CopyOnWriteArraySet<>();

    /** Adds {@code subscriber} until the returned handle is closed. */
    public Subscription subscribe(Consumer<Event> subscriber) {
        Objects.requireNonNull(subscriber, "subscriber");
        subscribers.add(subscriber);
        return () -> subscribers.remove(subscriber);
    }

    /** Publishes when {@code state} is one of {@link #UNUSABLE}; a failing subscriber does not stop the others. */
    void publish(KeyRecord key, int version, VersionState state) {
        if (!UNUSABLE.contains(state)) return;
        Event e = new Event(key, version, state);
        for (Consumer<Event> s : subscribers) {
            try {
                s.accept(e);
            } catch (RuntimeException ex) {
                LOG.log(System.Logger.Level.ERROR, "a revocation subscriber failed", ex);
            }
        }
    }

    /** How many subscribers are listening (for tests and status). */
    public int subscribers() {
        return subscribers.size();
    }

    /** Ends a subscription; idempotent. */
    @FunctionalInterface
    public interface Subscription extends AutoCloseable {
        @Override
        void close();
    }
}
