#!/usr/bin/env bash
# Local test servers for Driftwatch's integration tests: a real single-node KRaft
# Apache Kafka broker (jars from Maven Central, run with the local JDK) and a Redis.
#
#   scripts/test-env.sh check   say whether `up` could start them (exit 2 naming what is missing)
#   scripts/test-env.sh up      start both (reuses whatever already answers on the ports)
#   scripts/test-env.sh down    stop what `up` started (pid files) and delete Kafka's data
#   scripts/test-env.sh status  say what is running (exit 1 if something is not up)
#   scripts/test-env.sh env     print DRIFTWATCH_TEST_KAFKA_BROKERS=... / DRIFTWATCH_TEST_REDIS_URL=...
#                               (and the transport-security variables below, once up)
#   scripts/test-env.sh fetch   download the Kafka jars into .cache/kafka-libs (if missing)
#
# Transport security (test/e2e/transport-security.test.ts): `up` also makes a test CA
# and certificates in .test-env/tls/ (openssl; a server certificate for localhost and
# 127.0.0.1, a client certificate for mutual TLS) and random passwords in
# .test-env/credentials, and gives
#   - the broker a SASL_SSL listener (TLS; SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN; user
#     driftwatch, created when the storage is formatted; StandardAuthorizer with that
#     user and the PLAINTEXT listener's ANONYMOUS as super users), and
#   - a second Redis, TLS only, whose default user is off and whose ACL user driftwatch
#     may use keys matching dw*.
# A broker or TLS Redis that an earlier `up` started with other settings is restarted.
#
# Environment:
#   DRIFTWATCH_TEST_KAFKA_PORT             PLAINTEXT port (default 19092)
#   DRIFTWATCH_TEST_KAFKA_CONTROLLER_PORT  KRaft controller port (default 19093)
#   DRIFTWATCH_TEST_KAFKA_SSL_PORT         SASL_SSL port (default 19094)
#   DRIFTWATCH_TEST_REDIS_PORT             Redis port (default 16379)
#   DRIFTWATCH_TEST_REDIS_TLS_PORT         TLS Redis port (default 16380)
#   DRIFTWATCH_TEST_KAFKA_BROKERS          use this existing Kafka instead of starting one
#   DRIFTWATCH_TEST_REDIS_URL              use this existing Redis instead of starting one
#                                          (either one: its TLS counterpart is not started
#                                          either; give the DRIFTWATCH_TEST_* variables
#                                          `env` prints for it yourself)
#   DRIFTWATCH_TEST_KAFKA_TIMEOUT          seconds to wait for the broker (default 90)
#
# State lives in .test-env/ (git-ignored), jars in .cache/kafka-libs/ (git-ignored).
# Progress goes to stderr; only `env` and `status` write to stdout.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"

KAFKA_VERSION="4.1.2"
KAFKA_PORT="${DRIFTWATCH_TEST_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${DRIFTWATCH_TEST_KAFKA_CONTROLLER_PORT:-19093}"
REDIS_PORT="${DRIFTWATCH_TEST_REDIS_PORT:-16379}"
KAFKA_SSL_PORT="${DRIFTWATCH_TEST_KAFKA_SSL_PORT:-19094}"
REDIS_TLS_PORT="${DRIFTWATCH_TEST_REDIS_TLS_PORT:-16380}"
KAFKA_TIMEOUT="${DRIFTWATCH_TEST_KAFKA_TIMEOUT:-90}"
REDIS_TIMEOUT=20
# Fixed cluster id (22-char base64 UUID) so a left-over data dir always matches.
CLUSTER_ID="${DRIFTWATCH_TEST_KAFKA_CLUSTER_ID:-ZHJpZnR3YXRjaC10ZXN0MQ}"

POM_SRC="$SCRIPT_DIR/kafka/pom.xml"
PROPS_TEMPLATE="$SCRIPT_DIR/kafka/server.properties.template"
LOG4J_CONF="$SCRIPT_DIR/kafka/log4j2.properties"
CACHE_DIR="$ROOT/.cache"
POM_DIR="$CACHE_DIR/kafka-pom"
LIBS_DIR="$CACHE_DIR/kafka-libs"
LIBS_STAMP="$LIBS_DIR/.pom.sha256"

