#!/usr/bin/python3
"""Where a cache hit's CPU goes: `ctdns serve` (cache on) answering 10 names in a loop from
dnsperf (`-c 4 -q 100`), both on one CPU as in layout A of bench/run.sh, against the same
real unbound DoT upstream (only the priming queries reach it). Prints QPS, ctdns user and
system time per query (utime / stime of all threads from /proc), and its voluntary and
involuntary context switches; with --syscalls, also perf-stat counts of its recvfrom,
recvmmsg, sendto, sendmmsg and epoll_wait calls (needs `perf`).

    bench/hitcpu.py [--ctdns target/release/ctdns] [--seconds 5] [--runs 1] [--syscalls]

Several builds can be compared in turn: `--ctdns A --ctdns B --runs 2` runs A, B, A, B.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402

SYSCALLS = ["recvfrom", "recvmmsg", "sendto", "sendmmsg", "epoll_wait"]


class Ctx:
    pass


def ticks(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(f[11]), int(f[12])


def switches(pid):
    vol = invol = 0
    for st in glob.glob(f"/proc/{pid}/task/*/status"):
        for line in Path(st).read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                vol += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                invol += int(line.split()[1])
    return vol, invol


def run(binary, seconds, syscalls, cpu):
    ctx = Ctx()
    ctx.work = Path(tempfile.mkdtemp(prefix="ctdns-hitcpu-"))
    peers.ctdns_bin = lambda: Path(binary)
    ctx.pki, ctx.pin, _ = peers.make_pki(ctx.work)
    ctx.upstream = peers.Upstream(ctx.work, ctx.pki, 1 - cpu)
    ctx.ctdns_cmd = [str(binary), "serve"]
    names = ctx.work / "hit.txt"
    names.write_text("".join(f"hit{i % 10}.bench. A\n" for i in range(1000)))
    port = peers.free_port()
    d = ctx.work / "ctdns"
    d.mkdir()
    proc = peers.Proc("ctdns", peers.ctdns_argv("dot")(ctx, d, port, True), cpu, d / "log")
    perf_out = ctx.work / "perf-stat.txt"
    dnsperf = ["dnsperf", "-m", "udp", "-s", peers.LOOPBACK, "-p", str(port), "-d", str(names),
               "-c", "4", "-q", "100"]
    try:
        peers.wait_tcp(proc, port, "ctdns")
        subprocess.run(dnsperf + ["-l", "2"], capture_output=True, check=False)
        t0, c0 = ticks(proc.pid), switches(proc.pid)
        stat = None
        if syscalls:
            events = ",".join(f"syscalls:sys_enter_{s}" for s in SYSCALLS)
            stat = subprocess.Popen(["perf", "stat", "-e", events, "-p", str(proc.pid), "--",
                                     "sleep", str(seconds)],
                                    stdout=subprocess.DEVNULL, stderr=perf_out.open("w"))
        out = subprocess.run(["taskset", "-c", str(cpu)] + dnsperf + ["-l", str(seconds)],
                             capture_output=True, text=True, check=False).stdout
        t1, c1 = ticks(proc.pid), switches(proc.pid)
        if stat:
            stat.wait()
        n = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
        qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
        hz = os.sysconf("SC_CLK_TCK")
        line = (f"{binary}: {n} queries, {qps:,.0f} QPS; ctdns user "
                f"{(t1[0] - t0[0]) / hz / n * 1e6:.2f} us/q, system "
                f"{(t1[1] - t0[1]) / hz / n * 1e6:.2f} us/q; context switches"
                f" voluntary {c1[0] - c0[0]}, involuntary {c1[1] - c0[1]}")
        if syscalls and perf_out.exists():
            counts = {m.group(2): int(m.group(1).replace(",", ""))
                      for m in re.finditer(r"([\d,]+)\s+syscalls:sys_enter_(\w+)",
                                           perf_out.read_text())}
            line += "; syscalls per query " + ", ".join(
                f"{s} {counts.get(s, 0) / n:.3f}" for s in SYSCALLS)
        print(line, flush=True)
    finally:
        proc.stop()
        ctx.upstream.proc.stop()
        shutil.rmtree(ctx.work, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ctdns", action="append", help="ctdns binary (repeatable)")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--cpu", type=int, default=1, help="CPU of ctdns and dnsperf")
    p.add_argument("--syscalls", action="store_true")
    a = p.parse_args()
    binaries = a.ctdns or [str(peers.ctdns_bin())]
    for _ in range(a.runs):
        for b in binaries:
            run(b, a.seconds, a.syscalls, a.cpu)


if __name__ == "__main__":
    main()
