#!/usr/bin/env bash
# The whole ctdns test suite, on a fresh Debian machine (run as root, or with sudo for
# apt-get). Installs the real DNS software the interop tests talk to, then runs the
# formatting and lint gates and every test. Loopback only; nothing needs the internet
# beyond the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# cc (gcc) builds aws-lc-sys for the verifier crate's aws-lc-rs run below (aws-lc-sys 0.47
# builds with cc alone on x86_64 Linux; no cmake or clang needed).
for pair in unbound:unbound dig:bind9-dnsutils kdig:knot-dnsutils dnsperf:dnsperf openssl:openssl \
  named:bind9 dnsdist:dnsdist kresd:knot-resolver systemd-analyze:systemd ss:iproute2 \
  promtool:prometheus cc:gcc; do
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
# The optional app integrations of ctdns (reqwest, hickory-resolver; off by default) are
# linted and tested too, with one feature set throughout so nothing builds twice.
APPS="--features ctdns/reqwest,ctdns/hickory-resolver"
echo "== cargo clippy -D warnings (workspace; the verifier crate also with aws-lc-rs, ctdns with fuzzing)"
cargo clippy --workspace --all-targets $APPS -- -D warnings
cargo clippy -p ctdns-verify --all-targets --no-default-features --features aws-lc-rs -- -D warnings
cargo clippy -p ctdns --lib --features fuzzing -- -D warnings
# ctdns on rustls's default provider (aws-lc-rs) instead of ring; testkit (test PKI) stays on.
AWS="--no-default-features --features aws-lc-rs,testkit,reqwest,hickory-resolver"
cargo clippy -p ctdns --all-targets $AWS -- -D warnings
echo "== cargo test (workspace: libraries, binary, integration tests, examples)"
cargo test --workspace $APPS --lib --bins --tests --examples -- --test-threads=2
echo "== cargo test -p ctdns-verify with the aws-lc-rs provider (incl. the README's rustls snippet)"
cargo test -p ctdns-verify --no-default-features --features aws-lc-rs -- --test-threads=2
echo "== ctdns with aws-lc-rs: the app tests (reqwest, hickory; the README's reqwest snippet)"
cargo test -p ctdns $AWS --test app_reqwest --test app_hickory --test readme_snippets -- --test-threads=2
echo "== the README's dependency lines build as written, and pull no ring without testkit"
cargo build -p ctdns --no-default-features --features aws-lc-rs,reqwest --example reqwest_ct
cargo build -p ctdns-verify --no-default-features --features aws-lc-rs --example rustls_ct
for features in aws-lc-rs,reqwest aws-lc-rs,reqwest,hickory-resolver; do
  if cargo tree -q -e normal -p ctdns --no-default-features --features "$features" -i ring 2>/dev/null | grep -q .; then
    echo "ring in the normal dependencies of ctdns with $features:" >&2
    cargo tree -e normal -p ctdns --no-default-features --features "$features" -i ring >&2
    exit 1
  fi
done
echo "== cargo test --benches (each benchmark runs once, as a check that it works)"
cargo test --workspace $APPS --benches
echo "== doc tests, and the docs build without warnings"
cargo test --workspace $APPS --doc
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace $APPS
echo "== both crates package"
# Both crates: `--workspace` packages ctdns against the ctdns-verify package built here (it is
# not on a registry). --no-verify: the verifier's unit tests read tests/data/ of the repository.
cargo package --workspace --no-verify --allow-dirty --list >/dev/null
cargo package --workspace --no-verify --allow-dirty
