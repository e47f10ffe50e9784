# Shared by the launchers: find a JDK 25, install missing system packages, build jars.
# Sourced, not run.

ENCLAVE_KMS_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DAEMON_JAR="$ENCLAVE_KMS_HOME/hsm-daemon/target/enclave-kmsd-0.1.0-SNAPSHOT.jar"

say() { printf 'enclave-kms: %s\n' "$*" >&2; }

# java_major JAVA -> prints the feature version (17, 25, ...) or nothing. Reads the JDK's
# release file when there is one: starting a JVM just to ask costs every launcher call
# ~0.1 s (0.35 s on a loaded machine), as much as the rest of kmsctl's start-up.
java_major() {
  local release v
  release="$(dirname "$(dirname "$1")")/release"
  if [ -r "$release" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([0-9.]*\).*/\1/p' "$release" | head -n1)
    case "$v" in
      1.*) v=${v#1.}; v=${v%%.*} ;;
      *) v=${v%%.*} ;;
    esac
    if [ -n "$v" ]; then echo "$v"; return 0; fi
  fi
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n1
}

# Sets JAVA_HOME to a JDK 25 or newer, or explains how to get one and returns 1.
find_jdk25() {
  local c v
  for c in "${ENCLAVE_KMS_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25* /usr/lib/jvm/java-25* \
           /usr/lib/jvm/*-25-* /usr/lib/jvm/jdk-25* /opt/java/openjdk /usr/lib/jvm/*; do
    [ -n "$c" ] && [ -x "$c/bin/javac" ] || continue
    v=$(java_major "$c/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 25 ] 2>/dev/null; then
      export JAVA_HOME="$c"
      return 0
    fi
  done
  if command -v javac >/dev/null 2>&1; then
    c=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
    v=$(java_major "$c/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 25 ] 2>/dev/null; then
      export JAVA_HOME="$c"
      return 0
    fi
  fi
  if apt_install_possible && apt-cache show openjdk-25-jdk-headless >/dev/null 2>&1; then
    say "installing openjdk-25-jdk-headless"
    apt_run install -y -q openjdk-25-jdk-headless >/dev/null && find_jdk25_no_install && return 0
  fi
  say "no JDK 25 found. Install one (e.g. 'apt-get install openjdk-25-jdk-headless', or Temurin 25"
  say "from adoptium.net) and set JAVA_HOME or ENCLAVE_KMS_JAVA_HOME to it."
  return 1
}

find_jdk25_no_install() {
  local c v
  for c in /usr/lib/jvm/*; do
    [ -x "$c/bin/javac" ] || continue
    v=$(java_major "$c/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 25 ] 2>/dev/null; then export JAVA_HOME="$c"; return 0; fi
  done
  return 1
}

apt_install_possible() {
  command -v apt-get >/dev/null 2>&1 || return 1
  [ "$(id -u)" -eq 0 ] && return 0
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null
}

apt_run() {
  if [ "$(id -u)" -eq 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get "$@"
  else sudo -n env DEBIAN_FRONTEND=noninteractive apt-get "$@"; fi
}

# ensure_packages: the system packages enclave-kms and its tests use, installed when
# missing. Each entry is COMMAND:PACKAGE, or /FILE:PACKAGE for a package without a command.
# systemd: systemd-analyze, systemd-sysusers and systemd-tmpfiles check the units (on Debian
# 12 they come with the systemd package even where systemd is not PID 1); acl: setfacl,
# to lay out a credential the way systemd does; jsvc and libcommons-daemon-java: the
# Commons Daemon variant; lintian: checks the .deb; openssl and age: the shard benchmark's
# baselines, which its smoke test (bench, ShardBenchSmokeTest) requires; pcscd,
# vsmartcard-vpcd (its driver) and libpcsclite1: the PC/SC path to the Java Card backend
# (docs/card-operations.md); unshare (util-linux) gives the tests' private pcscd its own
# /run/pcscd.
ensure_packages() {
  local missing=() pair cmd pkg
  for pair in softhsm2-util:softhsm2 pkcs11-tool:opensc p11-kit:p11-kit \
              varlink-go-certification:varlink-go python3:python3 \
              systemd-analyze:systemd setfacl:acl jsvc:jsvc \
              /usr/share/java/commons-daemon.jar:libcommons-daemon-java lintian:lintian \
              openssl:openssl age:age \
              /usr/sbin/pcscd:pcscd /usr/lib/pcsc/drivers/serial/libifdvpcd.so:vsmartcard-vpcd \
              /usr/lib/*/libpcsclite.so.1:libpcsclite1 unshare:util-linux; do
    cmd=${pair%%:*}; pkg=${pair##*:}
    case "$cmd" in
      /*) compgen -G "$cmd" >/dev/null || missing+=("$pkg") ;;  # a path, maybe with a glob
      *) command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if apt_install_possible; then
    say "installing missing packages: ${missing[*]}"
    apt_run update -q >/dev/null 2>&1 || true
    if apt_run install -y -q "${missing[@]}" >/dev/null; then return 0; fi
    say "apt-get install ${missing[*]} failed"
  fi
  say "missing system packages: ${missing[*]}"
  say "install them with: sudo apt-get install ${missing[*]}"
  return 1
}

# ensure_built: builds the daemon jar and its lib/ when missing or older than the sources.
ensure_built() {
  local stale=""
  if [ ! -f "$DAEMON_JAR" ]; then
    stale=yes
  elif [ -n "$(find "$ENCLAVE_KMS_HOME/hsm-daemon/src/main" "$ENCLAVE_KMS_HOME/client/src/main" \
                 "$ENCLAVE_KMS_HOME/applet/src/main" "$ENCLAVE_KMS_HOME/applet/pom.xml" \
                 "$ENCLAVE_KMS_HOME/pom.xml" "$ENCLAVE_KMS_HOME/hsm-daemon/pom.xml" \
                 -newer "$DAEMON_JAR" -type f 2>/dev/null | head -n1)" ]; then
    stale=yes
  fi
  [ -z "$stale" ] && return 0
  say "building enclave-kms (first run, or sources changed)"
  (cd "$ENCLAVE_KMS_HOME" && ./mvnw -B -q -DskipTests -pl hsm-daemon -am package) >&2
  # Marks the sources as built even when Maven found nothing to change in the jar.
  touch "$DAEMON_JAR"
  [ -n "${ENCLAVE_KMS_AOT_OUTPUT:-}" ] || build_aot_caches
}

# AOT caches (JEP 483/514, JDK 24+): the classes a launcher's JVM loads and links at
# start-up, stored once and mapped at every later start. Measured here (docs/performance.md):
# kmsctl needs about a quarter less CPU to start, the daemon answers its first call 25-40 %
# sooner. A cache is only valid for the jars it was made from, so it lives beside them in
# hsm-daemon/target and is used only while newer than every jar on the class path; a stale
# or missing cache is simply not used. build_aot_caches makes both (after ensure_built
# builds, and from bench/run): a few seconds of CPU.
AOT_DIR="$ENCLAVE_KMS_HOME/hsm-daemon/target"

# aot_flags NAME -> the java options that map NAME.aot, if it is fresh; else nothing.
aot_flags() {
  local cache="$AOT_DIR/$1.aot"
  [ -f "$cache" ] && [ "$cache" -nt "$DAEMON_JAR" ] || return 0
  [ -z "$(find "$ENCLAVE_KMS_HOME/hsm-daemon/target/lib" -newer "$cache" -name '*.jar' 2>/dev/null | head -n1)" ] \
    || return 0
  # A cache the JVM still rejects (another JDK) is ignored; its warnings must not reach stdout.
  printf '%s\n' "-XX:AOTCache=$cache" -Xlog:aot=off -Xlog:cds=off
}

# build_aot_caches: trains the daemon (a --dev start on a scratch token until it answers
# Status, then SIGTERM) and, while it serves, kmsctl (`status`: picocli, every command
# class and the client); each writes its cache at exit (-XX:AOTCacheOutput, through
# ENCLAVE_KMS_AOT_OUTPUT), which is then moved into place.
build_aot_caches() {
  local tmp rc=0 pid
  [ -w "$AOT_DIR" ] || return 0
  tmp=$(mktemp -d /tmp/enclave-kms-aot.XXXXXX)
  ENCLAVE_KMS_AOT_OUTPUT="$tmp/enclave-kmsd.aot" "$ENCLAVE_KMS_HOME/bin/enclave-kmsd" --dev \
    --state-dir "$tmp/state" >/dev/null 2>&1 &
  pid=$!
  if python3 - "$tmp/state/kms.sock" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        s.sendall(b'{"method":"dev.enclavekms.Kms.Status"}\0')
        if b'"error"' not in s.recv(65536):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.05)
sys.exit(1)
PY
  then
    ENCLAVE_KMS_AOT_OUTPUT="$tmp/kmsctl.aot" "$ENCLAVE_KMS_HOME/bin/kmsctl" --socket "$tmp/state/kms.sock" \
      status >/dev/null 2>&1 && [ -f "$tmp/kmsctl.aot" ] && mv -f "$tmp/kmsctl.aot" "$AOT_DIR/kmsctl.aot" || rc=1
  else
    rc=1
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -f "$tmp/enclave-kmsd.aot" ] && mv -f "$tmp/enclave-kmsd.aot" "$AOT_DIR/enclave-kmsd.aot" || rc=1
  rm -rf "$tmp"
  [ "$rc" -eq 0 ] || say "AOT caches not (all) built; the launchers start without them"
  return 0
}

# aot_java_flags NAME -> training flags under build_aot_caches, else the cache's flags.
aot_java_flags() {
  if [ -n "${ENCLAVE_KMS_AOT_OUTPUT:-}" ]; then
    printf '%s\n' "-XX:AOTCacheOutput=$ENCLAVE_KMS_AOT_OUTPUT"
  else
    aot_flags "$1"
  fi
}

daemon_classpath() {
  printf '%s:%s/*' "$DAEMON_JAR" "$ENCLAVE_KMS_HOME/hsm-daemon/target/lib"
}
