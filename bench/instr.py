#!/usr/bin/python3
"""Instructions per query of `ctdns serve` under callgrind: a load-independent figure of
the stub's per-query CPU cost (wall-clock QPS on a shared 2-CPU machine is noisy).

    bench/instr.py [--queries 5000] [--qps 300] [--protocol dot|doh] [--cache]
                   [--top 25] [--out FILE]

Same setup as bench/peers.py (test PKI from `ctdns pki`, a real unbound upstream serving
DoT/DoH, ctdns verifying it with CT and the root pin). ctdns runs under
`valgrind --tool=callgrind`; after a priming pass (connection open, certificate and CT
verified) the counters are zeroed, dnsperf sends `--queries` unique names (cache misses) at
a fixed rate over UDP, and the counters are dumped. Prints instructions (Ir) per answered
query and the top functions by inclusive and self cost; `--out` keeps the annotated dump.

Needs valgrind (`apt-get install valgrind`) and a release build (`cargo build --release`).
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402


class Ctx:
    pass


def dnsperf(port, qfile, qps, timeout=10):
    out = subprocess.run(
        ["dnsperf", "-m", "udp", "-s", peers.LOOPBACK, "-p", str(port), "-d", str(qfile),
         "-n", "1", "-Q", str(qps), "-c", "4", "-q", "100", "-t", str(timeout)],
        capture_output=True, text=True).stdout
    done = re.search(r"Queries completed:\s+(\d+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    return int(done.group(1)) if done else 0, int(lost.group(1)) if lost else 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=5000)
    p.add_argument("--qps", type=int, default=300)
    p.add_argument("--protocol", choices=["dot", "doh"], default="dot")
    p.add_argument("--cache", action="store_true", help="cache on, every query a hit")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", help="write the callgrind_annotate output here")
    p.add_argument("--cpu", type=int, default=1, help="CPU for ctdns (taskset)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (dumps)")
    a = p.parse_args()

    ctx = Ctx()
    ctx.work = Path(tempfile.mkdtemp(prefix="ctdns-instr-"))
    ctx.pki, ctx.pin, _ = peers.make_pki(ctx.work)
    ctx.upstream = peers.Upstream(ctx.work, ctx.pki, 0)
    ctx.ctdns_cmd = ["valgrind", "--tool=callgrind",
                     f"--callgrind-out-file={ctx.work}/cg.%p",
                     str(peers.ctdns_bin()), "serve"]
    qdir = ctx.work / "q"
    qdir.mkdir()
    prime = qdir / "prime.txt"
    names = qdir / "names.txt"
    if a.cache:
        prime.write_text("".join(f"hit{i % 10}.bench. A\n" for i in range(100)))
        names.write_text("".join(f"hit{i % 10}.bench. A\n" for i in range(a.queries)))
    else:
        prime.write_text("".join(f"prime{i}.bench. A\n" for i in range(100)))
        names.write_text("".join(f"n{i}.bench. A\n" for i in range(a.queries)))
    port = peers.free_port()
    d = ctx.work / "ctdns"
    d.mkdir()
    argv = peers.ctdns_argv(a.protocol)(ctx, d, port, a.cache)
    proc = peers.Proc("ctdns", argv, a.cpu, d / "log")
    try:
        peers.wait_tcp(proc, port, "ctdns under callgrind", timeout=120)
        done, _ = dnsperf(port, prime, 50)
        if done == 0:
            raise RuntimeError(f"ctdns did not answer; see {d / 'log'}")
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                       capture_output=True)
        start = time.time()
        done, lost = dnsperf(port, names, a.qps)
        secs = time.time() - start
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                       capture_output=True)
        time.sleep(0.5)
    finally:
        proc.stop()
        ctx.upstream.proc.stop()
    dumps = sorted(ctx.work.glob(f"cg.{proc.pid}.*"))
    if not dumps:
        raise RuntimeError("no callgrind dump")
    dump = dumps[0]
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", str(dump)],
                         capture_output=True, text=True).stdout
    incl = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", "--auto=no", str(dump)],
                          capture_output=True, text=True).stdout
    total = None
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
    mode = "cache hit" if a.cache else "cache miss"
    print(f"ctdns → {a.protocol.upper()}, {mode}: {done} answered, {lost} lost "
          f"in {secs:.1f} s at {a.qps} QPS")
    if total and done:
        print(f"Ir total {total:,}; Ir per answered query {total / done:,.0f}")
    print("\n# self cost (top)")
    print("\n".join(_top(ann, a.top)))
    print("\n# inclusive cost (top)")
    print("\n".join(_top(incl, a.top)))
    if not a.keep:
        shutil.rmtree(ctx.work, ignore_errors=True)
    if a.out:
        Path(a.out).write_text(
            f"# {mode}, {a.protocol}, {done} answered; Ir/query "
            f"{(total or 0) / max(done, 1):,.0f}\n# self\n{ann}\n# inclusive\n{incl}\n")


def _top(text, n):
    lines, started = [], False
    for line in text.splitlines():
        if "file:function" in line:
            started = True
            continue
        if started and line.strip():
            lines.append(line[:200])
            if len(lines) >= n:
                break
    return lines


if __name__ == "__main__":
    main()
