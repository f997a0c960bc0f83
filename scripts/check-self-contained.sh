#!/usr/bin/env bash
# Fails loudly if code or scripts in the repository reach for files outside it: a path that
# climbs above the checkout (the material folder beside it, `CARGO_MANIFEST_DIR` joined with
# `..`, an absolute /work path).
set -euo pipefail
cd "$(dirname "$0")/.."
# Anything naming the shared folder or an absolute /work path, anywhere; `CARGO_MANIFEST_DIR`
# joined with `..` in the root crate, with `../..` in the fuzz crate (one level up from
# fuzz/ is still the repository), or with `../../..` in the verifier crate (crates/ctdns-verify:
# two levels up is the repository root, whose tests/data its unit tests read).
anywhere='\.\./shared|/work/|\$\{?CT_VECTORS_DIR'
root_up='CARGO_MANIFEST_DIR"\)\)?\.join\("\.\.|CARGO_MANIFEST_DIR"\)[^;]*/\.\./'
fuzz_up='CARGO_MANIFEST_DIR"\)\)?\.join\("\.\./\.\.|CARGO_MANIFEST_DIR"\)[^;]*/\.\./\.\./'
crate_up='CARGO_MANIFEST_DIR"\)\)?\.join\("\.\./\.\./\.\.|CARGO_MANIFEST_DIR"\)[^;]*/\.\./\.\./\.\./'
# include_str!/include_bytes! paths relative to a file under crates/ctdns-verify/src: more `../`
# than the file's depth below the repository root leaves it.
include_up='include_(str|bytes)!\((concat!\()?"(\.\./){6,}'
scan() { grep -rnE "$1" "${@:2}" --include='*.rs' --include='*.sh' --include='*.py' --include='*.toml' 2>/dev/null || true; }
hits=$( {
  scan "$anywhere" src tests benches fuzz/src fuzz/fuzz_targets fuzz/examples scripts bench examples .ci crates
  scan "$root_up" src tests benches scripts bench examples
  scan "$fuzz_up" fuzz/src fuzz/fuzz_targets fuzz/examples
  scan "$crate_up" crates
  scan "$include_up" crates
} | grep -v '^scripts/check-self-contained.sh:' || true)
if [ -n "$hits" ]; then
  echo "error: these lines read outside the repository (copy the data into tests/data/ with its provenance):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "== self-contained: no path in src, crates, tests, benches, fuzz, scripts, bench or examples leaves the repository"
