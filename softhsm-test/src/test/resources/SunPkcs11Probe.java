import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * Generates keys through SunPKCS11 configured from a pkcs11-config/ file, uses them,
 * and prints what JCA sees as key=value lines (run with `java SunPkcs11Probe.java CFG
 * PIN-FILE`, SOFTHSM2_CONF set). The token's own view is checked by the caller.
 */
public class SunPkcs11Probe {
    public static void main(String[] args) throws Exception {
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        char[] pin = Files.readString(Path.of(args[1])).trim().toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, pin);
        System.out.println("provider=" + p.getName());

        KeyGenerator kg = KeyGenerator.getInstance("AES", p);
        kg.init(256);
        SecretKey aes = kg.generateKey();
        System.out.println("aes.encoded=" + (aes.getEncoded() == null ? "null" : "exposed"));
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding", p);
        byte[] iv = new byte[12];
        c.init(Cipher.ENCRYPT_MODE, aes, new GCMParameterSpec(128, iv));
        byte[] ct = c.doFinal("probe".getBytes());
        c.init(Cipher.DECRYPT_MODE, aes, new GCMParameterSpec(128, iv));
        System.out.println("aes.gcm.roundtrip=" + "probe".equals(new String(c.doFinal(ct))));

        KeyPairGenerator kpg = KeyPairGenerator.getInstance("EC", p);
        kpg.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair ec = kpg.generateKeyPair();
        System.out.println("ec.private.encoded=" + (ec.getPrivate().getEncoded() == null ? "null" : "exposed"));
        Signature s = Signature.getInstance("SHA256withECDSA", p);
        s.initSign(ec.getPrivate());
        s.update("message".getBytes());
        byte[] sig = s.sign();
        Signature v = Signature.getInstance("SHA256withECDSA");
        v.initVerify(ec.getPublic());
        v.update("message".getBytes());
        System.out.println("ec.signature.verified=" + v.verify(sig));

        KeyPairGenerator rsa = KeyPairGenerator.getInstance("RSA", p);
        rsa.initialize(3072);
        KeyPair r = rsa.generateKeyPair();
        System.out.println("rsa.private.encoded=" + (r.getPrivate().getEncoded() == null ? "null" : "exposed"));
        Signature rs = Signature.getInstance("SHA256withRSA", p);
        rs.initSign(r.getPrivate());
        rs.update("message".getBytes());
        byte[] rsig = rs.sign();
        Signature rv = Signature.getInstance("SHA256withRSA");
        rv.initVerify(r.getPublic());
        rv.update("message".getBytes());
        System.out.println("rsa.signature.verified=" + rv.verify(rsig));
    }
}
