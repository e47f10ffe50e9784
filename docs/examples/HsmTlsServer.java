import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * A TLS 1.3 server whose private key is an enclave-kms TLS_SERVER key on the token: JSSE
 * signs every handshake through SunPKCS11, and the key never leaves the HSM (docs/tls.md).
 * JDK only; run it as a single source file:
 *
 * <pre>
 * SOFTHSM2_CONF=... java HsmTlsServer.java pkcs11-config/sunpkcs11-tls-server.cfg PIN_FILE KEY PORT [CA_CERTS]
 * </pre>
 *
 * KEY is the TLS key's name: the server uses the newest key version that has a currently
 * valid certificate on the token (Kms.IssueTlsCertificate stores them there), and looks
 * again every RELOAD seconds (system property reload, default 60), so renewal and rotation
 * need no restart. CA_CERTS (PEM) are sent after the certificate: the intermediates, if any.
 * Prints "listening PORT ALIAS" when ready and answers each connection with one line.
 */
public class HsmTlsServer {
    public static void main(String[] args) throws Exception {
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        // Lowest priority: the JDK's providers do everything else; JSSE reaches this one only
        // through the token's key (delayed provider selection).
        Security.addProvider(p);
        char[] pin = Files.readString(Path.of(args[1])).strip().toCharArray();
        List<X509Certificate> caCerts = new ArrayList<>();
        if (args.length > 4) {
            try (InputStream in = new FileInputStream(args[4])) {
                for (var c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                    caCerts.add((X509Certificate) c);
                }
            }
        }
        TokenKeyManager keys = new TokenKeyManager(p, pin, args[2], caCerts,
                Duration.ofSeconds(Long.getLong("reload", 60)));
        SSLContext tls = SSLContext.getInstance("TLSv1.3");
        tls.init(new KeyManager[] {keys}, null, null);
        try (SSLServerSocket server = (SSLServerSocket) tls.getServerSocketFactory()
                .createServerSocket(Integer.parseInt(args[3]), 50, InetAddress.getLoopbackAddress())) {
            System.out.println("listening " + server.getLocalPort() + " " + keys.current().alias()
                    + " key-encoded=" + (keys.current().key().getEncoded() == null ? "none" : "EXPOSED"));
            System.out.flush();
            while (true) {
                try (SSLSocket s = (SSLSocket) server.accept()) {
                    s.startHandshake();
                    OutputStream out = s.getOutputStream();
                    out.write(("hello from " + keys.current().alias() + "\n").getBytes(StandardCharsets.UTF_8));
                    out.flush();
                } catch (java.io.IOException e) {
                    System.err.println("connection failed: " + e);
                }
            }
        }
    }

    /** One key and chain from the token; picked again when older than the reload interval. */
    record Selected(String alias, PrivateKey key, X509Certificate[] chain, Instant loaded) { }

    static final class TokenKeyManager extends X509ExtendedKeyManager {
        private final Provider provider;
        private final char[] pin;
        private final String prefix;
        private final List<X509Certificate> caCerts;
        private final Duration reload;
        private volatile Selected selected;

        TokenKeyManager(Provider provider, char[] pin, String keyName, List<X509Certificate> caCerts, Duration reload)
                throws Exception {
            this.provider = provider;
            this.pin = pin;
            this.prefix = "enclave-kms:" + keyName + ":v";
            this.caCerts = caCerts;
            this.reload = reload;
            this.selected = select();
        }

        /**
         * The newest key version on the token that has a currently valid certificate. By
         * version, not by the certificates' notBefore: that has one-second resolution, so a
         * rotation within a second of the last issuance would tie.
         */
        private Selected select() throws Exception {
            KeyStore ks = KeyStore.getInstance("PKCS11", provider);
            ks.load(null, pin); // reads the token afresh: certificates renewed since are seen
            String best = null;
            X509Certificate bestCert = null;
            long bestVersion = -1;
            for (String alias : Collections.list(ks.aliases())) {
                if (!alias.startsWith(prefix) || !ks.isKeyEntry(alias)) continue;
                X509Certificate c = (X509Certificate) ks.getCertificate(alias);
                try {
                    c.checkValidity();
                } catch (java.security.cert.CertificateException expired) {
                    continue;
                }
                long version = version(alias);
                if (version > bestVersion) {
                    best = alias;
                    bestCert = c;
                    bestVersion = version;
                }
            }
            if (best == null) throw new IllegalStateException("no valid certificate for " + prefix + "* on the token");
            List<X509Certificate> chain = new ArrayList<>();
            chain.add(bestCert);
            chain.addAll(caCerts);
            return new Selected(best, (PrivateKey) ks.getKey(best, null), chain.toArray(X509Certificate[]::new),
                    Instant.now());
        }

        /** The key version in an alias "enclave-kms:NAME:vN:ID"; -1 when it has none. */
        private long version(String alias) {
            int end = alias.indexOf(':', prefix.length());
            try {
                return Long.parseLong(alias.substring(prefix.length(), end < 0 ? alias.length() : end));
            } catch (NumberFormatException e) {
                return -1;
            }
        }

        Selected current() {
            Selected s = selected;
            if (Instant.now().isAfter(s.loaded().plus(reload))) {
                try {
                    selected = s = select();
                } catch (Exception e) {
                    System.err.println("reload failed, keeping " + s.alias() + ": " + e);
                }
            }
            return s;
        }

        @Override
        public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
            Selected s = current();
            return keyType.startsWith(s.key().getAlgorithm()) ? s.alias() : null;
        }

        @Override
        public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
            return chooseServerAlias(keyType, issuers, null);
        }

        @Override
        public PrivateKey getPrivateKey(String alias) {
            Selected s = selected;
            return s.alias().equals(alias) ? s.key() : null;
        }

        @Override
        public X509Certificate[] getCertificateChain(String alias) {
            Selected s = selected;
            return s.alias().equals(alias) ? s.chain().clone() : null;
        }

        @Override
        public String[] getServerAliases(String keyType, Principal[] issuers) {
            return new String[] {selected.alias()};
        }

        @Override
        public String[] getClientAliases(String keyType, Principal[] issuers) {
            return null;
        }

        @Override
        public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
            return null;
        }
    }
}
