#!/usr/bin/env bash
# Benchmark ctdns against its peers on loopback (see bench/README.md).
#
#   bench/run.sh [--duration 10] [--reps 3] [--only ctdns-dot,stubby] [--skip cold,tcp] ...
#
# Needs only Debian packages (installed here if missing) and the release build of ctdns.
# Writes bench/results/latest.{md,json,png} and prints the markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have unbound || missing+=(unbound)
have dnsperf || missing+=(dnsperf)
have stubby || missing+=(stubby)
have taskset || missing+=(util-linux)
have openssl || missing+=(openssl)
[ -x /usr/bin/python3 ] || missing+=(python3)
if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  missing+=(python3-matplotlib)
fi
if [ "${PERF:-}" != "" ] && ! have perf; then missing+=(linux-perf); fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bench: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
if [ "${#missing[@]}" -gt 0 ] && [[ " ${missing[*]} " == *" python3 "* ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-matplotlib >&2
fi

# The ctdns binary: `ctdns pki` makes the test PKI, `ctdns serve` is the contender.
cargo build --release --bin ctdns >&2

# 1,000 concurrent TCP clients need more than the usual 1,024 descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
export PATH="/usr/sbin:$PATH"
exec /usr/bin/python3 bench/peers.py "$@"
