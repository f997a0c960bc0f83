#!/usr/bin/env bash
# Fuzz smoke test: build every cargo-fuzz target and run each for FUZZ_SECONDS (default 20)
# from its committed seed corpus, failing on the first crash, leak, timeout or OOM.
#
#   scripts/fuzz-smoke.sh                 # all targets, 20 s each
#   FUZZ_SECONDS=60 scripts/fuzz-smoke.sh ct_decision stub_query
#
# Works on the stable toolchain: cargo-fuzz passes nightly-only rustc flags
# (-Zsanitizer=address, -Cpasses=sancov-module, ...), which RUSTC_BOOTSTRAP=1 allows on
# stable. Set FUZZ_SANITIZER=none to build without AddressSanitizer (faster, still with
# debug assertions and overflow checks, see fuzz/Cargo.toml). See fuzz/README.md.
set -euo pipefail

cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-20}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
# libFuzzer is C++ (built by libfuzzer-sys's build script).
if ! command -v c++ >/dev/null 2>&1; then
    echo "fuzz-smoke: a C++ compiler (c++) is needed to build libFuzzer" >&2
    exit 1
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

# Builds every target (release profile of fuzz/Cargo.toml: debug assertions and overflow
# checks on).
cargo fuzz build -O --sanitizer "$sanitizer" --fuzz-dir fuzz

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    echo "fuzz-smoke: $t for ${secs}s" >&2
    # New inputs go to a scratch directory; the committed corpus is only read.
    if cargo fuzz run -O --sanitizer "$sanitizer" --fuzz-dir fuzz "$t" "$work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$work/$t.log" 2>&1; then
        grep -E '^stat::number_of_executed_units' "$work/$t.log" | sed "s/^/fuzz-smoke: $t /" >&2 || true
    else
        echo "fuzz-smoke: $t FAILED (artifacts in fuzz/artifacts/$t):" >&2
        tail -n 40 "$work/$t.log" >&2
        failed+=("$t")
    fi
done
# Every known crasher must stay fixed.
if compgen -G "fuzz/regressions/*/*" >/dev/null; then
    for dir in fuzz/regressions/*/; do
        t="$(basename "$dir")"
        if ! cargo fuzz run -O --sanitizer "$sanitizer" --fuzz-dir fuzz "$t" "$dir" -- -runs=0 \
            >"$work/$t.regressions.log" 2>&1; then
            echo "fuzz-smoke: $t regression input crashes again:" >&2
            tail -n 40 "$work/$t.regressions.log" >&2
            failed+=("$t (regressions)")
        fi
    done
fi
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran ${secs}s without a crash" >&2