STATE_DIR="$ROOT/.test-env"
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_OUT="$KAFKA_LOGS/kafka.out"
REDIS_DIR="$STATE_DIR/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
TLS_DIR="$STATE_DIR/tls"
CREDENTIALS="$STATE_DIR/credentials"
KAFKA_SCRAM_STAMP="$KAFKA_DATA/.driftwatch-scram"
REDIS_TLS_DIR="$STATE_DIR/redis-tls"
REDIS_TLS_CONF="$REDIS_TLS_DIR/redis.conf"
REDIS_TLS_PID="$REDIS_TLS_DIR/redis.pid"
REDIS_TLS_LOG="$REDIS_TLS_DIR/redis.log"
# The user of the SASL_SSL listener and of the TLS Redis (passwords: $CREDENTIALS).
TEST_USER="driftwatch"

KAFKA_BROKERS_DEFAULT="127.0.0.1:$KAFKA_PORT"
REDIS_URL_DEFAULT="redis://127.0.0.1:$REDIS_PORT"

log() { printf '[test-env] %s\n' "$*" >&2; }
# A URL without its password (redis://user:***@host:port).
redact_url() { sed -E 's#(//[^/:@]*):[^/@]*@#\1:***@#' <<<"$1"; }
die() { printf '[test-env] ERROR: %s\n' "$*" >&2; exit 1; }

# --- small helpers ---------------------------------------------------------------

# Seconds since $1 (an earlier $EPOCHREALTIME), one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Prints the pid from pid file $1 if that process is alive and its command line
# contains $2; removes a stale pid file. Returns 1 when not running.
pid_alive() {
  local file="$1" pattern="$2" pid
  [[ -s "$file" ]] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"; then
    printf '%s' "$pid"
    return 0
  fi
  rm -f "$file"
  return 1
}

redis_ping() {
  local port="$1"
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == "PONG" ]]
  else
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "PING\r\n" >&3; read -r -t 2 l <&3; [[ "$l" == "+PONG"* ]]' _ "$port" 2>/dev/null
  fi
}

# SIGTERM, wait up to $3 seconds, then SIGKILL.
stop_pid() {
  local pid="$1" name="$2" wait_s="$3" i
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < wait_s * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || { log "$name stopped"; return 0; }
    sleep 0.25
  done
  log "$name did not stop within ${wait_s}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  log "WARNING: $name (pid $pid) is still alive"
}

# Serialise concurrent up/down calls (e.g. parallel test runners). fd 9 is closed
# for the servers we spawn so they do not hold the lock.
take_lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 9 || die "could not lock $STATE_DIR/.lock within 300s"
  fi
}

java_major() {
  local v
  v="$(java -version 2>&1 | awk -F'"' '/version/ && !seen {print $2; seen=1}')"
  v="${v#1.}"
  printf '%s' "${v%%[.+-]*}"
}

# --- fetch -------------------------------------------------------------------------

libs_current() {
  [[ -f "$LIBS_STAMP" ]] || return 1
  [[ "$(cat "$LIBS_STAMP")" == "$(sha256sum "$POM_SRC" | cut -d' ' -f1)" ]] || return 1
  compgen -G "$LIBS_DIR/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null
}

