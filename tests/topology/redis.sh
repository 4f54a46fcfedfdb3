#!/usr/bin/env bash
# Start and stop real Redis topologies on private loopback ports for tests.
#
# Usage:
#   tests/topology/redis.sh start|stop|status|env [topology...]
#   tests/topology/redis.sh restart-node <port>
# topology: standalone | tls | cluster | sentinel | all   (default: all)
#
# Ports, B = ${SK_PORT_BASE:-16700} (cluster bus ports are port+10000):
#   standalone  B+0
#   tls         B+1 (TLS only, plain port disabled; certs in $SK_REDIS_DIR/tls)
#   cluster     B+10 .. B+15 (3 masters + 3 replicas)
#   sentinel    B+20 master, B+21 replica, B+22 .. B+24 sentinels, master name "skmaster"
#
# State lives in ${SK_REDIS_DIR:-<repo>/.tmp/redis}. After `start`, `. "$SK_REDIS_DIR/env.sh"`
# exports SK_REDIS_URL, SK_UNIX_URL, SK_TLS_URL, SK_TLS_CA, SK_CLUSTER_URL, SK_CLUSTER_PORTS,
# SK_SENTINEL_URL and SK_SENTINEL_MASTER_PORTS for every running topology.
#
# Knobs: SK_REDIS_WAIT (seconds a topology may take to become healthy, default 30);
# SK_REDIS_KEEP_ON_FAIL=1 leaves a topology that failed to start running for inspection.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE=${SK_PORT_BASE:-16700}
WAIT_SECS=${SK_REDIS_WAIT:-30}
ALL_TOPOLOGIES=(standalone tls cluster sentinel)
MASTER_NAME=skmaster

die() {
    echo "redis.sh: $*" >&2
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: tests/topology/redis.sh start|stop|status|env [standalone|tls|cluster|sentinel|all ...]
       tests/topology/redis.sh restart-node <port>
EOF
    exit 2
}

[[ $BASE =~ ^[0-9]+$ ]] || die "SK_PORT_BASE must be a number; got '$BASE'"
BASE=$((10#$BASE)) # a leading zero would otherwise mean octal in $(( ))
if ((BASE < 1024 || BASE >= 50000)); then
    die "SK_PORT_BASE must be an integer in [1024, 50000) so cluster bus ports (+10000) stay valid; got '$BASE'"
fi
# Never let a test topology land on (and later SIGTERM-by-pidfile) a developer's default Redis.
((6379 < BASE || 6379 > BASE + 24)) || die "SK_PORT_BASE=$BASE would make a port collide with 6379"
[[ $WAIT_SECS =~ ^[0-9]+$ ]] || die "SK_REDIS_WAIT must be a whole number of seconds"

STANDALONE_PORT=$BASE
TLS_PORT=$((BASE + 1))
CLUSTER_PORTS=()
for i in 10 11 12 13 14 15; do CLUSTER_PORTS+=($((BASE + i))); done
SENTINEL_MASTER_PORT=$((BASE + 20))
SENTINEL_REPLICA_PORT=$((BASE + 21))
SENTINEL_PORTS=($((BASE + 22)) $((BASE + 23)) $((BASE + 24)))

# Redis chdirs into --dir while parsing its arguments, before it opens the pidfile and
# logfile, so every path handed to it must be absolute.
DIR=${SK_REDIS_DIR:-$REPO_DIR/.tmp/redis}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
TLS_DIR=$DIR/tls

REDIS_SERVER=$(command -v redis-server) || die "redis-server not found in PATH"
REDIS_SENTINEL=$(command -v redis-sentinel) || die "redis-sentinel not found in PATH"
command -v redis-cli >/dev/null || die "redis-cli not found in PATH"

# Milliseconds since the epoch; EPOCHREALTIME's radix character follows the locale.
now_ms() {
    local t=${EPOCHREALTIME//[!0-9]/}
    echo $((t / 1000))
}

elapsed() { # start_ms -> "1.23s"
    local ms=$(($(now_ms) - $1))
    printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10))
}

ports_of() {
    case $1 in
        standalone) echo "$STANDALONE_PORT" ;;
        tls) echo "$TLS_PORT" ;;
        cluster) echo "${CLUSTER_PORTS[*]}" ;;
        sentinel) echo "$SENTINEL_MASTER_PORT $SENTINEL_REPLICA_PORT ${SENTINEL_PORTS[*]}" ;;
    esac
}

