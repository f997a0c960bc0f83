#!/usr/bin/env bash
# First-query latency after an idle pause (issue 14 item 5): ctdns vs unbound as forwarder vs
# stubby, all forwarding over DoT to one real unbound on loopback that closes idle
# connections after 10 s. See bench/idle.py for the setup.
#
#   bench/idle.sh                  # 30 s idle, 3 repetitions (about 2 minutes)
#   DURATION=5 bench/idle.sh       # shorter idle while developing
#   bench/idle.sh --only ctdns --reps 5
#
# Writes bench/results/idle.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have unbound || missing+=(unbound)
have stubby || missing+=(stubby)
have openssl || missing+=(openssl)
[ -x /usr/bin/python3 ] || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "idle: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
if [[ " $* " != *" --ctdns "* ]]; then
  cargo build --release --bin ctdns >&2
fi
export PATH="/usr/sbin:$PATH"
exec /usr/bin/python3 bench/idle.py "$@"
