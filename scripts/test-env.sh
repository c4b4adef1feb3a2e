#!/usr/bin/env bash
# Local test servers for Driftwatch's integration tests: a real single-node KRaft
# Apache Kafka broker (jars from Maven Central, run with the local JDK) and a Redis.
#
#   scripts/test-env.sh up      start both (reuses whatever already answers on the ports)
#   scripts/test-env.sh down    stop what `up` started (pid files) and delete Kafka's data
#   scripts/test-env.sh status  say what is running (exit 1 if something is not up)
#   scripts/test-env.sh env     print DRIFTWATCH_TEST_KAFKA_BROKERS=... / DRIFTWATCH_TEST_REDIS_URL=...
#   scripts/test-env.sh fetch   download the Kafka jars into .cache/kafka-libs (if missing)
#
# Environment:
#   DRIFTWATCH_TEST_KAFKA_PORT             PLAINTEXT port (default 19092)
#   DRIFTWATCH_TEST_KAFKA_CONTROLLER_PORT  KRaft controller port (default 19093)
#   DRIFTWATCH_TEST_REDIS_PORT             Redis port (default 16379)
#   DRIFTWATCH_TEST_KAFKA_BROKERS          use this existing Kafka instead of starting one
#   DRIFTWATCH_TEST_REDIS_URL              use this existing Redis instead of starting one
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

KAFKA_BROKERS_DEFAULT="127.0.0.1:$KAFKA_PORT"
REDIS_URL_DEFAULT="redis://127.0.0.1:$REDIS_PORT"

log() { printf '[test-env] %s\n' "$*" >&2; }
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

# --- Kafka -------------------------------------------------------------------------

kafka_up() {
  local pid
  if [[ -n "${DRIFTWATCH_TEST_KAFKA_BROKERS:-}" ]]; then
    log "Kafka: DRIFTWATCH_TEST_KAFKA_BROKERS=$DRIFTWATCH_TEST_KAFKA_BROKERS is set; using it, not starting a broker"
    return 0
  fi
  if pid="$(pid_alive "$KAFKA_PID" kafka.Kafka)" && port_open "$KAFKA_PORT"; then
    log "Kafka: already running (pid $pid) on 127.0.0.1:$KAFKA_PORT; reusing it"
    return 0
  fi
  if [[ -z "${pid:-}" ]] && port_open "$KAFKA_PORT"; then
    log "Kafka: something already answers on 127.0.0.1:$KAFKA_PORT (not started by this script); reusing it"
    return 0
  fi
  if [[ -n "${pid:-}" ]]; then
    # Our broker is alive but not (yet) listening: wait for it rather than start another.
    log "Kafka: our broker (pid $pid) is starting; waiting for it"
    kafka_wait "$pid"
    return 0
  fi
  port_open "$CONTROLLER_PORT" && die "Kafka controller port 127.0.0.1:$CONTROLLER_PORT is taken by another process; set DRIFTWATCH_TEST_KAFKA_CONTROLLER_PORT to a free port."

  cmd_fetch

  local t0=$EPOCHREALTIME
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  : >"$KAFKA_LOGS/server.log"
  : >"$KAFKA_OUT"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
      "$PROPS_TEMPLATE" >"$KAFKA_PROPS"

  local -a jvm=(
    -Xms256m -Xmx512m
    -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$LOG4J_CONF"
    -Dkafka.logs.dir="$KAFKA_LOGS"
    -cp "$LIBS_DIR/*"
  )

  log "Kafka: formatting storage in ${KAFKA_DATA#"$ROOT"/} (cluster id $CLUSTER_ID)"
  # Short-lived tool: C1-only JIT + serial GC start it ~0.3s faster on 2 cores.
  if ! java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${jvm[@]}" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$KAFKA_PROPS" \
        --ignore-formatted >>"$KAFKA_OUT" 2>&1 9>&-; then
    tail -n 40 "$KAFKA_OUT" >&2 || true
    die "Kafka storage format failed (output above, full log in ${KAFKA_OUT#"$ROOT"/})"
  fi

  log "Kafka: starting broker $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$CONTROLLER_PORT)"
  # setsid + all std fds redirected: the broker outlives this script and does not keep
  # the caller's pipes open (a Node execSync() would otherwise hang).
  setsid java -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${jvm[@]}" kafka.Kafka "$KAFKA_PROPS" </dev/null >>"$KAFKA_OUT" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$KAFKA_PID"
  kafka_wait "$pid"
  log "Kafka: ready after $(since "$t0")s (pid $pid, logs in ${KAFKA_LOGS#"$ROOT"/})"
}

kafka_wait() {
  local pid="$1" deadline=$((SECONDS + KAFKA_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      kafka_fail "the broker process (pid $pid) exited during start-up"
    fi
    if grep -q 'Kafka Server started' "$KAFKA_LOGS/server.log" 2>/dev/null && port_open "$KAFKA_PORT"; then
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
    log "Redis: DRIFTWATCH_TEST_REDIS_URL=$DRIFTWATCH_TEST_REDIS_URL is set; using it, not starting a server"
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
  redis_up
  kafka_up
  log "up: done in $(since "$t0")s"
  cmd_env >&2
}

cmd_down() {
  take_lock
  kafka_down
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
    echo "redis: external ($DRIFTWATCH_TEST_REDIS_URL, from DRIFTWATCH_TEST_REDIS_URL)"
  elif pid="$(pid_alive "$REDIS_PID" redis-server)"; then
    echo "redis: running (pid $pid, started by test-env.sh) on 127.0.0.1:$REDIS_PORT"
  elif redis_ping "$REDIS_PORT"; then
    echo "redis: something answers PING on 127.0.0.1:$REDIS_PORT (not started by test-env.sh)"
  else
    echo "redis: not running (127.0.0.1:$REDIS_PORT)"; rc=1
  fi
  return "$rc"
}

cmd_env() {
  echo "DRIFTWATCH_TEST_KAFKA_BROKERS=${DRIFTWATCH_TEST_KAFKA_BROKERS:-$KAFKA_BROKERS_DEFAULT}"
  echo "DRIFTWATCH_TEST_REDIS_URL=${DRIFTWATCH_TEST_REDIS_URL:-$REDIS_URL_DEFAULT}"
}

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  fetch) take_lock; cmd_fetch ;;
  -h | --help | help) usage ;;
  *) usage; exit 64 ;;
esac
