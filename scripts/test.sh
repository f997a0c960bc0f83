#!/usr/bin/env bash
# The whole ctdns test suite, on a fresh Debian machine (run as root, or with sudo for
# apt-get). Installs the real DNS software the interop tests talk to, then runs the
# formatting and lint gates and every test. Loopback only; nothing needs the internet
# beyond the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in unbound:unbound dig:bind9-dnsutils kdig:knot-dnsutils dnsperf:dnsperf openssl:openssl \
  named:bind9 dnsdist:dnsdist kresd:knot-resolver systemd-analyze:systemd ss:iproute2 \
  promtool:prometheus; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian unbound, bind9, dnsdist and knot-resolver packages start system servers on port
# 53, and prometheus its server on 9090; the tests run their own instances on high loopback
# ports and need only promtool from the prometheus package.
if command -v systemctl >/dev/null 2>&1; then
  for unit in unbound named dnsdist kresd@1 kres-cache-gc prometheus; do
    systemctl stop "$unit" 2>/dev/null || true
  done
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
# --all-features: the optional app integrations (reqwest, hickory-resolver; off by default)
# are linted and tested too, with one feature set throughout so nothing builds twice.
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --all-features -- -D warnings
echo "== cargo test (library, binary, integration tests, examples)"
cargo test --all-features --lib --bins --tests --examples -- --test-threads=2
echo "== cargo test --benches (each benchmark runs once, as a check that it works)"
cargo test --all-features --benches
echo "== doc tests"
cargo test --all-features --doc