# redis-cli has no connect/read timeout of its own: a wedged node would hang the whole
# test run, hence `timeout`. Output has \r stripped because raw bulk replies such as
# CLUSTER INFO keep their CRLF line endings.
rcli() { # port redis-cli-args...
    local port=$1
    shift
    local tls=()
    if [[ $port == "$TLS_PORT" ]]; then tls=(--tls --cacert "$TLS_DIR/ca.crt"); fi
    timeout 5 redis-cli -h 127.0.0.1 -p "$port" "${tls[@]}" "$@" 2>/dev/null | tr -d '\r'
}

pings() {
    local out
    out=$(rcli "$1" PING) || return 1
    [[ $out == PONG ]]
}

read_pid() { # pidfile -> pid or nothing
    local pid=''
    if [[ -f $1 ]]; then read -r pid <"$1" 2>/dev/null || true; fi
    echo "$pid"
}

# kill -0 is not enough: where PID 1 does not reap orphans (some containers) a killed
# daemon lingers as a zombie. The name check keeps a stale pidfile whose pid has been
# reused by an unrelated process from making us signal that process.
pid_alive() {
    local pid=$1 stat comm
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    if [[ ! -d /proc/self ]]; then
        kill -0 "$pid" 2>/dev/null
        return
    fi
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == redis* ]]
}

node_up() { # topology port
    pid_alive "$(read_pid "$DIR/$1/$2.pid")" && pings "$2"
}

# A successful connect means something listens there that we did not start (ours were
# stopped just before), and starting on top of it would make the tests talk to a stranger.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# SIGTERM everything first and then wait once, so stopping six nodes costs at most one
# timeout, not six.
stop_pidfiles() { # pidfile...
    local f pid live=() deadline
    for f in "$@"; do
        pid=$(read_pid "$f")
        if pid_alive "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            live+=("$pid")
        fi
    done
    deadline=$(($(now_ms) + 5000))
    for pid in "${live[@]}"; do
        while pid_alive "$pid" && (($(now_ms) < deadline)); do sleep 0.05; done
    done
    for pid in "${live[@]}"; do
        if pid_alive "$pid"; then
            echo "redis.sh: pid $pid ignored SIGTERM for 5s, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    deadline=$(($(now_ms) + 2000))
    for pid in "${live[@]}"; do
        while pid_alive "$pid" && (($(now_ms) < deadline)); do sleep 0.05; done
    done
    rm -f "$@"
}

