#!/usr/bin/env bash
# Soak test: ctdns in front of a REAL unbound DNS-over-TLS upstream, all on loopback.
#
#   bench/soak.sh                                  # 30 minutes, unbound restarted every 5 min
#   DURATION=180 RESTART_EVERY=60 bench/soak.sh    # the short run in bench/results/soak-short.md
#
# Steps: build release; write a test PKI (examples/soak_pki: honest chain for 127.0.0.1 with
# two embedded SCTs, its CT log list, pins.txt); start unbound serving DoT with that chain;
# start `ctdns serve --config` (or examples/soak_serve where the branch has no `serve`) with
# the PKI's root, log list and an issuer pin on the honest intermediate, cache OFF so every
# query crosses the verified DoT connection; measure peak QPS with dnsperf; then drive dnsperf
# at LOAD_PCT % of it for DURATION seconds while unbound is killed and restarted every
# RESTART_EVERY seconds. Reports dnsperf's sent / completed / lost / NOERROR / SERVFAIL, and
# ctdns's VmRSS and open file descriptors at the start and the end of the soak.
#
# Environment: DURATION (s, default 1800), RESTART_EVERY (s, default DURATION/6),
# LOAD_PCT (default 70), PEAK_SECONDS (default 15), CLIENTS (dnsperf -c, default 16),
# OUTSTANDING (dnsperf -q, default 256), OUT (also write the markdown report there),
# KEEP=1 (keep the work directory). Needs unbound, dnsperf, dig, python3.
set -euo pipefail

DURATION=${DURATION:-1800}
RESTART_EVERY=${RESTART_EVERY:-$((DURATION / 6))}
LOAD_PCT=${LOAD_PCT:-70}
PEAK_SECONDS=${PEAK_SECONDS:-15}
CLIENTS=${CLIENTS:-16}
OUTSTANDING=${OUTSTANDING:-256}
OUT=${OUT:-}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/ctdns-soak.XXXXXX)
UNBOUND_PID=""
CTDNS_PID=""
PERF_PID=""

for tool in unbound dnsperf dig python3; do
    command -v "$tool" >/dev/null || { echo "soak: $tool is not installed" >&2; exit 2; }
done

