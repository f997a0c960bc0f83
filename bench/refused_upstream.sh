#!/usr/bin/env bash
# Cost of a refused upstream (issue 16): TCP connections reaching the upstream and ctdns CPU
# while dnsperf drives `ctdns serve` whose only upstream (a real unbound on loopback) is
# refused. See bench/refused_upstream.py for the setup.
#
#   bench/refused_upstream.sh                      # 500 QPS, 10 s, refused by issuer pin
#   bench/refused_upstream.sh --rule chain         # refused by the chain rule
#   bench/refused_upstream.sh --ctdns /path/ctdns  # measure another build (e.g. before a fix)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have unbound || missing+=(unbound)
have dnsperf || missing+=(dnsperf)
have openssl || missing+=(openssl)
[ -x /usr/bin/python3 ] || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "refused_upstream: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
if [[ " $* " != *" --ctdns "* ]]; then
  cargo build --release --bin ctdns >&2
fi
export PATH="/usr/sbin:$PATH"
exec /usr/bin/python3 bench/refused_upstream.py "$@"
