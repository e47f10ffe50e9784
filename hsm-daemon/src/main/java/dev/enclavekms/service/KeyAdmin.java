package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.RegistryException;
import dev.enclavekms.registry.RegistryStore;

import java.time.Clock;
import java.util.List;

/** Key administration: create, list, describe. */
public final class KeyAdmin {
    private static final System.Logger LOG = System.getLogger(KeyAdmin.class.getName());
    public static final int MAX_REQUIRED_CONTEXT = 16;

    private final Enclave enclave;
    private final RegistryStore registry;
    private final Clock clock;
    private final Caller caller;

    /** The service as the daemon itself uses it: every key, new keys in the default tenant (see {@link #as}). */
    public KeyAdmin(Enclave enclave, RegistryStore registry, Clock clock) {
        this(enclave, registry, clock, Caller.system());
    }

    private KeyAdmin(Enclave enclave, RegistryStore registry, Clock clock, Caller caller) {
        this.enclave = enclave;
        this.registry = registry;
        this.clock = clock;
        this.caller = caller;
    }

    /** The same service acting for one call's caller: its tenant's keys only, under its grants. */
    public KeyAdmin as(Caller caller) {
        return new KeyAdmin(enclave, registry, clock, caller);
    }

    /**
     * Creates a key and its first version. The hardware object is made first and the
     * registry committed second: a crash in between leaves an orphan object that the
     * next start reports, never a registry entry without key material.
     */
    public KeyRecord createKey(String name, Purpose purpose, KeyAlgorithm algorithm, String description,
                               List<String> requiredContext) throws KmsError {
        return createKey(name, purpose, algorithm, description, requiredContext, null, null);
    }

    /**
     * @param rotationPeriod  automatic rotation period (at least an hour), or null for none
     * @param destroyWaitDays destruction waiting period (7 to 3650 days), or null for 30
     */
    public KeyRecord createKey(String name, Purpose purpose, KeyAlgorithm algorithm, String description,
                               List<String> requiredContext, java.time.Duration rotationPeriod,
                               Integer destroyWaitDays) throws KmsError {
        KeyNames.check("name", name);
        KeyAlgorithm alg = algorithm == null ? purpose.defaultAlgorithm() : algorithm;
        if (purpose == Purpose.AUDIT) {
            throw new KmsError.InvalidParameter("purpose", "purpose: AUDIT keys are the daemon's own; it creates them");
        }
        if (!purpose.allows(alg)) {
            throw new KmsError.InvalidParameter("algorithm", "algorithm: " + alg + " cannot be used for purpose "
                    + purpose + " (allowed: " + purpose.allowedAlgorithms() + ")");
        }
        requireSupported(alg);
        List<String> required = requiredContext == null ? List.of() : List.copyOf(requiredContext);
        if (required.size() > MAX_REQUIRED_CONTEXT || required.stream().anyMatch(s -> s.isEmpty() || s.length() > 128)
                || required.stream().distinct().count() != required.size()) {
            throw new KmsError.InvalidParameter("required_context", "required_context: at most "
                    + MAX_REQUIRED_CONTEXT + " distinct, non-empty names of at most 128 characters");
        }
        if (rotationPeriod != null && rotationPeriod.compareTo(KeyRecord.MIN_ROTATION_PERIOD) < 0) {
            throw new KmsError.InvalidParameter("rotation_period_seconds", "rotation_period_seconds: at least "
                    + KeyRecord.MIN_ROTATION_PERIOD.toSeconds());
        }
        int waitDays = destroyWaitDays == null ? KeyRecord.DEFAULT_DESTROY_WAIT_DAYS : destroyWaitDays;
        if (waitDays < KeyRecord.MIN_DESTROY_WAIT_DAYS || waitDays > KeyRecord.MAX_DESTROY_WAIT_DAYS) {
            throw new KmsError.InvalidParameter("destroy_wait_days", "destroy_wait_days: "
                    + KeyRecord.MIN_DESTROY_WAIT_DAYS + " to " + KeyRecord.MAX_DESTROY_WAIT_DAYS + " days");
        }
        // The tenant first: a name outside the caller's tenant's names is refused by policy
        // alone, so no caller learns whether another tenant holds it.
        String tenant = caller.tenantForNewKey(name, purpose);
        if (registry.find(name).isPresent()) {
            throw new KmsError.KeyAlreadyExists(name);
        }
        ObjectId id = ObjectId.random();
        try {
            enclave.generate(id, alg, KeyLifecycle.label(name, 1, id));
        } catch (EnclaveException.Unsupported e) {
            throw new KmsError.InvalidParameter("algorithm", "algorithm: the enclave cannot generate " + alg
                    + " keys: " + e.getMessage());
        } catch (EnclaveException e) {
            throw Failures.of(e, name);
        }
        try {
            registry.apply(new RegistryCommand.CreateKey(name, purpose, alg, description == null ? "" : description,
                    required, rotationPeriod, waitDays, id, clock.instant(), tenant));
        } catch (RegistryException e) {
            discard(id);
            if (e instanceof RegistryException.Conflict) {
                throw new KmsError.KeyAlreadyExists(name);
            }
            throw new KmsError.Internal("registry write failed", e);
        }
        LOG.log(System.Logger.Level.INFO, "created key " + name + " (" + purpose + ", " + alg + ") of tenant " + tenant
                + ", version 1 object " + id.hex());
        return registry.find(name).orElseThrow(() -> new KmsError.KeyNotFound(name));
    }