cleanup() {
    for pid in $PERF_PID $CTDNS_PID $UNBOUND_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "soak: work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
log() { echo "soak: $*" >&2; }

# --- build -----------------------------------------------------------------------------
log "building release"
(cd "$ROOT" && cargo build --release --quiet --bin ctdns --example soak_pki --example soak_serve)
BIN="$ROOT/target/release/ctdns"
if "$BIN" serve --help >/dev/null 2>&1; then
    SERVE=("$BIN" serve --config)
else
    SERVE=("$ROOT/target/release/examples/soak_serve" --config)
fi

# --- PKI -------------------------------------------------------------------------------
"$ROOT/target/release/examples/soak_pki" "$WORK/pki" 127.0.0.1 >/dev/null
PIN=$(awk '$1 == "honest-intermediate" { print $2 }' "$WORK/pki/pins.txt")
[ -n "$PIN" ] || { log "no honest-intermediate pin in pins.txt"; exit 1; }

# --- unbound (DoT upstream) ------------------------------------------------------------
DOT_PORT=$(free_port)
cat >"$WORK/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@$DOT_PORT
  tls-port: $DOT_PORT
  tls-service-key: "$WORK/pki/key.pem"
  tls-service-pem: "$WORK/pki/chain.pem"
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$WORK"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  module-config: "iterator"
  do-not-query-localhost: yes
  access-control: 127.0.0.0/8 allow
  num-threads: 1
  incoming-num-tcp: 1024
  local-zone: "bench." redirect
  local-data: "bench. 300 IN A 192.0.2.7"
remote-control:
  control-enable: no
EOF

wait_tcp() { # port, seconds
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

start_unbound() {
    unbound -d -c "$WORK/unbound.conf" >>"$WORK/unbound.log" 2>&1 &
    UNBOUND_PID=$!
    wait_tcp "$DOT_PORT" 10 || { log "unbound did not start"; cat "$WORK/unbound.log" >&2; exit 1; }
}

stop_unbound() {
    kill "$UNBOUND_PID" 2>/dev/null || true
    wait "$UNBOUND_PID" 2>/dev/null || true
}

start_unbound

# --- ctdns -----------------------------------------------------------------------------
STUB_PORT=$(free_port)
cat >"$WORK/ctdns.toml" <<EOF
listen = ["127.0.0.1:$STUB_PORT"]
query_timeout_ms = 3000

[cache]
enabled = false

[ct]
log_list = "$WORK/pki/log_list.json"

[tls]
roots = "$WORK/pki/ca.pem"

[log]
level = "error"

[[upstream]]
protocol = "dot"
ip = "127.0.0.1"
port = $DOT_PORT
pins = ["$PIN"]
EOF
"${SERVE[@]}" "$WORK/ctdns.toml" >"$WORK/ctdns.log" 2>&1 &
CTDNS_PID=$!

ready=0
for _ in $(seq 1 100); do
    if dig @127.0.0.1 -p "$STUB_PORT" +tries=1 +time=1 +short ready.bench A 2>/dev/null | grep -q 192.0.2.7; then
        ready=1
        break
    fi
    sleep 0.1
done
[ $ready = 1 ] || { log "ctdns does not answer through unbound"; cat "$WORK/ctdns.log" >&2; exit 1; }

for i in $(seq 1 10000); do echo "q$i.bench A"; done >"$WORK/queries.txt"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$CTDNS_PID/status"; }
fds() { ls "/proc/$CTDNS_PID/fd" | wc -l; }
field() { # label, file: the first number after "label"
    sed -n "s/^ *$1 *\([0-9.]*\).*/\1/p" "$2" | head -n1 || true
}
rcode() { # code, file
    { grep -o "$1 [0-9]*" "$2" || true; } | head -n1 | awk '{ print $2 }'
}
# Datagrams the kernel dropped because a socket's receive buffer was full: on the stub's
# UDP socket (/proc/net/udp "drops" column), and host-wide (RcvbufErrors).
stub_udp_drops() {
    local hex
    hex=$(printf '%04X' "$STUB_PORT")
    awk -v p=":$hex" '$2 ~ p"$" { print $NF }' /proc/net/udp | head -n1
}
host_rcvbuf_errors() { awk '/^Udp: [0-9]/ { print $6 }' /proc/net/snmp; }

# --- peak ------------------------------------------------------------------------------
log "measuring peak QPS for ${PEAK_SECONDS}s"
dnsperf -s 127.0.0.1 -p "$STUB_PORT" -d "$WORK/queries.txt" -l "$PEAK_SECONDS" \
    -c "$CLIENTS" -q "$OUTSTANDING" -t 5 >"$WORK/peak.txt" 2>&1
PEAK=$(field "Queries per second:" "$WORK/peak.txt")
PEAK=${PEAK%.*}
[ -n "$PEAK" ] && [ "$PEAK" -gt 0 ] || { log "no peak QPS"; cat "$WORK/peak.txt" >&2; exit 1; }
RATE=$((PEAK * LOAD_PCT / 100))

# --- soak ------------------------------------------------------------------------------
RSS_START=$(rss_kb)
FDS_START=$(fds)
DROPS_START=$(stub_udp_drops)
HOST_DROPS_START=$(host_rcvbuf_errors)
log "soaking at $RATE QPS ($LOAD_PCT% of $PEAK) for ${DURATION}s, restarting unbound every ${RESTART_EVERY}s"
dnsperf -s 127.0.0.1 -p "$STUB_PORT" -d "$WORK/queries.txt" -l "$DURATION" -Q "$RATE" \
    -c "$CLIENTS" -q "$OUTSTANDING" -t 5 >"$WORK/soak.txt" 2>&1 &
PERF_PID=$!
START=$SECONDS
RESTARTS=0
RSS_MAX=$RSS_START
next_restart=$((START + RESTART_EVERY))
while kill -0 "$PERF_PID" 2>/dev/null; do
    sleep 1
    r=$(rss_kb || echo 0)
    [ "$r" -gt "$RSS_MAX" ] && RSS_MAX=$r
    if [ $SECONDS -ge $next_restart ] && [ $((SECONDS - START)) -lt "$DURATION" ]; then
        stop_unbound
        start_unbound
        RESTARTS=$((RESTARTS + 1))
        log "unbound restarted ($RESTARTS) at +$((SECONDS - START))s"
        next_restart=$((next_restart + RESTART_EVERY))
    fi
done
wait "$PERF_PID" || true
PERF_PID=""
RSS_END=$(rss_kb)
FDS_END=$(fds)
STUB_DROPS=$(( $(stub_udp_drops) - DROPS_START ))
HOST_DROPS=$(( $(host_rcvbuf_errors) - HOST_DROPS_START ))
STILL=$(dig @127.0.0.1 -p "$STUB_PORT" +tries=1 +time=2 +short after.bench A 2>/dev/null | head -n1)

SENT=$(field "Queries sent:" "$WORK/soak.txt")
DONE=$(field "Queries completed:" "$WORK/soak.txt")
LOST=$(field "Queries lost:" "$WORK/soak.txt")
NOERROR=$(rcode NOERROR "$WORK/soak.txt")
SERVFAIL=$(rcode SERVFAIL "$WORK/soak.txt")
QPS=$(field "Queries per second:" "$WORK/soak.txt")
GROWTH=$(python3 -c "print(f'{($RSS_END - $RSS_START) * 100 / $RSS_START:+.1f}')")

report() {
    cat <<EOF
# ctdns soak ($(date -u +%Y-%m-%dT%H:%MZ))

ctdns (\`${SERVE[*]##*/}\`, cache off) → DoT with the CT verifier (test PKI, issuer pin) →
unbound $(unbound -V 2>/dev/null | head -n1 | awk '{print $2}') on loopback; dnsperf $CLIENTS clients, $OUTSTANDING outstanding.
Machine: $(nproc) cores, shared with unbound and dnsperf.

| | |
|---|---|
| duration | ${DURATION} s |
| unbound restarts | $RESTARTS (every ${RESTART_EVERY} s) |
| peak QPS (${PEAK_SECONDS} s, unlimited) | $PEAK |
| target rate (${LOAD_PCT} %) | $RATE QPS |
| achieved rate | ${QPS:-?} QPS |
| queries sent | ${SENT:-?} |
| queries answered | ${DONE:-?} |
| NOERROR | ${NOERROR:-0} |
| SERVFAIL | ${SERVFAIL:-0} |
| lost (no answer within 5 s) | ${LOST:-?} |
| UDP datagrams dropped by the kernel: stub socket / whole host (receive buffer full) | $STUB_DROPS / $HOST_DROPS |
| ctdns VmRSS start → end | ${RSS_START} kB → ${RSS_END} kB (${GROWTH} %), max ${RSS_MAX} kB |
| ctdns open fds start → end | $FDS_START → $FDS_END |
| answers after the soak | ${STILL:-none} |

dnsperf summary:

\`\`\`
$(sed -n '/Statistics:/,$p' "$WORK/soak.txt")
\`\`\`
EOF
}
report
if [ -n "$OUT" ]; then report >"$OUT"; fi