cmd_fetch() {
  if libs_current; then
    log "Kafka $KAFKA_VERSION jars already in ${LIBS_DIR#"$ROOT"/} ($(find "$LIBS_DIR" -name '*.jar' | wc -l) jars)"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is needed to download the Kafka jars into ${LIBS_DIR#"$ROOT"/}: apt-get install -y maven openjdk-17-jdk-headless (or point DRIFTWATCH_TEST_KAFKA_BROKERS at an existing broker)."
  log "fetching Kafka $KAFKA_VERSION runtime jars from Maven Central into ${LIBS_DIR#"$ROOT"/} ..."
  mkdir -p "$POM_DIR" "$CACHE_DIR"
  cp "$POM_SRC" "$POM_DIR/pom.xml"
  local tmp="$CACHE_DIR/kafka-libs.tmp.$$"
  rm -rf "$tmp"
  # (Debian's Maven 3.8.7 prints stray ANSI resets even with -B -q; strip them.)
  if ! (cd "$POM_DIR" && mvn -B -q -f pom.xml \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 \
        | sed -u 's/\x1b\[[0-9;]*m//g' >&2); then
    rm -rf "$tmp"
    die "mvn could not download the Kafka jars (is Maven Central reachable? see the Maven output above)."
  fi
  sha256sum "$POM_SRC" | cut -d' ' -f1 >"$tmp/.pom.sha256"
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars"
}

# --- TLS material and passwords (transport-security tests) -------------------------

# Makes the test CA, a server certificate (localhost, 127.0.0.1) and a client certificate
# in $TLS_DIR, unless they are there and good for two more days. EC P-256 keys in PKCS#8
# PEM (what Kafka's PEM key store reads); kafka-server.pem is the broker's key + chain.
tls_setup() {
  if [[ -s "$TLS_DIR/kafka-server.pem" && -s "$TLS_DIR/server.key" && -s "$TLS_DIR/client.key" ]] \
     && openssl x509 -checkend 172800 -noout -in "$TLS_DIR/ca.crt" >/dev/null 2>&1 \
     && openssl x509 -checkend 172800 -noout -in "$TLS_DIR/server.crt" >/dev/null 2>&1 \
     && openssl x509 -checkend 172800 -noout -in "$TLS_DIR/client.crt" >/dev/null 2>&1; then
    return 0
  fi
  local tmp="$STATE_DIR/tls.tmp.$$"
  local -a ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! (
    umask 077 && cd "$tmp" \
    && openssl req -x509 -new "${ec[@]}" -keyout ca.key -out ca.crt -days 30 -subj "/CN=Driftwatch test CA" \
         -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    && openssl req -new "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" \
    && printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext \
    && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 30 -extfile server.ext \
    && openssl req -new "${ec[@]}" -keyout client.key -out client.csr -subj "/CN=$TEST_USER" \
    && printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >client.ext \
    && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 30 -extfile client.ext \
    && cat server.key server.crt >kafka-server.pem \
    && rm -f ./*.csr ./*.ext ./*.srl \
    && chmod 644 ca.crt server.crt client.crt
  ) >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "openssl could not make the test certificates (output above)"
  fi
  rm -rf "$tmp.log" "$TLS_DIR"
  mv "$tmp" "$TLS_DIR"
  log "TLS: made a test CA, a server and a client certificate in ${TLS_DIR#"$ROOT"/}"
}

# The passwords of the SASL user and of the Redis ACL user: random, made once.
credentials_setup() {
  if [[ ! -s "$CREDENTIALS" ]]; then
    mkdir -p "$STATE_DIR"
    (umask 077 && printf 'KAFKA_SASL_PASSWORD=%s\nREDIS_ACL_PASSWORD=%s\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" >"$CREDENTIALS.tmp")
    mv "$CREDENTIALS.tmp" "$CREDENTIALS"
  fi
  credentials_read
  [[ -n "$KAFKA_SASL_PASSWORD" && -n "$REDIS_ACL_PASSWORD" ]] || die "${CREDENTIALS#"$ROOT"/} is incomplete; delete it and run up again"
}

credentials_read() {
  KAFKA_SASL_PASSWORD="$(sed -n 's/^KAFKA_SASL_PASSWORD=//p' "$CREDENTIALS" 2>/dev/null || true)"
  REDIS_ACL_PASSWORD="$(sed -n 's/^REDIS_ACL_PASSWORD=//p' "$CREDENTIALS" 2>/dev/null || true)"
}

# True unless both servers are external (then neither TLS server is started here).
want_tls() { [[ -z "${DRIFTWATCH_TEST_KAFKA_BROKERS:-}" || -z "${DRIFTWATCH_TEST_REDIS_URL:-}" ]]; }

server_fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$TLS_DIR/server.crt" | cut -d= -f2; }

# --- Kafka -------------------------------------------------------------------------

# The broker's properties: the template with the ports, folders and test user filled in,
# and the fingerprint of the certificate it serves (a new one means a restart).
kafka_render() {
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
      -e "s|@SSL_PORT@|$KAFKA_SSL_PORT|g" \
      -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
      -e "s|@TLS_DIR@|$TLS_DIR|g" \
      -e "s|@SASL_USER@|$TEST_USER|g" \
      -e "s|@SASL_PASSWORD@|$KAFKA_SASL_PASSWORD|g" \
      "$PROPS_TEMPLATE"
  printf '\n# server certificate (SHA-256): %s\n' "$(server_fingerprint)"
}

kafka_jvm() {
  KAFKA_JVM=(
    -Xms256m -Xmx512m
    -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$LOG4J_CONF"
    -Dkafka.logs.dir="$KAFKA_LOGS"
    -cp "$LIBS_DIR/*"
  )
}

# What the SCRAM stamp holds once $TEST_USER has its SCRAM credentials with this password.
kafka_scram_stamp() { printf '%s:%s' "$TEST_USER" "$KAFKA_SASL_PASSWORD" | sha256sum | cut -d' ' -f1; }

# The SCRAM credentials are made when the storage is formatted; a data dir formatted
# before (by an older `up`, or with another password) gets them through the PLAINTEXT
# listener, once.
kafka_scram_users() {
  local want m
  want="$(kafka_scram_stamp)"
  [[ "$(cat "$KAFKA_SCRAM_STAMP" 2>/dev/null || true)" == "$want" ]] && return 0
  log "Kafka: adding the SCRAM-SHA-512/256 credentials of $TEST_USER"
  kafka_jvm
  # one mechanism per call: Kafka refuses two changes to one user's credentials in a request
  for m in SCRAM-SHA-512 SCRAM-SHA-256; do
    if ! java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${KAFKA_JVM[@]}" kafka.admin.ConfigCommand \
          --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter --entity-type users --entity-name "$TEST_USER" \
          --add-config "$m=[password=$KAFKA_SASL_PASSWORD]" >>"$KAFKA_OUT" 2>&1 9>&-; then
      tail -n 20 "$KAFKA_OUT" >&2 || true
      die "Kafka: could not add the $m credentials of $TEST_USER (output above)"
    fi
  done
  printf '%s\n' "$want" >"$KAFKA_SCRAM_STAMP"
}

kafka_up() {
  local pid wanted
  if [[ -n "${DRIFTWATCH_TEST_KAFKA_BROKERS:-}" ]]; then
    log "Kafka: DRIFTWATCH_TEST_KAFKA_BROKERS=$DRIFTWATCH_TEST_KAFKA_BROKERS is set; using it, not starting a broker"
    return 0
  fi
  wanted="$(kafka_render)"
  if pid="$(pid_alive "$KAFKA_PID" kafka.Kafka)"; then
    if ! port_open "$KAFKA_PORT"; then
      # Our broker is alive but not (yet) listening: wait for it rather than start another.
      log "Kafka: our broker (pid $pid) is starting; waiting for it"
      kafka_wait "$pid"
    fi
    if [[ "$(cat "$KAFKA_PROPS" 2>/dev/null || true)" == "$wanted" ]]; then
      log "Kafka: already running (pid $pid) on 127.0.0.1:$KAFKA_PORT (SASL_SSL on $KAFKA_SSL_PORT); reusing it"
      kafka_scram_users
      return 0
    fi
    # started by an earlier `up` with other settings (e.g. before the SASL_SSL listener existed)
    log "Kafka: our broker (pid $pid) runs with other settings than ${PROPS_TEMPLATE#"$ROOT"/} gives now; restarting it (its data is kept)"
    stop_pid "$pid" "Kafka" 30
    rm -f "$KAFKA_PID"
  elif port_open "$KAFKA_PORT"; then
    log "Kafka: something already answers on 127.0.0.1:$KAFKA_PORT (not started by this script); reusing it"
    port_open "$KAFKA_SSL_PORT" || log "Kafka: nothing answers on the SASL_SSL port 127.0.0.1:$KAFKA_SSL_PORT: the transport-security tests will be skipped"
    return 0
  fi
  port_open "$CONTROLLER_PORT" && die "Kafka controller port 127.0.0.1:$CONTROLLER_PORT is taken by another process; set DRIFTWATCH_TEST_KAFKA_CONTROLLER_PORT to a free port."
  port_open "$KAFKA_SSL_PORT" && die "Kafka SASL_SSL port 127.0.0.1:$KAFKA_SSL_PORT is taken by another process; set DRIFTWATCH_TEST_KAFKA_SSL_PORT to a free port."

  cmd_fetch

  local t0=$EPOCHREALTIME fresh=0
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  : >"$KAFKA_LOGS/server.log"
  : >"$KAFKA_OUT"
  # (mode 600: the properties hold the test SASL password)
  (umask 077 && printf '%s\n' "$wanted" >"$KAFKA_PROPS")
  chmod 600 "$KAFKA_PROPS"
  kafka_jvm
  [[ -f "$KAFKA_DATA/meta.properties" ]] || fresh=1

  log "Kafka: formatting storage in ${KAFKA_DATA#"$ROOT"/} (cluster id $CLUSTER_ID)"
  # Short-lived tool: C1-only JIT + serial GC start it ~0.3s faster on 2 cores.
  # --add-scram only acts on a fresh data dir (--ignore-formatted skips the rest).
  if ! java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${KAFKA_JVM[@]}" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$KAFKA_PROPS" \
        --add-scram "SCRAM-SHA-512=[name=$TEST_USER,password=$KAFKA_SASL_PASSWORD]" \
        --add-scram "SCRAM-SHA-256=[name=$TEST_USER,password=$KAFKA_SASL_PASSWORD]" \
        --ignore-formatted >>"$KAFKA_OUT" 2>&1 9>&-; then
    tail -n 40 "$KAFKA_OUT" >&2 || true
    die "Kafka storage format failed (output above, full log in ${KAFKA_OUT#"$ROOT"/})"
  fi
  if ((fresh)); then kafka_scram_stamp >"$KAFKA_SCRAM_STAMP"; fi

  log "Kafka: starting broker $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (SASL_SSL 127.0.0.1:$KAFKA_SSL_PORT, controller 127.0.0.1:$CONTROLLER_PORT)"
  # setsid + all std fds redirected: the broker outlives this script and does not keep
  # the caller's pipes open (a Node execSync() would otherwise hang).
  setsid java -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${KAFKA_JVM[@]}" kafka.Kafka "$KAFKA_PROPS" </dev/null >>"$KAFKA_OUT" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$KAFKA_PID"
  kafka_wait "$pid"
  kafka_scram_users
  log "Kafka: ready after $(since "$t0")s (pid $pid, logs in ${KAFKA_LOGS#"$ROOT"/})"
}

kafka_wait() {
  local pid="$1" deadline=$((SECONDS + KAFKA_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      kafka_fail "the broker process (pid $pid) exited during start-up"
    fi
    if grep -q 'Kafka Server started' "$KAFKA_LOGS/server.log" 2>/dev/null && port_open "$KAFKA_PORT" && port_open "$KAFKA_SSL_PORT"; then
      return 0
    fi
    sleep 0.25
  done
  kafka_fail "the broker was not ready within ${KAFKA_TIMEOUT}s" "$pid"
}

kafka_fail() {
  {
    printf '[test-env] ---- last lines of %s ----\n' "${KAFKA_LOGS#"$ROOT"/}/server.log"
    tail -n 40 "$KAFKA_LOGS/server.log" 2>/dev/null || true
    printf '[test-env] ---- last lines of %s ----\n' "${KAFKA_OUT#"$ROOT"/}"
    tail -n 20 "$KAFKA_OUT" 2>/dev/null || true
  } >&2
  # Do not leave a half-started broker behind (a re-run starts from scratch).
  if [[ -n "${2:-}" ]] && kill -0 "$2" 2>/dev/null; then stop_pid "$2" "Kafka" 15; fi
  rm -f "$KAFKA_PID"
  die "Kafka: $1 (see above; logs in ${KAFKA_LOGS#"$ROOT"/})"
}

kafka_down() {
  local pid
  if pid="$(pid_alive "$KAFKA_PID" kafka.Kafka)"; then
    stop_pid "$pid" "Kafka" 30
  else
    log "Kafka: not started by this script; nothing to stop"
  fi
  rm -f "$KAFKA_PID"
  if [[ -d "$KAFKA_DATA" ]]; then
    rm -rf "$KAFKA_DATA"
    log "Kafka: removed ${KAFKA_DATA#"$ROOT"/}"
  fi
}

# --- Redis -------------------------------------------------------------------------

redis_up() {
  local pid
  if [[ -n "${DRIFTWATCH_TEST_REDIS_URL:-}" ]]; then
    log "Redis: DRIFTWATCH_TEST_REDIS_URL=$(redact_url "$DRIFTWATCH_TEST_REDIS_URL") is set; using it, not starting a server"
    return 0
  fi
  if redis_ping "$REDIS_PORT"; then
    if pid="$(pid_alive "$REDIS_PID" redis-server)"; then
      log "Redis: already running (pid $pid) on 127.0.0.1:$REDIS_PORT; reusing it"
    else
      log "Redis: something already answers PING on 127.0.0.1:$REDIS_PORT (not started by this script); reusing it"
    fi
    return 0
  fi
  port_open "$REDIS_PORT" && die "127.0.0.1:$REDIS_PORT is taken by something that does not answer Redis PING; set DRIFTWATCH_TEST_REDIS_PORT to a free port."

  local t0=$EPOCHREALTIME
  mkdir -p "$REDIS_DIR"
  rm -f "$REDIS_PID"
  log "Redis: starting on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir "$REDIS_DIR" \
    --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" </dev/null >&2 9>&- \
    || die "redis-server failed to start (see ${REDIS_LOG#"$ROOT"/})"
  local deadline=$((SECONDS + REDIS_TIMEOUT))
  until redis_ping "$REDIS_PORT"; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$REDIS_LOG" >&2 || true
      die "Redis did not answer PING within ${REDIS_TIMEOUT}s"
    fi
    sleep 0.2
  done
  log "Redis: ready after $(since "$t0")s (pid $(cat "$REDIS_PID" 2>/dev/null || echo '?'))"
}

redis_down() {
  local pid
  if pid="$(pid_alive "$REDIS_PID" redis-server)"; then
    stop_pid "$pid" "Redis" 10
  else
    log "Redis: not started by this script; nothing to stop"
  fi
  rm -f "$REDIS_PID"
}

# --- Redis with TLS and an ACL user -------------------------------------------------

# Its configuration (mode 600: it holds the ACL user's password). TLS only; client
# certificates from the test CA are checked when presented (mutual TLS is optional);
# the default user is off, the test user may use keys matching dw* (and every command).
redis_tls_render() {
  cat <<EOF
# TLS-only Redis for the transport-security tests, written by scripts/test-env.sh
# server certificate (SHA-256): $(server_fingerprint)
bind 127.0.0.1
port 0
tls-port $REDIS_TLS_PORT
tls-cert-file $TLS_DIR/server.crt
tls-key-file $TLS_DIR/server.key
tls-ca-cert-file $TLS_DIR/ca.crt
tls-auth-clients optional
save ""
appendonly no
dir $REDIS_TLS_DIR
daemonize yes
pidfile $REDIS_TLS_PID
logfile $REDIS_TLS_LOG
user default off
user $TEST_USER on >$REDIS_ACL_PASSWORD ~dw* &* +@all
EOF
}

redis_tls_ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(REDISCLI_AUTH="$REDIS_ACL_PASSWORD" timeout 3 redis-cli --tls --cacert "$TLS_DIR/ca.crt" -h 127.0.0.1 -p "$REDIS_TLS_PORT" \
          --user "$TEST_USER" --no-auth-warning ping 2>/dev/null || true)" == "PONG" ]]
  else
    port_open "$REDIS_TLS_PORT"
  fi
}

redis_tls_up() {
  local pid wanted
  if [[ -n "${DRIFTWATCH_TEST_REDIS_URL:-}" ]]; then
    log "Redis (TLS): not started, as DRIFTWATCH_TEST_REDIS_URL names an external Redis (give DRIFTWATCH_TEST_REDIS_TLS_URL and the others for the transport-security tests)"
    return 0
  fi
  wanted="$(redis_tls_render)"
  if pid="$(pid_alive "$REDIS_TLS_PID" redis-server)"; then
    if [[ "$(cat "$REDIS_TLS_CONF" 2>/dev/null || true)" == "$wanted" ]] && redis_tls_ping; then
      log "Redis (TLS): already running (pid $pid) on 127.0.0.1:$REDIS_TLS_PORT; reusing it"
      return 0
    fi
    log "Redis (TLS): ours (pid $pid) runs with other settings; restarting it"
    stop_pid "$pid" "Redis (TLS)" 10
    rm -f "$REDIS_TLS_PID"
  fi
  port_open "$REDIS_TLS_PORT" && die "127.0.0.1:$REDIS_TLS_PORT is taken by another process; set DRIFTWATCH_TEST_REDIS_TLS_PORT to a free port."

  local t0=$EPOCHREALTIME
  mkdir -p "$REDIS_TLS_DIR"
  (umask 077 && printf '%s\n' "$wanted" >"$REDIS_TLS_CONF")
  chmod 600 "$REDIS_TLS_CONF"
  log "Redis (TLS): starting on 127.0.0.1:$REDIS_TLS_PORT (ACL user $TEST_USER)"
  redis-server "$REDIS_TLS_CONF" </dev/null >&2 9>&- || die "redis-server (TLS) failed to start (see ${REDIS_TLS_LOG#"$ROOT"/})"
  local deadline=$((SECONDS + REDIS_TIMEOUT))
  until redis_tls_ping; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$REDIS_TLS_LOG" >&2 || true
      die "Redis (TLS) did not answer PING within ${REDIS_TIMEOUT}s"
    fi
    sleep 0.2
  done
  log "Redis (TLS): ready after $(since "$t0")s (pid $(cat "$REDIS_TLS_PID" 2>/dev/null || echo '?'))"
}

redis_tls_down() {
  local pid
  if pid="$(pid_alive "$REDIS_TLS_PID" redis-server)"; then
    stop_pid "$pid" "Redis (TLS)" 10
  else
    log "Redis (TLS): not started by this script; nothing to stop"
  fi
  rm -f "$REDIS_TLS_PID"
}

# --- subcommands -------------------------------------------------------------------

# Work out which tools `up` actually needs and fail with one clear message.
check_prereqs() {
  local -a missing=()
  local need_kafka=0 need_redis=0
  if [[ -z "${DRIFTWATCH_TEST_KAFKA_BROKERS:-}" ]] && ! port_open "$KAFKA_PORT"; then need_kafka=1; fi
  if [[ -z "${DRIFTWATCH_TEST_REDIS_URL:-}" ]] && ! redis_ping "$REDIS_PORT"; then need_redis=1; fi
  if ((need_kafka)); then
    if ! command -v java >/dev/null 2>&1; then
      missing+=("java (a JDK/JRE 17 or newer, e.g. apt-get install -y openjdk-17-jdk-headless)")
    else
      local jmajor
      jmajor="$(java_major 2>/dev/null || true)"
      if ! [[ "$jmajor" =~ ^[0-9]+$ ]] || ((jmajor < 17)); then
        missing+=("Java 17 or newer (found '${jmajor:-unknown}'; Kafka $KAFKA_VERSION needs 17+, e.g. apt-get install -y openjdk-17-jdk-headless)")
      fi
    fi
    if ! libs_current && ! command -v mvn >/dev/null 2>&1; then
      missing+=("mvn (Apache Maven, needed once to download the Kafka jars: apt-get install -y maven)")
    fi
  fi
  if [[ -z "${DRIFTWATCH_TEST_REDIS_URL:-}" ]] && ! pid_alive "$REDIS_TLS_PID" redis-server >/dev/null; then need_redis=1; fi
  if want_tls && ! command -v openssl >/dev/null 2>&1; then
    missing+=("openssl (makes the test CA and certificates: apt-get install -y openssl)")
  fi
  if ((need_redis)) && ! command -v redis-server >/dev/null 2>&1; then
    missing+=("redis-server (apt-get update && apt-get install -y redis-server)")
  fi
  if ((${#missing[@]})); then
    local list
    list="$(printf '%s; ' "${missing[@]}")"
    printf '[test-env] ERROR: cannot start the integration-test servers because these are missing: %s Install them, or point DRIFTWATCH_TEST_KAFKA_BROKERS (e.g. 127.0.0.1:9092) and/or DRIFTWATCH_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) at servers that are already running, then re-run "scripts/test-env.sh up".\n' "${list%; }." >&2
    exit 2
  fi
}

cmd_up() {
  take_lock
  check_prereqs
  local t0=$EPOCHREALTIME
  if want_tls; then
    credentials_setup
    tls_setup
  fi
  redis_up
  if want_tls; then redis_tls_up; fi
  kafka_up
  log "up: done in $(since "$t0")s"
  cmd_env | sed -E 's/(PASSWORD=).*/\1***/' >&2
}

cmd_down() {
  take_lock
  kafka_down
  redis_tls_down
  redis_down
}

cmd_status() {
  local pid rc=0
  if [[ -n "${DRIFTWATCH_TEST_KAFKA_BROKERS:-}" ]]; then
    echo "kafka: external ($DRIFTWATCH_TEST_KAFKA_BROKERS, from DRIFTWATCH_TEST_KAFKA_BROKERS)"
  elif pid="$(pid_alive "$KAFKA_PID" kafka.Kafka)"; then
    if port_open "$KAFKA_PORT"; then
      echo "kafka: running (pid $pid, started by test-env.sh) on 127.0.0.1:$KAFKA_PORT"
    else
      echo "kafka: starting (pid $pid, started by test-env.sh), 127.0.0.1:$KAFKA_PORT not answering yet"; rc=1
    fi
  elif port_open "$KAFKA_PORT"; then
    echo "kafka: something answers on 127.0.0.1:$KAFKA_PORT (not started by test-env.sh)"
  else
    echo "kafka: not running (127.0.0.1:$KAFKA_PORT)"; rc=1
  fi
  if [[ -n "${DRIFTWATCH_TEST_REDIS_URL:-}" ]]; then
    echo "redis: external ($(redact_url "$DRIFTWATCH_TEST_REDIS_URL"), from DRIFTWATCH_TEST_REDIS_URL)"
  elif pid="$(pid_alive "$REDIS_PID" redis-server)"; then
    echo "redis: running (pid $pid, started by test-env.sh) on 127.0.0.1:$REDIS_PORT"
  elif redis_ping "$REDIS_PORT"; then
    echo "redis: something answers PING on 127.0.0.1:$REDIS_PORT (not started by test-env.sh)"
  else
    echo "redis: not running (127.0.0.1:$REDIS_PORT)"; rc=1
  fi
  if [[ -n "${DRIFTWATCH_TEST_KAFKA_BROKERS:-}" ]]; then
    echo "kafka sasl_ssl: ${DRIFTWATCH_TEST_KAFKA_SASL_SSL_BROKERS:-not started (external Kafka)}"
  elif port_open "$KAFKA_SSL_PORT"; then
    echo "kafka sasl_ssl: running on 127.0.0.1:$KAFKA_SSL_PORT"
  else
    echo "kafka sasl_ssl: not running (127.0.0.1:$KAFKA_SSL_PORT)"; rc=1
  fi
  if [[ -n "${DRIFTWATCH_TEST_REDIS_URL:-}" ]]; then
    echo "redis tls: $(redact_url "${DRIFTWATCH_TEST_REDIS_TLS_URL:-not started (external Redis)}")"
  elif pid="$(pid_alive "$REDIS_TLS_PID" redis-server)"; then
    echo "redis tls: running (pid $pid, started by test-env.sh) on 127.0.0.1:$REDIS_TLS_PORT"
  elif port_open "$REDIS_TLS_PORT"; then
    echo "redis tls: something answers on 127.0.0.1:$REDIS_TLS_PORT (not started by test-env.sh)"
  else
    echo "redis tls: not running (127.0.0.1:$REDIS_TLS_PORT)"; rc=1
  fi
  return "$rc"
}

cmd_env() {
  echo "DRIFTWATCH_TEST_KAFKA_BROKERS=${DRIFTWATCH_TEST_KAFKA_BROKERS:-$KAFKA_BROKERS_DEFAULT}"
  echo "DRIFTWATCH_TEST_REDIS_URL=${DRIFTWATCH_TEST_REDIS_URL:-$REDIS_URL_DEFAULT}"
  # Transport security: what this script's servers offer (once up), or what the caller set.
  local ca="" cert="" key="" kafka="" redis="" name value
  credentials_read
  if [[ -s "$TLS_DIR/ca.crt" ]]; then
    ca="$TLS_DIR/ca.crt" cert="$TLS_DIR/client.crt" key="$TLS_DIR/client.key"
  fi
  if [[ -z "${DRIFTWATCH_TEST_KAFKA_BROKERS:-}" ]] && port_open "$KAFKA_SSL_PORT"; then kafka="127.0.0.1:$KAFKA_SSL_PORT"; fi
  if [[ -z "${DRIFTWATCH_TEST_REDIS_URL:-}" ]] && port_open "$REDIS_TLS_PORT"; then redis="rediss://127.0.0.1:$REDIS_TLS_PORT"; fi
  for name in TLS_CA_FILE TLS_CLIENT_CERT_FILE TLS_CLIENT_KEY_FILE KAFKA_SASL_SSL_BROKERS KAFKA_SASL_USER KAFKA_SASL_PASSWORD \
              REDIS_TLS_URL REDIS_ACL_USER REDIS_ACL_PASSWORD; do
    case "$name" in
      TLS_CA_FILE) value="$ca" ;;
      TLS_CLIENT_CERT_FILE) value="$cert" ;;
      TLS_CLIENT_KEY_FILE) value="$key" ;;
      KAFKA_SASL_SSL_BROKERS) value="$kafka" ;;
      KAFKA_SASL_USER) value="${kafka:+$TEST_USER}" ;;
      KAFKA_SASL_PASSWORD) value="${kafka:+$KAFKA_SASL_PASSWORD}" ;;
      REDIS_TLS_URL) value="$redis" ;;
      REDIS_ACL_USER) value="${redis:+$TEST_USER}" ;;
      REDIS_ACL_PASSWORD) value="${redis:+$REDIS_ACL_PASSWORD}" ;;
    esac
    local given="DRIFTWATCH_TEST_$name"
    value="${!given:-$value}"
    if [[ -n "$value" ]]; then echo "DRIFTWATCH_TEST_$name=$value"; fi
  done
}

usage() {
  awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

case "${1:-}" in
  check) check_prereqs ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  fetch) take_lock; cmd_fetch ;;
  -h | --help | help) usage ;;
  *) usage; exit 64 ;;
esac