    /**
     * The daemon's own key named {@code name} (reserved: see {@link KeyNames}), created with
     * its first version when the registry has none — hardware object first, registry second,
     * as for every key. Idempotent; called at every start. Never reachable by callers:
     * {@link #createKey} refuses reserved names, and the services refuse to use them.
     *
     * @throws KmsError.Internal when a key of that name exists with another purpose or
     *                           algorithm (the registry was changed behind the daemon's back)
     */
    public KeyRecord ensureInternalKey(String name, Purpose purpose, KeyAlgorithm algorithm, String description)
            throws KmsError {
        if (!KeyNames.isInternal(name)) {
            throw new IllegalArgumentException("not an internal key name: " + name);
        }
        java.util.Optional<KeyRecord> existing = registry.find(name);
        if (existing.isPresent()) {
            KeyRecord k = existing.get();
            if (k.purpose() != purpose || k.algorithm() != algorithm) {
                throw new KmsError.Internal("internal key " + name + " is " + k.purpose() + "/" + k.algorithm()
                        + " in the registry, not " + purpose + "/" + algorithm, null);
            }
            return k;
        }
        ObjectId id = ObjectId.random();
        try {
            enclave.generate(id, algorithm, KeyLifecycle.label(name, 1, id));
        } catch (EnclaveException e) {
            throw Failures.of(e, name);
        }
        try {
            registry.apply(new RegistryCommand.CreateKey(name, purpose, algorithm, description, List.of(), null,
                    KeyRecord.MAX_DESTROY_WAIT_DAYS, id, clock.instant()));
        } catch (RegistryException e) {
            discard(id);
            throw new KmsError.Internal("registry write failed for internal key " + name, e);
        }
        LOG.log(System.Logger.Level.INFO, "created internal key " + name + " (" + purpose + ", " + algorithm
                + "), object " + id.hex());
        return describe(name);
    }

    /**
     * Refuses an algorithm the enclave cannot hold (e.g. Ed25519 on the Java Card backend)
     * before anything is created, naming the algorithm, the backend and what it offers.
     */
    private void requireSupported(KeyAlgorithm alg) throws KmsError {
        java.util.Set<KeyAlgorithm> supported = enclave.supportedAlgorithms();
        if (supported.contains(alg)) {
            return;
        }
        String backend;
        try {
            backend = enclave.info().kind();
        } catch (EnclaveException e) {
            backend = "this daemon's";
        }
        throw new KmsError.InvalidParameter("algorithm", "algorithm: " + alg + " keys cannot be held by the " + backend
                + " backend (it supports " + new java.util.TreeSet<>(supported) + ")");
    }

    /** Best effort: a failed registry commit should not leave an orphan behind. */
    private void discard(ObjectId id) {
        try {
            enclave.destroy(id);
        } catch (EnclaveException e) {
            LOG.log(System.Logger.Level.WARNING, "could not destroy object " + id.hex()
                    + " after a failed registry write; it will be reported as an orphan");
        }
    }

    /** The keys the caller may see, by name. */
    public List<KeyRecord> list() {
        return registry.list().stream().filter(caller::sees).toList();
    }

    /** A key the caller may use for its method (the Admin methods on one key all come here first). */
    public KeyRecord describe(String name) throws KmsError {
        return caller.resolve(registry, name, null);
    }
}