stop_topology() {
    local files=()
    shopt -s nullglob
    files=("$DIR/$1"/*.pid)
    shopt -u nullglob
    stop_pidfiles "${files[@]}"
}

show_logs() { # topology [port...]; no port = every log of the topology
    local topo=$1 f p files=()
    shift
    shopt -s nullglob
    if (($#)); then
        for p in "$@"; do files+=("$DIR/$topo/$p".*log); done
    else
        files=("$DIR/$topo"/*log)
    fi
    shopt -u nullglob
    for f in "${files[@]}"; do
        [[ -s $f ]] || continue
        echo "----- tail of $f" >&2
        tail -n 25 "$f" >&2
    done
}

# Only `start` tears a topology down on failure: leaking half-started daemons into CI is
# worse than losing them for inspection (SK_REDIS_KEEP_ON_FAIL=1 keeps them).
STOP_ON_FAIL=0
fail() { # topology "port..."|"" message
    local topo=$1 ports=$2
    shift 2
    echo "redis.sh: $topo: $*" >&2
    # shellcheck disable=SC2086 # ports is a word list on purpose
    show_logs "$topo" $ports
    if ((STOP_ON_FAIL)) && [[ ${SK_REDIS_KEEP_ON_FAIL:-0} != 1 ]]; then
        stop_topology "$topo"
        write_env_file
    fi
    exit 1
}

wait_for() { # seconds command... ; polls until the command succeeds
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    until "$@"; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.1
    done
}

ensure_free() { # topology port
    if port_busy "$2"; then
        fail "$1" "" "port $2 is already in use by a process this script did not start (no live pidfile in $DIR/$1)"
    fi
    if [[ $1 == cluster ]] && port_busy $(($2 + 10000)); then
        fail "$1" "" "cluster bus port $(($2 + 10000)) is already in use"
    fi
}

# Flags every node gets; fills the global ARGS.
node_args() { # topology port
    local d=$DIR/$1
    mkdir -p "$d/data-$2"
    ARGS=(--bind 127.0.0.1 --protected-mode no --daemonize yes
        --pidfile "$d/$2.pid" --logfile "$d/$2.log" --dir "$d/data-$2")
}

# The full argv is recorded so restart-node can bring a node back exactly as it was,
# one argument per line because `--save ''` needs its empty argument preserved.
record_and_spawn() { # topology port argv...
    local topo=$1 port=$2
    shift 2
    printf '%s\n' "$@" >"$DIR/$topo/$port.args"
    spawn_node "$topo" "$port"
}

declare -A LOG_OFFSET=()
spawn_node() { # topology port
    local topo=$1 port=$2 d=$DIR/$1 argv=()
    mapfile -t argv <"$d/$port.args"
    rm -f "$d/$port.pid"
    LOG_OFFSET[$port]=$(stat -c %s "$d/$port.log" 2>/dev/null || echo 0)
    # 9>&-: the daemon must not inherit the lock fd, or it would hold the lock for its
    # whole lifetime and block every later invocation.
    if ! "${argv[@]}" >"$d/$port.launch.log" 2>&1 </dev/null 9>&-; then
        fail "$topo" "$port" "could not launch node $port: ${argv[*]}"
    fi
}

# Pid of the daemon from the "pid=N, just started" line it logs. A node that dies on a
# bad setting (e.g. an unreadable TLS key) exits before writing its pidfile; this lets
# the wait notice at once instead of running into its timeout. Only the part of the log
# written since this launch counts, as restart-node appends to the old log.
log_pid() { # topology port
    local log=$DIR/$1/$2.log
    [[ -f $log ]] || return 0
    tail -c +$((${LOG_OFFSET[$2]:-0} + 1)) "$log" |
        sed -n 's/.*pid=\([0-9][0-9]*\), just started.*/\1/p' | tail -n 1
}

wait_node_up() { # topology port
    local topo=$1 port=$2 deadline pid
    deadline=$(($(now_ms) + 10000))
    until pings "$port"; do
        pid=$(read_pid "$DIR/$topo/$port.pid")
        [[ -n $pid ]] || pid=$(log_pid "$topo" "$port")
        if [[ -n $pid ]] && ! pid_alive "$pid"; then
            fail "$topo" "$port" "node $port (pid $pid) died during startup"
        fi
        if (($(now_ms) >= deadline)); then
            fail "$topo" "$port" "node $port did not answer PING within 10s"
        fi
        sleep 0.05
    done
    # Only worth keeping when the launcher complained about something.
    [[ -s $DIR/$topo/$port.launch.log ]] || rm -f "$DIR/$topo/$port.launch.log"
}

info_field() { # field; reads "field:value" lines on stdin
    awk -F: -v k="$1" '$1 == k { print $2; exit }'
}

# --- certificates ------------------------------------------------------------------

# Explicit extensions instead of the distribution's openssl.cnf defaults: rustls/webpki
# rejects a CA without CA:TRUE + keyCertSign and a server cert without a matching SAN.
make_certs() {
    local d=$TLS_DIR cnf
    mkdir -p "$d"
    if [[ -s $d/ca.crt && -s $d/ca.key && -s $d/redis.crt && -s $d/redis.key ]]; then
        return 0
    fi
    command -v openssl >/dev/null || fail tls "" "openssl not found in PATH"
    cnf=$d/openssl.cnf
    cat >"$cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = sk-redis-test-ca
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    {
        if [[ ! -s $d/ca.crt || ! -s $d/ca.key ]]; then
            openssl req -x509 -new -config "$cnf" -extensions ca_ext -newkey rsa:2048 -nodes \
                -keyout "$d/ca.key" -out "$d/ca.crt" -days 3650 -sha256 &&
                rm -f "$d/redis.crt" # a new CA invalidates the old server cert
        fi &&
            openssl req -new -config "$cnf" -newkey rsa:2048 -nodes -subj /CN=localhost \
                -keyout "$d/redis.key" -out "$d/redis.csr" &&
            openssl x509 -req -in "$d/redis.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
                -set_serial "0x$(openssl rand -hex 8)" -days 3650 -sha256 \
                -extfile "$cnf" -extensions server_ext -out "$d/redis.crt"
    } >"$d/openssl.log" 2>&1 || fail tls "" "certificate generation failed: $(cat "$d/openssl.log")"
    rm -f "$d/redis.csr"
}

# --- topologies ----------------------------------------------------------------------

start_standalone() {
    local p=$STANDALONE_PORT
    rm -rf "$DIR/standalone"
    mkdir -p "$DIR/standalone"
    ensure_free standalone "$p"
    node_args standalone "$p"
    # Also on a unix socket, so unix:// URLs are tested against a real server.
    record_and_spawn standalone "$p" "$REDIS_SERVER" --port "$p" "${ARGS[@]}" --save '' --appendonly no \
        --unixsocket "$DIR/standalone/redis.sock" --unixsocketperm 700
    wait_node_up standalone "$p"
}

start_tls() {
    local p=$TLS_PORT
    # Keep the certificates: tests may have pinned ca.crt already.
    rm -rf "$TLS_DIR/data-$p" "$TLS_DIR/$p".*
    make_certs
    ensure_free tls "$p"
    node_args tls "$p"
    record_and_spawn tls "$p" "$REDIS_SERVER" --port 0 --tls-port "$p" "${ARGS[@]}" \
        --tls-ca-cert-file "$TLS_DIR/ca.crt" --tls-cert-file "$TLS_DIR/redis.crt" \
        --tls-key-file "$TLS_DIR/redis.key" --tls-auth-clients no --save '' --appendonly no
    wait_node_up tls "$p"
}

# Replicas sync diskless by default in 7.0, and the master then waits
# repl-diskless-sync-delay (5 s) for more replicas before streaming; zero it so a
# replica links up at once at start, after a failover and after restart-node.
REPL_ARGS=(--repl-diskless-sync-delay 0)

CLUSTER_WHY=''
cluster_healthy() {
    local p info nodes masters replicas
    for p in "${CLUSTER_PORTS[@]}"; do
        info=$(rcli "$p" CLUSTER INFO) || { CLUSTER_WHY="$p: no answer to CLUSTER INFO"; return 1; }
        if [[ $(info_field cluster_state <<<"$info") != ok ]]; then
            CLUSTER_WHY="$p: cluster_state:$(info_field cluster_state <<<"$info")"
            return 1
        fi
        nodes=$(rcli "$p" CLUSTER NODES) || { CLUSTER_WHY="$p: no answer to CLUSTER NODES"; return 1; }
        # Fields: id addr flags master ping pong epoch link slot...; a master only
        # counts when it serves slots, any node only when healthy and linked.
        masters=$(awk '$3 ~ /master/ && $3 !~ /fail|handshake|noaddr/ && $8 == "connected" && NF >= 9' <<<"$nodes" | wc -l)
        replicas=$(awk '$3 ~ /slave/ && $3 !~ /fail|handshake|noaddr/ && $8 == "connected" && $4 != "-"' <<<"$nodes" | wc -l)
        if ((masters != 3 || replicas != 3)); then
            CLUSTER_WHY="$p sees $masters healthy masters with slots and $replicas replicas"
            return 1
        fi
        if grep -q 'myself,slave' <<<"$nodes"; then
            info=$(rcli "$p" INFO replication) || { CLUSTER_WHY="$p: no answer to INFO"; return 1; }
            if [[ $(info_field master_link_status <<<"$info") != up ]]; then
                CLUSTER_WHY="replica $p: master_link_status is not up"
                return 1
            fi
        fi
    done
}

start_cluster() {
    local d=$DIR/cluster p hosts=()
    # Old nodes-<port>.conf files would make the nodes remember a previous cluster and
    # refuse `--cluster create`, so every start begins from an empty directory.
    rm -rf "$d"
    mkdir -p "$d"
    for p in "${CLUSTER_PORTS[@]}"; do
        ensure_free cluster "$p"
        node_args cluster "$p"
        record_and_spawn cluster "$p" "$REDIS_SERVER" --port "$p" "${ARGS[@]}" \
            --cluster-enabled yes --cluster-config-file "$d/nodes-$p.conf" \
            --cluster-node-timeout 1000 --cluster-replica-validity-factor 0 \
            --cluster-require-full-coverage no --cluster-allow-reads-when-down no \
            --save '' --appendonly no "${REPL_ARGS[@]}"
        hosts+=("127.0.0.1:$p")
    done
    for p in "${CLUSTER_PORTS[@]}"; do wait_node_up cluster "$p"; done
    if ! timeout 60 redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes \
        >"$d/create.log" 2>&1 </dev/null; then
        fail cluster "" "redis-cli --cluster create failed"
    fi
    wait_for "$WAIT_SECS" cluster_healthy ||
        fail cluster "" "not healthy after ${WAIT_SECS}s: $CLUSTER_WHY"
}

replica_linked() { # port
    local info
    info=$(rcli "$1" INFO replication) || return 1
    [[ $(info_field master_link_status <<<"$info") == up ]]
}

master_field() { # field; reads SENTINEL MASTER's alternating key/value lines on stdin
    awk -v k="$1" 'prev == k { print; exit } { prev = $0 }'
}

SENTINEL_WHY=''
sentinel_healthy() {
    local s addr info
    replica_linked "$SENTINEL_REPLICA_PORT" || { SENTINEL_WHY="replica $SENTINEL_REPLICA_PORT not linked"; return 1; }
    for s in "${SENTINEL_PORTS[@]}"; do
        addr=$(rcli "$s" SENTINEL get-master-addr-by-name "$MASTER_NAME") || addr=''
        if [[ $addr != "127.0.0.1"$'\n'"$SENTINEL_MASTER_PORT" ]]; then
            SENTINEL_WHY="sentinel $s reports master '${addr//$'\n'/:}'"
            return 1
        fi
        info=$(rcli "$s" SENTINEL master "$MASTER_NAME") || info=''
        if [[ $(master_field flags <<<"$info") != master ||
            $(master_field num-slaves <<<"$info") != 1 ||
            $(master_field num-other-sentinels <<<"$info") != 2 ]]; then
            SENTINEL_WHY="sentinel $s: flags=$(master_field flags <<<"$info")"
            SENTINEL_WHY+=" num-slaves=$(master_field num-slaves <<<"$info")"
            SENTINEL_WHY+=" num-other-sentinels=$(master_field num-other-sentinels <<<"$info")"
            return 1
        fi
    done
}

conf_quote() { # value -> double-quoted for redis.conf
    local v=${1//\\/\\\\}
    printf '"%s"' "${v//\"/\\\"}"
}

start_sentinel() {
    local d=$DIR/sentinel m=$SENTINEL_MASTER_PORT r=$SENTINEL_REPLICA_PORT s conf
    rm -rf "$d"
    mkdir -p "$d"
    for s in "$m" "$r" "${SENTINEL_PORTS[@]}"; do ensure_free sentinel "$s"; done

    node_args sentinel "$m"
    record_and_spawn sentinel "$m" "$REDIS_SERVER" --port "$m" "${ARGS[@]}" \
        --save '' --appendonly no "${REPL_ARGS[@]}"
    node_args sentinel "$r"
    record_and_spawn sentinel "$r" "$REDIS_SERVER" --port "$r" "${ARGS[@]}" \
        --save '' --appendonly no "${REPL_ARGS[@]}" --replicaof 127.0.0.1 "$m"
    wait_node_up sentinel "$m"
    wait_node_up sentinel "$r"
    # Sentinels learn replicas from the master's INFO, which they re-poll only every 10s;
    # starting them after the replica is attached lets the first poll already see it.
    wait_for "$WAIT_SECS" replica_linked "$r" ||
        fail sentinel "$m $r" "replica $r did not link to master $m within ${WAIT_SECS}s"

    for s in "${SENTINEL_PORTS[@]}"; do
        # Sentinel rewrites its config (myid, discovered peers), so it is written afresh.
        conf=$d/sentinel-$s.conf
        mkdir -p "$d/data-$s"
        cat >"$conf" <<EOF
port $s
bind 127.0.0.1
protected-mode no
daemonize yes
pidfile $(conf_quote "$d/$s.pid")
logfile $(conf_quote "$d/$s.log")
dir $(conf_quote "$d/data-$s")
sentinel monitor $MASTER_NAME 127.0.0.1 $m 2
sentinel down-after-milliseconds $MASTER_NAME 1000
sentinel failover-timeout $MASTER_NAME 5000
sentinel parallel-syncs $MASTER_NAME 1
EOF
        record_and_spawn sentinel "$s" "$REDIS_SENTINEL" "$conf"
    done
    for s in "${SENTINEL_PORTS[@]}"; do wait_node_up sentinel "$s"; done
    wait_for "$WAIT_SECS" sentinel_healthy ||
        fail sentinel "" "not healthy after ${WAIT_SECS}s: $SENTINEL_WHY"
}

# --- env -----------------------------------------------------------------------------

emit() { # name value -> export line safe to source
    local v=${2//\\/\\\\}
    v=${v//\"/\\\"}
    v=${v//\$/\\\$}
    v=${v//\`/\\\`}
    printf 'export %s="%s"\n' "$1" "$v"
}

print_env() { # topology...
    local t
    emit SK_REDIS_DIR "$DIR"
    for t in "$@"; do
        case $t in
            standalone)
                emit SK_REDIS_URL "redis://127.0.0.1:$STANDALONE_PORT"
                emit SK_UNIX_URL "unix://$DIR/standalone/redis.sock"
                ;;
            tls)
                emit SK_TLS_URL "rediss://127.0.0.1:$TLS_PORT"
                emit SK_TLS_CA "$TLS_DIR/ca.crt"
                ;;
            cluster)
                emit SK_CLUSTER_URL "redis+cluster://127.0.0.1:${CLUSTER_PORTS[0]},127.0.0.1:${CLUSTER_PORTS[1]},127.0.0.1:${CLUSTER_PORTS[2]}"
                emit SK_CLUSTER_PORTS "${CLUSTER_PORTS[*]}"
                ;;
            sentinel)
                emit SK_SENTINEL_URL "redis+sentinel://127.0.0.1:${SENTINEL_PORTS[0]},127.0.0.1:${SENTINEL_PORTS[1]},127.0.0.1:${SENTINEL_PORTS[2]}/$MASTER_NAME"
                emit SK_SENTINEL_MASTER_PORTS "$SENTINEL_MASTER_PORT $SENTINEL_REPLICA_PORT"
                ;;
        esac
    done
}

# A topology counts as running while any of its pids lives, so a test that killed one
# node for a failover still finds the URLs of the survivors.
running_topologies() {
    local t f
    for t in "${ALL_TOPOLOGIES[@]}"; do
        for f in "$DIR/$t"/*.pid; do
            if [[ -f $f ]] && pid_alive "$(read_pid "$f")"; then
                echo "$t"
                break
            fi
        done
    done
}

write_env_file() {
    local running=()
    mapfile -t running < <(running_topologies)
    print_env "${running[@]}" >"$DIR/env.sh.tmp"
    mv -f "$DIR/env.sh.tmp" "$DIR/env.sh"
}

# --- commands ------------------------------------------------------------------------

parse_topologies() { # args... -> global TOPOLOGIES in canonical order, deduplicated
    local -A want=()
    local a t
    (($#)) || set -- all
    for a in "$@"; do
        case $a in
            all) for t in "${ALL_TOPOLOGIES[@]}"; do want[$t]=1; done ;;
            standalone | tls | cluster | sentinel) want[$a]=1 ;;
            *)
                echo "redis.sh: unknown topology '$a'" >&2
                usage
                ;;
        esac
    done
    TOPOLOGIES=()
    for t in "${ALL_TOPOLOGIES[@]}"; do
        if [[ -n ${want[$t]:-} ]]; then TOPOLOGIES+=("$t"); fi
    done
}

# start/stop/restart-node rewrite shared state (pidfiles, env.sh, cluster dir), so two
# test harnesses calling in at once are serialised rather than interleaved.
take_lock() {
    command -v flock >/dev/null || return 0
    exec 9>"$DIR/.lock"
    flock -w 300 9 || die "timed out waiting for another redis.sh on $DIR/.lock"
}

cmd_start() {
    local t t0 t_all
    t_all=$(now_ms)
    STOP_ON_FAIL=1
    for t in "${TOPOLOGIES[@]}"; do
        t0=$(now_ms)
        # Always from scratch: tests must begin from a clean, healthy topology even if an
        # earlier run left it running, half-failed-over or dead.
        stop_topology "$t"
        "start_$t"
        write_env_file
        echo "started $t on ports $(ports_of "$t") in $(elapsed "$t0")"
    done
    echo "all requested topologies up in $(elapsed "$t_all"); env: . $DIR/env.sh"
}

cmd_stop() {
    local t t0
    t0=$(now_ms)
    for t in "${TOPOLOGIES[@]}"; do stop_topology "$t"; done
    write_env_file
    echo "stopped ${TOPOLOGIES[*]} in $(elapsed "$t0")"
}

cmd_status() {
    local t p ports
    local -a up down
    for t in "${TOPOLOGIES[@]}"; do
        up=() down=()
        read -ra ports <<<"$(ports_of "$t")"
        for p in "${ports[@]}"; do
            if node_up "$t" "$p"; then up+=("$p"); else down+=("$p"); fi
        done
        printf '%-10s up: %-40s down: %s\n' "$t" "${up[*]:-none}" "${down[*]:-none}"
    done
}

cmd_restart_node() {
    local port=$1 t topo=''
    [[ $port =~ ^[0-9]+$ ]] || usage
    for t in "${ALL_TOPOLOGIES[@]}"; do
        if [[ -f $DIR/$t/$port.args ]]; then topo=$t; fi
    done
    [[ -n $topo ]] || die "no node was started on port $port (no $DIR/*/$port.args); start its topology first"
    local t0
    t0=$(now_ms)
    # Keep its data dir and nodes-<port>.conf: a cluster node must come back with its
    # identity to rejoin as the replica of whoever took over its slots.
    stop_pidfiles "$DIR/$topo/$port.pid"
    ensure_free "$topo" "$port"
    spawn_node "$topo" "$port"
    wait_node_up "$topo" "$port"
    write_env_file
    echo "restarted $topo node $port in $(elapsed "$t0")"
}

main() {
    local cmd=${1:-}
    (($#)) && shift
    case $cmd in
        start)
            parse_topologies "$@"
            take_lock
            cmd_start
            ;;
        stop)
            parse_topologies "$@"
            take_lock
            cmd_stop
            ;;
        status)
            parse_topologies "$@"
            cmd_status
            ;;
        env)
            parse_topologies "$@"
            print_env "${TOPOLOGIES[@]}"
            ;;
        restart-node)
            (($# == 1)) || usage
            take_lock
            cmd_restart_node "$1"
            ;;
        *) usage ;;
    esac
}

main "$@"
