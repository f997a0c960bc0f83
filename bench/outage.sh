#!/usr/bin/env bash
# Upstream outage with serve-stale (issue 14): answered / SERVFAIL / lost / stale counts while
# the only DoT upstream (a real unbound on loopback) is killed for 30 s and dnsperf replays
# names seen before, for ctdns (serve-stale on), unbound as forwarder (serve-expired on) and
# stubby. See bench/outage.py for the setup.
#
#   bench/outage.sh                         # 300 QPS, 500 names, TTL 5, 10 s / 30 s / 40 s
#   bench/outage.sh --only ctdns --qps 1000
#
# Writes bench/results/outage.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have unbound || missing+=(unbound)
have dnsperf || missing+=(dnsperf)
have stubby || missing+=(stubby)
have openssl || missing+=(openssl)
[ -x /usr/bin/python3 ] || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "outage: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
if [[ " $* " != *" --ctdns "* ]]; then
  cargo build --release --bin ctdns >&2
fi
export PATH="/usr/sbin:$PATH"
exec /usr/bin/python3 bench/outage.py "$@"
