package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The result of comparing the registry with the hardware at start: versions whose
 * object is missing, versions whose object is weaker than the daemon's template
 * (refused, never served), and objects on the device that no version references
 * (orphans, e.g. left by a crash between the hardware write and the registry commit).
 * Objects created later by this daemon are added as they are made.
 */
public final class KeyHealth {
    private static final System.Logger LOG = System.getLogger(KeyHealth.class.getName());

    private final Map<ObjectId, String> refused = new ConcurrentHashMap<>();
    private final List<String> missing = new ArrayList<>();
    private final List<String> orphans = new ArrayList<>();

    private KeyHealth() {
    }

    public static KeyHealth reconcile(Enclave enclave, List<KeyRecord> keys) throws EnclaveException {
        KeyHealth h = new KeyHealth();
        Map<ObjectId, EnclaveObject> objects = new HashMap<>();
        for (EnclaveObject o : enclave.list()) {
            objects.put(o.id(), o);
        }
        for (KeyRecord k : keys) {
            for (KeyVersion v : k.versions()) {
                if (!v.state().hasHardwareObject()) {
                    // A destroyed version's object still on the device is a leftover of an
                    // interrupted destruction, not an orphan: the lifecycle sweep removes it.
                    objects.remove(v.objectId());
                    continue;
                }
                String what = k.name() + " v" + v.version();
                EnclaveObject o = objects.remove(v.objectId());
                if (o == null) {
                    h.missing.add(what + " (object " + v.objectId().hex() + ")");
                    h.refused.put(v.objectId(), "its hardware object is missing from the enclave");
                    LOG.log(System.Logger.Level.ERROR, "key " + what + ": hardware object " + v.objectId().hex()
                            + " is missing; this version cannot be used");
                    continue;
                }
                if (o.algorithm() != k.algorithm()) {
                    h.refused.put(v.objectId(), "its hardware object has algorithm " + o.algorithm()
                            + " but the registry says " + k.algorithm());
                    LOG.log(System.Logger.Level.ERROR, "key " + what + ": hardware object algorithm mismatch; refused");
                    continue;
                }
                List<String> weak = o.protection().weaknesses(k.algorithm());
                if (!weak.isEmpty()) {
                    h.refused.put(v.objectId(), "its hardware object is weaker than required: " + String.join("; ", weak));
                    LOG.log(System.Logger.Level.ERROR, "key " + what + " refused, its hardware object is weaker than"
                            + " required: " + String.join("; ", weak));
                }
            }
        }
        for (EnclaveObject o : objects.values()) {
            h.orphans.add(o.id().hex() + (o.label() == null ? "" : " (" + o.label() + ")"));
            LOG.log(System.Logger.Level.WARNING, "orphan object on the enclave, in no key version: " + o.id().hex()
                    + (o.label() == null ? "" : " label " + o.label()));
        }
        return h;
    }

    /** Why this version's object must not be used, if it must not. */
    public Optional<String> refusal(ObjectId id) {
        return Optional.ofNullable(refused.get(id));
    }

    public synchronized List<String> missing() {
        return List.copyOf(missing);
    }

    public synchronized List<String> orphans() {
        return List.copyOf(orphans);
    }
}
