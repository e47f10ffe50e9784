package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.RegistryException;
import dev.enclavekms.registry.RegistryStore;
import dev.enclavekms.registry.VersionState;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Rotation, state changes and scheduled destruction of key versions, and the periodic
 * {@link #sweep} that rotates keys when due, destroys versions whose waiting period has
 * passed, and removes orphan objects after a grace period.
 *
 * <p>Ordering (docs/lifecycle.md): a new version's hardware object is made before the
 * registry names it, and the registry adds it and moves the primary in one transaction;
 * a destruction is committed to the registry (DESTROYED) before the hardware object is
 * destroyed. A crash between the two steps therefore leaves, respectively, an
 * unreferenced object (an orphan, removed after the grace period) or an object of a
 * DESTROYED version (removed at the next sweep) — never a registry entry without key
 * material, two primaries, or a reused version number.
 */
public final class KeyLifecycle {
    private static final System.Logger LOG = System.getLogger(KeyLifecycle.class.getName());
    /** Only objects with this label prefix are ours to remove as orphans. */
    public static final String LABEL_PREFIX = "enclave-kms:";
    public static final Duration DEFAULT_ORPHAN_GRACE = Duration.ofHours(24);

    private final Enclave enclave;
    private final RegistryStore registry;
    private final Clock clock;
    private final UsageMeter usage;
    private final Duration orphanGrace;
    private final PausePoints pause;
    private final RevocationFeed revocations = new RevocationFeed();
    private volatile LifecycleEvents events = LifecycleEvents.NONE;

    public KeyLifecycle(Enclave enclave, RegistryStore registry, Clock clock, UsageMeter usage, Duration orphanGrace,
                        PausePoints pause) {
        this.enclave = enclave;
        this.registry = registry;
        this.clock = clock;
        this.usage = usage;
        this.orphanGrace = orphanGrace;
        this.pause = pause;
    }

    /**
     * Who is told of what the sweep does by itself (the audit log). Set once the audit log
     * is open; the sweep at start runs after that.
     */
    public void onEvents(LifecycleEvents events) {
        this.events = events == null ? LifecycleEvents.NONE : events;
    }

    /** Where versions that stop being usable are announced (Kms.WatchRevocations). */
    public RevocationFeed revocations() {
        return revocations;
    }

    /** The label of a version's hardware object: unique, since it carries the object id. */
    public static String label(String key, int version, ObjectId id) {
        return LABEL_PREFIX + key + ":v" + version + ":" + id.hex().substring(0, 8);
    }

    private KeyRecord find(String name) throws KmsError {
        if (KeyNames.reserved(name)) {
            // The daemon's own keys have no lifecycle an operator drives: the audit log's
            // verifiers know one signing key, and a destroyed HMAC key would make the log unsearchable.
            throw new KmsError.InvalidParameter("name", "name: '" + name + "' is one of the daemon's own keys;"
                    + " it cannot be rotated, changed, disabled, revoked or destroyed");
        }
        return registry.find(name).orElseThrow(() -> new KmsError.KeyNotFound(name));
    }

    /**
     * Makes a new version inside the enclave and (unless {@code pending}) primary.
     * Serialised: two rotations of one key must not race for the same version number.
     */
    public synchronized KeyRecord rotate(String name, boolean pending) throws KmsError {
        KeyRecord key = find(name);
        if (pending && key.purpose() != Purpose.SIGN && key.purpose() != Purpose.CERT_AUTHORITY) {
            throw new KmsError.InvalidParameter("pending", "pending: only SIGN and CERT_AUTHORITY keys have PENDING"
                    + " versions (their public key or CA certificate is published before first use); '" + name
                    + "' is " + key.purpose());
        }
        int next = key.latestVersion() + 1;
        ObjectId id = ObjectId.random();
        try {
            enclave.generate(id, key.algorithm(), label(name, next, id));
        } catch (EnclaveException e) {
            throw Failures.of(e, name);
        }
        pause.reach("rotate.after-hardware");
        try {
            registry.apply(new RegistryCommand.AddVersion(name, next, id,
                    pending ? VersionState.PENDING : VersionState.ENABLED, !pending, clock.instant()));
        } catch (RegistryException e) {
            discard(id);
            throw new KmsError.Internal("registry write failed while rotating " + name, e);
        }
        pause.reach("rotate.after-registry");
        LOG.log(System.Logger.Level.INFO, "rotated key " + name + ": version " + next
                + (pending ? " is PENDING" : " is primary") + " (object " + id.hex() + ")");
        return find(name);
    }

    private void discard(ObjectId id) {
        try {
            enclave.destroy(id);
        } catch (EnclaveException e) {
            LOG.log(System.Logger.Level.WARNING, "could not destroy object " + id.hex()
                    + " after a failed registry write; it will be removed as an orphan");
        }
    }

    public KeyRecord promote(String name, int version) throws KmsError {
        apply(name, version, new RegistryCommand.PromoteVersion(name, version, clock.instant()));
        LOG.log(System.Logger.Level.INFO, "promoted key " + name + " version " + version + " to primary");
        return find(name);
    }

    /**
     * DISABLED → ENABLED only. The state graph also has PENDING → ENABLED and
     * DESTROY_SCHEDULED → DISABLED, but those edges belong to promotion (which makes the
     * version primary) and to cancellation (which an operator asks for by name), so the
     * generic enable/disable must not take them.
     */
    public synchronized KeyRecord enable(String name, int version) throws KmsError {
        requireState(name, version, VersionState.DISABLED, "enable", VersionState.PENDING,
                "a PENDING version becomes ENABLED only by PromoteKeyVersion, which also makes it primary");
        return setState(name, version, VersionState.ENABLED, null);
    }

    /**
     * ENABLED → DISABLED only: a "disable" of a DESTROY_SCHEDULED version must not cancel
     * its destruction as a side effect and keep key material the operator meant to destroy.
     */
    public synchronized KeyRecord disable(String name, int version) throws KmsError {
        requireState(name, version, VersionState.ENABLED, "disable", VersionState.DESTROY_SCHEDULED,
                "disabling does not cancel a scheduled destruction; use CancelKeyVersionDestruction");
        return setState(name, version, VersionState.DISABLED, null);
    }

    /**
     * Refuses unless the version is in state {@code required}. Callers are synchronized, as is
     * {@link #scheduleDestruction}, so a schedule cannot slip in between check and change.
     */
    private void requireState(String name, int version, VersionState required, String operation,
                              VersionState hintFor, String hint) throws KmsError {
        KeyVersion v = find(name).version(version).orElseThrow(() -> new KmsError.KeyVersionNotFound(name, version));
        if (v.state() != required) {
            throw new KmsError.InvalidStateTransition(name, version, v.state().name(), "version " + version + " of '"
                    + name + "' is " + v.state() + "; only a " + required + " version can be " + operation + "d"
                    + (v.state() == hintFor ? " (" + hint + ")" : ""));
        }
    }

    public KeyRecord revoke(String name, int version) throws KmsError {
        return setState(name, version, VersionState.REVOKED, null);
    }

    /**
     * Schedules destruction after the key's waiting period, or {@code waitDays} if given (not
     * below the minimum). Synchronized with {@link #disable}, whose check of ENABLED must not
     * be overtaken by a schedule: DESTROY_SCHEDULED → DISABLED would cancel the destruction.
     */
    public synchronized KeyRecord scheduleDestruction(String name, int version, Integer waitDays) throws KmsError {
        KeyRecord key = find(name);
        int days = waitDays == null ? key.destroyWaitDays() : waitDays;
        if (days < KeyRecord.MIN_DESTROY_WAIT_DAYS || days > KeyRecord.MAX_DESTROY_WAIT_DAYS) {
            throw new KmsError.InvalidParameter("wait_days", "wait_days: the waiting period is "
                    + KeyRecord.MIN_DESTROY_WAIT_DAYS + " to " + KeyRecord.MAX_DESTROY_WAIT_DAYS + " days");
        }
        return setState(name, version, VersionState.DESTROY_SCHEDULED, clock.instant().plus(Duration.ofDays(days)));
    }

    /**
     * Back to DISABLED, never straight to ENABLED: the operator re-enables deliberately. A
     * version scheduled from REVOKED returns to REVOKED (revocation is irreversible), one
     * scheduled from PENDING to PENDING.
     */
    public KeyRecord cancelDestruction(String name, int version) throws KmsError {
        KeyVersion v = find(name).version(version).orElseThrow(() -> new KmsError.KeyVersionNotFound(name, version));
        if (v.state() != VersionState.DESTROY_SCHEDULED) {
            throw new KmsError.InvalidStateTransition(name, version, v.state().name(), "version " + version + " of '"
                    + name + "' is " + v.state() + ", not DESTROY_SCHEDULED; there is nothing to cancel");
        }
        return setState(name, version, VersionState.afterCancelledDestruction(v.stateBeforeDestruction()), null);
    }

    public KeyRecord updatePolicy(String name, Duration rotationPeriod, Integer destroyWaitDays) throws KmsError {
        KeyRecord key = find(name);
        int days = destroyWaitDays == null ? key.destroyWaitDays() : destroyWaitDays;
        if (rotationPeriod != null && rotationPeriod.compareTo(KeyRecord.MIN_ROTATION_PERIOD) < 0) {
            throw new KmsError.InvalidParameter("rotation_period_seconds", "rotation_period_seconds: at least "
                    + KeyRecord.MIN_ROTATION_PERIOD.toSeconds() + ", or 0 to turn automatic rotation off");
        }
        if (days < KeyRecord.MIN_DESTROY_WAIT_DAYS || days > KeyRecord.MAX_DESTROY_WAIT_DAYS) {
            throw new KmsError.InvalidParameter("destroy_wait_days", "destroy_wait_days: "
                    + KeyRecord.MIN_DESTROY_WAIT_DAYS + " to " + KeyRecord.MAX_DESTROY_WAIT_DAYS + " days");
        }
        try {
            registry.apply(new RegistryCommand.UpdateKeyPolicy(name, rotationPeriod, days, clock.instant()));
        } catch (RegistryException e) {
            throw new KmsError.Internal("registry write failed", e);
        }
        return find(name);
    }

    private KeyRecord setState(String name, int version, VersionState state, Instant destroyAt) throws KmsError {
        apply(name, version, new RegistryCommand.SetVersionState(name, version, state, destroyAt, clock.instant()));
        LOG.log(System.Logger.Level.INFO, "key " + name + " version " + version + " is now " + state
                + (destroyAt == null ? "" : " (destruction at " + destroyAt + ")"));
        KeyRecord k = find(name);
        revocations.publish(k, version, state);
        return k;
    }

    private void apply(String name, int version, RegistryCommand command) throws KmsError {
        KeyRecord key = find(name);
        KeyVersion v = key.version(version).orElseThrow(() -> new KmsError.KeyVersionNotFound(name, version));
        try {
            registry.apply(command);
        } catch (RegistryException.IllegalTransition e) {
            throw new KmsError.InvalidStateTransition(name, version, e.current().name(), e.getMessage());
        } catch (RegistryException e) {
            throw new KmsError.Internal("registry write failed for " + name + " version " + v.version(), e);
        }
    }

    // ------------------------------------------------------------------ the sweep

    /**
     * One pass of the background work, in an order that is safe to interrupt anywhere:
     * rotations that are due (period or usage limit), destructions whose waiting period
     * has passed, leftover objects of destroyed versions, and old orphans.
     */
    public synchronized void sweep() {
        Instant now = clock.instant();
        for (KeyRecord key : registry.list()) {
            try {
                KeyVersion primary = key.primary();
                String why = null;
                String cause = null;
                if (key.nextRotation() != null && !now.isBefore(key.nextRotation())) {
                    why = "its rotation period has passed";
                    cause = "period";
                } else if (key.purpose() == Purpose.ENCRYPT && usage.exhausted(primary)) {
                    why = "version " + primary.version() + " reached " + usage.rotationLimit() + " encryptions";
                    cause = "usage_limit";
                }
                if (why != null) {
                    LOG.log(System.Logger.Level.INFO, "rotating key " + key.name() + ": " + why);
                    KeyRecord rotated = rotate(key.name(), false);
                    events.happened("rotated", key.name(), rotated.primary().version(), cause);
                }
            } catch (KmsError e) {
                LOG.log(System.Logger.Level.ERROR, "automatic rotation of " + key.name() + " failed: " + e.getMessage());
            }
            for (KeyVersion v : key.versions()) {
                if (v.state() == VersionState.DESTROY_SCHEDULED && !now.isBefore(v.destroyAt())) {
                    destroy(key, v, now);
                }
            }
        }
        removeLeftovers(now);
    }

    /** Registry first (DESTROYED tombstone), hardware second: see the class comment. */
    private void destroy(KeyRecord key, KeyVersion v, Instant now) {
        try {
            registry.apply(new RegistryCommand.SetVersionState(key.name(), v.version(), VersionState.DESTROYED, now, now));
        } catch (RegistryException e) {
            LOG.log(System.Logger.Level.ERROR, "could not record destruction of " + key.name() + " v" + v.version()
                    + ": " + e.getMessage());
            return;
        }
        revocations.publish(key, v.version(), VersionState.DESTROYED);
        pause.reach("destroy.after-registry");
        try {
            enclave.destroy(v.objectId());
            LOG.log(System.Logger.Level.INFO, "destroyed key " + key.name() + " version " + v.version()
                    + " (object " + v.objectId().hex() + ")");
            events.happened("destroyed", key.name(), v.version(), v.objectId().hex());
        } catch (EnclaveException e) {
            LOG.log(System.Logger.Level.WARNING, "destroying the object of " + key.name() + " v" + v.version()
                    + " failed (" + e.getMessage() + "); retried at the next sweep");
        }
    }

    /**
     * Objects of DESTROYED versions are removed at once (their destruction was already
     * decided); objects no version references are removed once they have been orphans
     * for the grace period, and only if their label says they are ours.
     */
    private void removeLeftovers(Instant now) {
        Map<ObjectId, String> tombstones = new HashMap<>();
        Set<ObjectId> referenced = new HashSet<>();
        for (KeyRecord k : registry.list()) {
            for (KeyVersion v : k.versions()) {
                if (v.state() == VersionState.DESTROYED) {
                    tombstones.put(v.objectId(), k.name() + " v" + v.version());
                } else {
                    referenced.add(v.objectId());
                }
            }
        }
        List<EnclaveObject> objects;
        try {
            objects = enclave.list();
        } catch (EnclaveException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot list the enclave's objects: " + e.getMessage());
            return;
        }
        Map<ObjectId, EnclaveObject> orphans = new HashMap<>();
        for (EnclaveObject o : objects) {
            if (tombstones.containsKey(o.id())) {
                destroyQuietly(o.id(), "leftover object of destroyed " + tombstones.get(o.id()));
            } else if (!referenced.contains(o.id()) && o.label() != null && o.label().startsWith(LABEL_PREFIX)) {
                orphans.put(o.id(), o);
            }
        }
        try {
            Map<ObjectId, Instant> firstSeen = registry.trackOrphans(orphans.keySet(), now);
            for (Map.Entry<ObjectId, Instant> e : firstSeen.entrySet()) {
                if (!now.isBefore(e.getValue().plus(orphanGrace))) {
                    if (destroyQuietly(e.getKey(), "orphan " + orphans.get(e.getKey()).label() + ", first seen " + e.getValue())) {
                        events.happened("orphan_removed", null, 0, e.getKey().hex());
                    }
                }
            }
        } catch (RegistryException e) {
            LOG.log(System.Logger.Level.WARNING, "orphan bookkeeping failed: " + e.getMessage());
        }
    }

    /** @return whether the object is gone */
    private boolean destroyQuietly(ObjectId id, String what) {
        try {
            enclave.destroy(id);
            LOG.log(System.Logger.Level.INFO, "removed " + what + " (object " + id.hex() + ")");
            return true;
        } catch (EnclaveException e) {
            LOG.log(System.Logger.Level.WARNING, "could not remove " + what + ": " + e.getMessage());
            return false;
        }
    }
}
