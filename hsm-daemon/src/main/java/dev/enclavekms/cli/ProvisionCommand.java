package dev.enclavekms.cli;

import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.EnclaveInfo;
import dev.enclavekms.enclave.pkcs11.Pkcs11Config;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.enclave.pkcs11.Pkcs11Provisioner;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code kmsctl provision}: prepares the hardware for the daemon, talking to the PKCS#11
 * module directly (not to the daemon). Idempotent: a token that is already set up is
 * checked (the user PIN must log in) and left alone.
 *
 * <p>A SoftHSM token is initialised when it does not exist yet. A vendor HSM's token is
 * only checked unless {@code --init} is given, because initialising a vendor token is an
 * operator's decision with consequences (it may erase it) that a script should not take
 * implicitly.
 */
@Command(name = "provision", description = {
        "Set up the token the daemon will use, talking to the PKCS#11 module directly.",
        "Initialises a SoftHSM token (label, SO PIN, user PIN from files) when it does not exist;",
        "checks an existing or vendor token by logging in with the user PIN. Safe to run again.",
        "SoftHSM reads its configuration from $SOFTHSM2_CONF.",
        "With --card: personalises the KeyVault Java Card in a PC/SC reader instead (PIN and admin",
        "PIN from files) and prints the card's identity to pin in the daemon's configuration."})
final class ProvisionCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--module", paramLabel = "PATH", description = "PKCS#11 module (default: ${DEFAULT-VALUE}).")
    Path module = Pkcs11Config.DEFAULT_LIBRARY;

    @Option(names = "--token-label", paramLabel = "LABEL", description = "The token's label (PKCS#11).")
    String label;

    @Option(names = "--card", description = "Provision a Java Card (the KeyVault applet) instead of a PKCS#11 token.")
    boolean card;

    @Option(names = "--reader", paramLabel = "NAME", description = "With --card: the PC/SC reader the card is in.")
    String reader;

    @Option(names = "--aid", paramLabel = "HEX", description = "With --card: the applet's AID (default F0454E434B4D5301).")
    String aid;

    @Option(names = "--admin-pin-file", paramLabel = "FILE",
            description = "With --card: the admin PIN (a 0600 file, 8-16 bytes); it unblocks the PIN. Keep it offline.")
    Path adminPinFile;

    @Option(names = "--identity-file", paramLabel = "FILE", description = {"With --card: where the card's identity is"
            + " recorded; when the file exists, the card must have that identity."})
    Path identityFile;

    @Option(names = "--pin-file", paramLabel = "FILE", required = true,
            description = "The user PIN the daemon logs in with (a 0600 file).")
    Path pinFile;

    @Option(names = "--so-pin-file", paramLabel = "FILE",
            description = "The security officer PIN (a 0600 file); needed only to initialise a token.")
    Path soPinFile;

    @Option(names = "--init", description = "Also initialise a blank token of a vendor (non-SoftHSM) module.")
    boolean init;

    @Override
    public Integer call() {
        Output out = Kmsctl.of(spec).output();
        if (card) {
            return new CardProvisioning(out, reader, aid, pinFile, adminPinFile, identityFile).run();
        }
        if (label == null) {
            throw CliFailure.local("--token-label is required (or --card for a Java Card)");
        }
        boolean softhsm = module.getFileName().toString().contains("softhsm");
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("module", module.toString());
        r.put("token_label", label);
        if (softhsm || init) {
            if (soPinFile == null) {
                throw CliFailure.local("--so-pin-file is required where a token may have to be initialised");
            }
            try {
                Pkcs11Provisioner.Result p = Pkcs11Provisioner.provision(module, label, soPinFile, pinFile);
                r.put("token_serial", p.tokenSerial());
                r.put("slot", p.slotId());
                r.put("created", p.created());
            } catch (Pkcs11Provisioner.ProvisioningException e) {
                throw CliFailure.local("provisioning failed: " + e.getMessage());
            }
        } else {
            try (Pkcs11Enclave enclave = Pkcs11Enclave.open(new Pkcs11Config(module, label, null, pinFile, 1))) {
                EnclaveInfo info = enclave.info();
                r.put("token_serial", info.serial());
                r.put("created", false);
            } catch (EnclaveException e) {
                throw CliFailure.local("token check failed: " + e.getMessage()
                        + " (initialise vendor tokens with the vendor's tools, or pass --init)");
            }
        }
        if (out.json()) {
            out.json(r);
        } else {
            out.fields(new Output.Fields().add("token", "'" + label + "' (serial " + r.get("token_serial") + ")")
                    .add("module", module.toString())
                    .add("result", Boolean.TRUE.equals(r.get("created")) ? "initialised" : "already provisioned; user PIN checked"));
        }
        return Kmsctl.EXIT_OK;
    }
}
