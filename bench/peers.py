#!/usr/bin/python3
"""Benchmark ctdns against its peers on loopback; see bench/README.md.

Started by bench/run.sh (which installs the Debian packages and builds the release binary).
Everything runs for real: a Debian unbound serves DoT and DoH from a test PKI with CT-logged
certificates, the contenders forward to it with certificate verification on, and dnsperf
drives them. Only processes started here are stopped here (by their Popen handles).
"""

import argparse
import asyncio
import base64
import datetime
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUTH_NAME = "dns.bench.test"
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


# --------------------------------------------------------------------------------------------
# Ports, DNS wire, /proc


def free_port():
    """A loopback port free for both TCP and UDP (bound, then released)."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((LOOPBACK, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((LOOPBACK, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free loopback port")


def dns_query(name, qid=None, qtype=1):
    qid = random.randrange(65536) if qid is None else qid
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack(">HH", qtype, 1)


def udp_ask(port, name, timeout=5.0):
    """One UDP query; (rcode, seconds) or (None, seconds) on timeout."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    q = dns_query(name)
    start = time.perf_counter()
    try:
        s.sendto(q, (LOOPBACK, port))
        while True:
            data, _ = s.recvfrom(4096)
            if data[:2] == q[:2]:
                return data[3] & 0x0F, time.perf_counter() - start
    except socket.timeout:
        return None, time.perf_counter() - start
    finally:
        s.close()


def tcp_listening(port):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def cpu_ticks(pid):
    """utime + stime of every thread of `pid`, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_busy_ticks():
    """(busy, total) clock ticks over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------------------------
# Processes


class Proc:
    """A started process, pinned with taskset, stopped by its own handle."""

    def __init__(self, name, args, cpu, logfile, env=None):
        self.name = name
        self.log = open(logfile, "ab")
        self.p = subprocess.Popen(
            ["taskset", "-c", str(cpu)] + args,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        # taskset execs the program, so the PID is the program's.
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def wait_tcp(proc, port, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{what} exited with {proc.p.returncode}; see its log")
        if tcp_listening(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on TCP {port} within {timeout} s")


# --------------------------------------------------------------------------------------------
# CPU layouts


class Layout:
    """Which CPU (taskset) the upstream, the contender and dnsperf run on."""

    def __init__(self, name, upstream, contender, loadgen, title):
        self.name, self.upstream, self.contender, self.loadgen = name, upstream, contender, loadgen
        self.title = title

    def describe(self):
        return (f"upstream unbound on CPU {self.upstream}; contender on CPU {self.contender}; "
                f"dnsperf on CPU {self.loadgen}")

    def as_dict(self):
        return {"name": self.name, "upstream_cpu": self.upstream,
                "contender_cpu": self.contender, "loadgen_cpu": self.loadgen,
                "title": self.title}


def layouts(args):
    """Layout A (the original): the contender shares its CPU with dnsperf, the upstream has
    one to itself. Layout B: the contender has a CPU to itself, the upstream shares with
    dnsperf. A charges the contender for the load generator's CPU; B charges the upstream."""
    a = Layout("A", args.upstream_cpu, args.contender_cpu, args.loadgen_cpu,
               "contender and dnsperf share a CPU")
    b = Layout("B", args.contender_cpu ^ 1 if args.contender_cpu in (0, 1) else 0,
               args.contender_cpu,
               args.contender_cpu ^ 1 if args.contender_cpu in (0, 1) else 0,
               "contender alone on its CPU; upstream and dnsperf share the other")
    return {"A": a, "B": b}


# --------------------------------------------------------------------------------------------
# Setup: PKI, upstream, contenders


def ctdns_bin():
    return ROOT / "target" / "release" / "ctdns"


def make_pki(work):
    pki = work / "pki"
    sh([str(ctdns_bin()), "pki", "--out", str(pki), "--ip", LOOPBACK, "--dns", AUTH_NAME])
    for f in ["ca.pem", "chain.pem", "key.pem", "log_list.json"]:
        if not (pki / f).exists():
            raise RuntimeError(f"ctdns pki did not write {f}")
    # SPKI SHA-256 pin of the root, computed independently with openssl.
    pub = sh(["openssl", "x509", "-in", str(pki / "ca.pem"), "-noout", "-pubkey"])
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=pub.encode(),
        capture_output=True,
        check=True,
    ).stdout
    pin = base64.b64encode(hashlib.sha256(der).digest()).decode()
    return pki, pin, "ctdns pki"


UNBOUND_COMMON = """  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  num-threads: 1
  incoming-num-tcp: 1200
  outgoing-num-tcp: 64
  so-reuseport: no
"""


class Upstream:
    """The real unbound serving DoT and DoH (and plain DNS, only for the readiness probe);
    `bench.` is a redirect zone so every name under it answers A 192.0.2.7, TTL 300."""

    def __init__(self, work, pki, cpu):
        self.dot, self.doh, self.plain = free_port(), free_port(), free_port()
        d = work / "upstream"
        d.mkdir(parents=True)
        conf = (
            "server:\n"
            f"  interface: {LOOPBACK}@{self.dot}\n  interface: {LOOPBACK}@{self.doh}\n"
            f"  interface: {LOOPBACK}@{self.plain}\n  port: {self.plain}\n"
            f"  tls-port: {self.dot}\n  https-port: {self.doh}\n"
            f'  tls-service-key: "{pki / "key.pem"}"\n  tls-service-pem: "{pki / "chain.pem"}"\n'
            '  http-endpoint: "/dns-query"\n  http-max-streams: 1000\n'
            + UNBOUND_COMMON.format(dir=d)
            + '  local-zone: "bench." redirect\n  local-data: "bench. 300 IN A 192.0.2.7"\n'
            "remote-control:\n  control-enable: no\n"
        )
        (d / "unbound.conf").write_text(conf)
        self.proc = Proc("upstream", ["unbound", "-d", "-c", str(d / "unbound.conf")], cpu, d / "log")
        wait_tcp(self.proc, self.dot, "upstream unbound (DoT)")
        wait_tcp(self.proc, self.doh, "upstream unbound (DoH)")
        rcode, _ = udp_ask(self.plain, "probe.bench.")
        if rcode != 0:
            raise RuntimeError(f"upstream unbound does not answer (rcode {rcode})")


class Contender:
    """How to start one contender; `start()` gives a running Proc listening on `port`."""

    def __init__(self, name, label, argv_fn, cache):
        self.name = name
        self.label = label
        self.argv_fn = argv_fn
        self.cache = cache  # whether it has an answer cache at all

    def start(self, ctx, cache_enabled, cpu):
        port = free_port()
        d = ctx.work / "run" / f"{self.name}-{port}"
        d.mkdir(parents=True)
        argv = self.argv_fn(ctx, d, port, cache_enabled)
        proc = Proc(self.name, argv, cpu, d / "log")
        wait_tcp(proc, port, self.name)
        proc.port = port
        proc.dir = d
        return proc


def ctdns_argv(protocol):
    def argv(ctx, d, port, cache_enabled):
        up = ctx.upstream
        if protocol == "dot":
            upstream = f'protocol = "dot"\nip = "{LOOPBACK}"\nport = {up.dot}\n'
        else:
            upstream = f'protocol = "doh"\nurl = "https://{LOOPBACK}:{up.doh}/dns-query"\n'
        conf = (
            f'listen = ["{LOOPBACK}:{port}"]\nmax_tcp_connections = 2048\n'
            f"[cache]\nenabled = {'true' if cache_enabled else 'false'}\n"
            f'[ct]\nlog_list = "{ctx.pki / "log_list.json"}"\n'
            f'[tls]\nroots = "{ctx.pki / "ca.pem"}"\n'
            '[log]\nlevel = "error"\n'
            f'[[upstream]]\n{upstream}pins = ["{ctx.pin}"]\n'
        )
        (d / "ctdns.toml").write_text(conf)
        return ctx.ctdns_cmd + ["--config", str(d / "ctdns.toml")]

    return argv


def unbound_fwd_argv(ctx, d, port, cache_enabled):
    # unbound cannot switch its cache off; cache-miss runs use names never asked before.
    conf = (
        "server:\n"
        f"  interface: {LOOPBACK}@{port}\n  port: {port}\n"
        + UNBOUND_COMMON.format(dir=d)
        + "  do-not-query-localhost: no\n  qname-minimisation: no\n"
        f'  tls-cert-bundle: "{ctx.pki / "ca.pem"}"\n'
        'forward-zone:\n  name: "."\n'
        f"  forward-addr: {LOOPBACK}@{ctx.upstream.dot}#{AUTH_NAME}\n"
        "  forward-tls-upstream: yes\n"
        "remote-control:\n  control-enable: no\n"
    )
    (d / "unbound.conf").write_text(conf)
    return ["unbound", "-d", "-c", str(d / "unbound.conf")]


def stubby_argv(ctx, d, port, cache_enabled):
    conf = (
        "resolution_type: GETDNS_RESOLUTION_STUB\n"
        "dns_transport_list:\n  - GETDNS_TRANSPORT_TLS\n"
        "tls_authentication: GETDNS_AUTHENTICATION_REQUIRED\n"
        f'tls_ca_file: "{ctx.pki / "ca.pem"}"\n'
        "tls_query_padding_blocksize: 128\n"
        "edns_client_subnet_private: 1\n"
        "round_robin_upstreams: 0\n"
        "idle_timeout: 10000\n"
        f"listen_addresses:\n  - {LOOPBACK}@{port}\n"
        "upstream_recursive_servers:\n"
        f"  - address_data: {LOOPBACK}\n    tls_port: {ctx.upstream.dot}\n"
        f'    tls_auth_name: "{AUTH_NAME}"\n'
    )
    (d / "stubby.yml").write_text(conf)
    return ["stubby", "-C", str(d / "stubby.yml")]


CONTENDERS = [
    Contender("ctdns-dot", "ctdns → DoT", ctdns_argv("dot"), cache=True),
    Contender("ctdns-doh", "ctdns → DoH", ctdns_argv("doh"), cache=True),
    Contender("unbound-fwd", "unbound fwd → DoT", unbound_fwd_argv, cache=True),
    Contender("stubby", "stubby → DoT", stubby_argv, cache=False),
]
DIRECT = ["direct-dot", "direct-doh"]
LABELS = {"direct-dot": "dnsperf → DoT (direct)", "direct-doh": "dnsperf → DoH (direct)"}
LABELS.update({c.name: c.label for c in CONTENDERS})


# --------------------------------------------------------------------------------------------
# dnsperf


class QueryFiles:
    def __init__(self, work, per_file):
        self.dir = work / "queries"
        self.dir.mkdir()
        self.per_file = per_file
        self.n = 0
        self.hit = self.dir / "hit.txt"
        # A few repeated names: after the first round every query is a cache hit.
        self.hit.write_text("".join(f"hit{i % 10}.bench. A\n" for i in range(1000)))

    def unique(self):
        """A file of names no run has asked before (cache misses everywhere)."""
        self.n += 1
        path = self.dir / f"miss-{self.n}.txt"
        with open(path, "w") as f:
            f.writelines(f"r{self.n}q{i}.bench. A\n" for i in range(self.per_file))
        return path


def dnsperf_target(target, ctx):
    up = ctx.upstream
    if target == "direct-dot":
        return ["-m", "dot", "-s", LOOPBACK, "-p", str(up.dot)]
    if target == "direct-doh":
        return [
            "-m", "doh", "-s", LOOPBACK, "-p", str(up.doh),
            "-O", f"doh-uri=https://{LOOPBACK}:{up.doh}/dns-query", "-O", "doh-method=POST",
        ]
    return ["-m", "udp", "-s", LOOPBACK, "-p", str(target)]


def run_dnsperf(ctx, target, qfile, duration, once, qps=None, verbose=False):
    args = ["taskset", "-c", str(ctx.layout.loadgen), "dnsperf"] + dnsperf_target(target, ctx)
    args += [
        "-d", str(qfile), "-l", str(duration), "-c", str(ctx.args.clients),
        "-q", str(ctx.args.outstanding), "-t", "5",
        "-O", "suppress=sockready,timeouts,congestion",
    ]
    if once:
        args += ["-n", "1"]
    if qps:
        args += ["-Q", str(qps)]
    if verbose:
        args += ["-v"]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    res = {"sent": 0, "completed": 0, "lost": 0, "qps": 0.0, "runtime": 0.0, "lat": []}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("> ") and verbose:
            parts = s.split()
            try:
                res["lat"].append(float(parts[-1]))
            except (ValueError, IndexError):
                pass
        elif s.startswith("Queries sent:"):
            res["sent"] = int(s.split()[2])
        elif s.startswith("Queries completed:"):
            res["completed"] = int(s.split()[2])
        elif s.startswith("Queries lost:"):
            res["lost"] = int(s.split()[2])
        elif s.startswith("Queries per second:"):
            res["qps"] = float(s.split()[3])
        elif s.startswith("Run time (s):"):
            res["runtime"] = float(s.split()[3])
    if res["completed"] == 0:
        log(f"dnsperf got no answers from {target}; output:\n{out[-2000:]}")
    return res


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def measured(ctx, target, proc, qfile, duration, once, qps=None, verbose=False, profile=False):
    """One dnsperf run with the contender's (and upstream's) CPU time around it; with
    `profile`, perf records the contender meanwhile (such a run is not counted)."""
    pids = {"contender": proc.pid if proc else None, "upstream": ctx.upstream.proc.pid}
    before = {k: cpu_ticks(p) for k, p in pids.items() if p}
    busy_before = machine_busy_ticks()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    perf = None
    if proc and profile:
        perf_out = ctx.out / f"perf-{proc.name}.txt"
        data = ctx.work / f"perf-{proc.name}.data"
        # DWARF unwinding: release builds have debug info (profile.release debug = 1) but
        # no frame pointers.
        perf = (subprocess.Popen(
            ["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(proc.pid),
             "-o", str(data), "--", "sleep", str(duration)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), data, perf_out)
    r = run_dnsperf(ctx, target, qfile, duration, once, qps, verbose)
    after = {k: cpu_ticks(p) for k, p in pids.items() if p}
    if perf:
        perf[0].wait()
        def report(*extra):
            out = subprocess.run(
                ["perf", "report", "-i", str(perf[1]), "--stdio", "--sort", "dso,symbol"]
                + list(extra),
                capture_output=True, text=True).stdout
            return "\n".join(l.rstrip().removesuffix("-      -").rstrip() for l in out.splitlines())

        flat = report("--no-children", "-g", "none", "--percent-limit", "0.7")
        callers = report("--no-children", "-g", "callee,2,callee,function,percent",
                         "--max-stack", "12", "--percent-limit", "2")
        perf[2].write_text(
            f"# perf profile of {proc.name} during one uncounted {duration} s warm cache-miss "
            "run\n# flat (self time)\n" + flat
            + "\n\n# who calls the hottest functions (self >= 2 %, 12 frames)\n" + callers + "\n")
    busy_after = machine_busy_ticks()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = 0.0
    for k in before:
        secs = (after[k] - before[k]) / CLK_TCK
        ours += secs
        r[f"cpu_{k}_s"] = secs
        r[f"cpu_{k}_per_1k"] = secs / r["completed"] * 1000 if r["completed"] else None
    # dnsperf (a finished child) and anything else this script waited for meanwhile.
    ours += (children_after.ru_utime - children_before.ru_utime
             + children_after.ru_stime - children_before.ru_stime)
    busy = (busy_after[0] - busy_before[0]) / CLK_TCK
    total = (busy_after[1] - busy_before[1]) / CLK_TCK
    # CPU used by processes outside the benchmark (other users of a shared machine), as a
    # share of all CPUs over the run; interrupts and kernel threads count here too.
    r["other_load_pct"] = max(0.0, 100.0 * (busy - ours) / total) if total > 0 else None
    if verbose:
        r["p50_ms"] = pct(r["lat"], 50) * 1000 if r["lat"] else None
        r["p99_ms"] = pct(r["lat"], 99) * 1000 if r["lat"] else None
        r["answered"] = len(r["lat"])
    del r["lat"]
    return r


# --------------------------------------------------------------------------------------------
# Scenarios


def median_of(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(name, mode, tput, lat, proc_rss_kib, first=None):
    return {
        "contender": name,
        "mode": mode,
        "qps": median_of(tput, "qps"),
        "lost": sum(r["lost"] for r in tput),
        "p50_ms": median_of(lat, "p50_ms"),
        "p99_ms": median_of(lat, "p99_ms"),
        "cpu_per_1k": median_of(tput, "cpu_contender_per_1k"),
        "upstream_cpu_per_1k": median_of(tput, "cpu_upstream_per_1k"),
        "other_load_pct": median_of(tput, "other_load_pct"),
        "rss_mib": proc_rss_kib / 1024 if proc_rss_kib else None,
        "first_query_ms": statistics.median(first) * 1000 if first else None,
        "runs": {"throughput": tput, "latency": lat},
    }


def warm(ctx, c, hit):
    """Start once, prime the connections (and the cache for hit runs), then measure."""
    a = ctx.args
    proc = c.start(ctx, cache_enabled=hit, cpu=ctx.layout.contender)
    try:
        prime = ctx.queries.hit if hit else ctx.queries.unique()
        run_dnsperf(ctx, proc.port, prime, 2, once=not hit)
        tput, lat = [], []
        for i in range(a.reps):
            q = ctx.queries.hit if hit else ctx.queries.unique()
            tput.append(measured(ctx, proc.port, proc, q, a.duration, once=not hit))
            log(f"  {c.name} warm {'hit' if hit else 'miss'} run {i + 1}: {tput[-1]['qps']:.0f} qps")
        for i in range(a.reps):
            q = ctx.queries.hit if hit else ctx.queries.unique()
            lat.append(measured(ctx, proc.port, proc, q, a.lat_duration, once=not hit,
                                qps=a.lat_qps, verbose=True))
        rss = status_kib(proc.pid, "VmHWM")
        if a.perf == c.name and not hit:
            log(f"  {c.name}: profiling one extra (uncounted) run with perf")
            measured(ctx, proc.port, proc, ctx.queries.unique(), a.duration, once=True,
                     profile=True)
    finally:
        proc.stop()
    return summarize(c.name, "warm-hit" if hit else "warm-miss", tput, lat, rss)


def warm_interleaved(ctx, contenders, directs, hit):
    """Like `warm` (and `direct`) for several contenders at once, with their runs taken in
    turn: round r runs every contender once (the order rotating from round to round), so
    load from outside the benchmark falls on all of them alike instead of on whichever
    contender happened to be measured while it lasted. Every contender runs for the whole
    scenario (idle ones use no CPU); each measured run is preceded by an uncounted 1 s pass
    that re-opens upstream connections closed while the others ran."""
    a = ctx.args
    mode = "warm-hit" if hit else "warm-miss"
    procs = {}
    try:
        for c in contenders:
            procs[c.name] = c.start(ctx, cache_enabled=hit, cpu=ctx.layout.contender)
            prime = ctx.queries.hit if hit else ctx.queries.unique()
            run_dnsperf(ctx, procs[c.name].port, prime, 2, once=not hit)
        order = list(directs) + [c.name for c in contenders]
        tput = {n: [] for n in order}
        lat = {n: [] for n in order}

        def one(name, **kw):
            proc = procs.get(name)
            target = proc.port if proc else name
            if proc:
                warmup = ctx.queries.hit if hit else ctx.queries.unique()
                run_dnsperf(ctx, target, warmup, 1, once=not hit)
            q = ctx.queries.hit if hit else ctx.queries.unique()
            return measured(ctx, target, proc, q, once=not hit, **kw)

        for i in range(a.reps):
            k = i % len(order)
            for name in order[k:] + order[:k]:
                tput[name].append(one(name, duration=a.duration))
                log(f"  {name} {mode} round {i + 1}: {tput[name][-1]['qps']:.0f} qps")
        for i in range(a.reps):
            k = i % len(order)
            for name in order[k:] + order[:k]:
                lat[name].append(one(name, duration=a.lat_duration, qps=a.lat_qps,
                                     verbose=True))
        rss = {n: status_kib(p.pid, "VmHWM") for n, p in procs.items()}
        if a.perf in procs and not hit:
            log(f"  {a.perf}: profiling one extra (uncounted) run with perf")
            measured(ctx, procs[a.perf].port, procs[a.perf], ctx.queries.unique(),
                     a.duration, once=True, profile=True)
    finally:
        for p in procs.values():
            p.stop()
    return [summarize(n, mode, tput[n], lat[n], rss.get(n)) for n in order]


def cold(ctx, c):
    """A fresh process before every run: no upstream connection, empty cache."""
    a = ctx.args
    tput, lat, first, rss = [], [], [], []
    for i in range(a.reps):
        proc = c.start(ctx, cache_enabled=False, cpu=ctx.layout.contender)
        try:
            rcode, secs = udp_ask(proc.port, f"first{i}-{proc.port}.bench.")
            if rcode == 0:
                first.append(secs)
        finally:
            proc.stop()
        proc = c.start(ctx, cache_enabled=False, cpu=ctx.layout.contender)
        try:
            tput.append(measured(ctx, proc.port, proc, ctx.queries.unique(), a.duration, once=True))
            rss.append(status_kib(proc.pid, "VmHWM"))
        finally:
            proc.stop()
        proc = c.start(ctx, cache_enabled=False, cpu=ctx.layout.contender)
        try:
            lat.append(measured(ctx, proc.port, proc, ctx.queries.unique(), a.lat_duration,
                                once=True, qps=a.lat_qps, verbose=True))
        finally:
            proc.stop()
        log(f"  {c.name} cold run {i + 1}: {tput[-1]['qps']:.0f} qps, first answer "
            f"{first[-1] * 1000 if first else float('nan'):.1f} ms")
    return summarize(c.name, "cold-miss", tput, lat, max(rss) if rss else None, first)


def direct(ctx, target):
    a = ctx.args
    tput = [measured(ctx, target, None, ctx.queries.unique(), a.duration, once=True)
            for _ in range(a.reps)]
    lat = [measured(ctx, target, None, ctx.queries.unique(), a.lat_duration, once=True,
                    qps=a.lat_qps, verbose=True) for _ in range(a.reps)]
    log(f"  {target}: {median_of(tput, 'qps'):.0f} qps")
    return summarize(target, "warm-miss", tput, lat, None)


async def hold_tcp_clients(port, n, hold_secs, on_all_answered):
    """Open n TCP connections, send one query on each, read every answer, then (all still
    open) call on_all_answered(); close after hold_secs."""
    conns = []
    opened = 0
    for i in range(n):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port), 5)
            conns.append((i, r, w))
            opened += 1
        except (OSError, asyncio.TimeoutError):
            break

    async def ask(i, r, w):
        q = dns_query(f"hit{i % 10}.bench.", qid=i % 65536)
        w.write(struct.pack(">H", len(q)) + q)
        await w.drain()
        hdr = await asyncio.wait_for(r.readexactly(2), 10)
        body = await asyncio.wait_for(r.readexactly(struct.unpack(">H", hdr)[0]), 10)
        return body[3] & 0x0F == 0

    results = await asyncio.gather(*(ask(*c) for c in conns), return_exceptions=True)
    answered = sum(1 for x in results if x is True)
    snapshot = on_all_answered()
    still_open = sum(1 for _, r, _ in conns if not r.at_eof())
    await asyncio.sleep(hold_secs)
    for _, _, w in conns:
        w.close()
    return {"opened": opened, "answered": answered, "open_at_snapshot": still_open, **snapshot}


def tcp_clients(ctx, c):
    a = ctx.args
    proc = c.start(ctx, cache_enabled=True, cpu=ctx.layout.contender)
    try:
        run_dnsperf(ctx, proc.port, ctx.queries.hit, 1, once=False)
        idle = status_kib(proc.pid, "VmRSS")

        def snap():
            return {"rss_kib": status_kib(proc.pid, "VmRSS")}

        r = asyncio.run(hold_tcp_clients(proc.port, a.tcp_clients, 1.0, snap))
        r["idle_rss_kib"] = idle
        r["hwm_kib"] = status_kib(proc.pid, "VmHWM")
        r["contender"] = c.name
        log(f"  {c.name}: {r['answered']}/{a.tcp_clients} TCP clients answered, "
            f"RSS {idle / 1024:.1f} → {r['rss_kib'] / 1024:.1f} MiB")
        return r
    finally:
        proc.stop()


# --------------------------------------------------------------------------------------------
# Report


def machine_info():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def ver(cmd, contains=""):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            lines = [l.strip() for l in (out.stdout + out.stderr).splitlines() if contains in l]
            return lines[0] if lines else "?"
        except OSError:
            return "?"

    commit = ver(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "unbound": "unbound " + ver(["unbound", "-V"], "Version").replace("Version ", ""),
        "dnsperf": "dnsperf " + ver(["dnsperf", "-h"], "Version").replace("Version ", ""),
        "stubby": ver(["stubby", "-V"], "Stubby"),
        "openssl": ver(["openssl", "version"]),
        "ctdns_commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def table(rows, with_first=False):
    head = ("| contender | QPS | p50 ms | p99 ms | CPU s / 1k q | upstream CPU s / 1k q | "
            "peak RSS MiB | other load % |")
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if with_first:
        head += " first answer ms |"
        sep += "---:|"
    out = [head, sep]
    for r in rows:
        line = (f"| {LABELS[r['contender']]} | {fmt(r['qps'], ',.0f')} | {fmt(r['p50_ms'], '.2f')} | "
                f"{fmt(r['p99_ms'], '.2f')} | {fmt(r['cpu_per_1k'], '.3f')} | "
                f"{fmt(r['upstream_cpu_per_1k'], '.3f')} | {fmt(r['rss_mib'], '.1f')} | "
                f"{fmt(r.get('other_load_pct'), '.0f')} |")
        if with_first:
            line += f" {fmt(r['first_query_ms'], '.1f')} |"
        out.append(line)
    return "\n".join(out)


def rows_of(results, layout, mode):
    return [r for r in results if r.get("layout", "A") == layout and r["mode"] == mode]


def row(results, layout, mode, contender):
    return next((r for r in rows_of(results, layout, mode) if r["contender"] == contender), None)


def ratio(a, b):
    return a / b if a is not None and b else None


# Rows whose median other-load figures differ by more than this many percentage points
# did not run under comparable conditions; their ratio is flagged.
COMPARABLE_LOAD_PP = 15


def targets(results, tcp, layout):
    """The benchmark issue's targets for one layout, as (target, value, met) rows; `met` is
    a bool, or a string when the compared rows did not run under comparable load."""
    out = []
    dot = row(results, layout, "warm-miss", "ctdns-dot")
    if not dot:
        return out
    for peer, goal, label in [("unbound-fwd", 1.2, "≥ 1.2 × unbound fwd"),
                              ("stubby", 1.5, "≥ 1.5 × stubby"),
                              ("direct-dot", 0.8, "≥ 0.8 × dnsperf → DoT direct")]:
        other = row(results, layout, "warm-miss", peer)
        r = ratio(dot["qps"], other["qps"] if other else None)
        if r is None:
            continue
        met = r >= goal
        la, lb = dot.get("other_load_pct"), other.get("other_load_pct")
        if la is not None and lb is not None and abs(la - lb) > COMPARABLE_LOAD_PP:
            met = (f"{'yes' if met else 'no'}, but not comparable: other load "
                   f"{la:.0f} % vs {lb:.0f} %")
        out.append((f"ctdns → DoT QPS {label}", f"{r:.2f} ×", met))
    # Issue 14 item 4: DoH as fast as DoT.
    doh = row(results, layout, "warm-miss", "ctdns-doh")
    for peer, label in [("direct-doh", "dnsperf → DoH direct"), ("ctdns-dot", "ctdns → DoT")]:
        other = row(results, layout, "warm-miss", peer)
        r = ratio(doh["qps"] if doh else None, other["qps"] if other else None)
        if r is None:
            continue
        met = r >= 0.8
        la, lb = doh.get("other_load_pct"), other.get("other_load_pct")
        if la is not None and lb is not None and abs(la - lb) > COMPARABLE_LOAD_PP:
            met = (f"{'yes' if met else 'no'}, but not comparable: other load "
                   f"{la:.0f} % vs {lb:.0f} %")
        out.append((f"ctdns → DoH QPS ≥ 0.8 × {label}", f"{r:.2f} ×", met))
    direct_dot = row(results, layout, "warm-miss", "direct-dot")
    if direct_dot and dot.get("p50_ms") is not None and direct_dot.get("p50_ms") is not None:
        added = (dot["p50_ms"] - direct_dot["p50_ms"]) * 1000
        out.append(("added p50 vs direct DoT ≤ 100 µs (at the fixed latency rate)",
                    f"{added:+.0f} µs", added <= 100))
    for t in tcp:
        if t.get("layout", "A") == layout and t["contender"] == "ctdns-dot":
            mib = t["rss_kib"] / 1024
            out.append((f"RSS ≤ 30 MB with {t['open_at_snapshot']} TCP clients open",
                        f"{mib:.1f} MiB ({t['answered']} answered)", mib * 1.048576 <= 30))
    return out


def render(ctx, info, results, tcp):
    a = ctx.args
    md = [
        "# ctdns vs. peers: loopback benchmark",
        "",
        f"Generated by `bench/run.sh` on {info['date']} (ctdns {info['ctdns_commit']}, "
        f"stub run as `{' '.join(Path(x).name for x in ctx.ctdns_cmd[:2])}`, PKI from {ctx.pki_how}).",
        "",
        f"- Machine: {info['nproc']} CPUs, {info['cpu']}, Linux {info['kernel']}; "
        f"load average at start {' '.join(info['loadavg_at_start'])} "
        "(the machine may be shared: compare rows of one run, not runs of different days).",
        f"- Versions: {info['unbound']}; {info['dnsperf']}; {info['stubby']}; {info['openssl']}.",
        "- CPU layouts (taskset), each reported in its own section:",
    ]
    for l in ctx.layouts:
        md.append(f"  - **Layout {l.name}** ({l.title}): {l.describe()}.")
    md += [
        "  Layout A charges the contender for dnsperf's CPU; layout B charges the upstream "
        "(which then serves every contender, including the direct dnsperf rows, from a shared CPU).",
        f"- Throughput: dnsperf `-c {a.clients} -q {a.outstanding}` for {a.duration} s, "
        f"{a.reps} runs, median. Latency: separate dnsperf runs at a fixed {a.lat_qps} QPS "
        f"(`-Q`) for {a.lat_duration} s, per-query times from `-v`, {a.reps} runs, median of "
        "the per-run p50 / p99.",
        "- CPU s / 1k q: utime+stime of the contender process (all threads, `/proc/PID/stat`) "
        "over a throughput run, per 1000 answered queries; upstream likewise. Peak RSS: "
        "`VmHWM` of the contender at the end of its runs. Other load %: CPU time used during "
        "the throughput runs by anything but the contender, the upstream and dnsperf (other "
        "users of the machine, kernel threads), as a share of both CPUs (median over runs): "
        "rows with a high figure ran with less CPU.",
        "- Cache-miss runs ask names never asked before (`r<run>q<N>.bench.`, one pass, "
        "`-n 1`); ctdns runs with `cache.enabled = false`, unbound cannot disable its cache "
        "but never sees a name twice. Cache-hit runs loop over 10 names.",
        "- warm: one process per contender, primed for 2 s (TLS connections to the upstream "
        "open, CT already verified), then all runs. cold: a fresh process before every run "
        "(first queries pay TCP + TLS handshake + certificate/CT verification); "
        "'first answer' is one UDP query to a fresh process. Direct dnsperf rows open their "
        "own connections at the start of each run. " + (
            "Warm scenarios take their runs in turn (round r runs every contender once, the "
            "order rotating per round; each run preceded by an uncounted 1 s pass that "
            "re-opens upstream connections), so load from outside the benchmark falls on all "
            "contenders alike; cold runs are one contender after the other."
            if a.interleave else
            "Contenders are measured one after the other (all runs of one, then the next), so "
            "load from outside the benchmark shifts whole rows."),
        "- Every contender verifies the upstream: ctdns (chain to ca.pem, IP SAN, 2 SCTs from "
        "2 operators, issuer pin), unbound (`forward-addr …#" + AUTH_NAME + "`, "
        "`tls-cert-bundle`), stubby (`tls_auth_name`, `tls_ca_file`, authentication required).",
        "- Known upstream artifact: unbound 1.17 sets TCP_NODELAY on its DoH sockets "
        "(`http-nodelay`) but not on DoT ones, and writes a DoT answer's length prefix and "
        "message separately, so the message waits (Nagle) until the client acknowledges the "
        "prefix, which Linux delays when the client has nothing to send. dnsperf's DoT client, "
        "unbound as forwarder and stubby wait for that: their fixed-rate DoT p50 is about the "
        "gap between queries (1 ms at 1000 QPS) and the first answer on a new DoT connection "
        "takes ~40 ms. ctdns acknowledges at once (`TCP_QUICKACK` after each write and read, "
        "src/upstream/dot.rs `QuickAck`), so its DoT rows are not held back; under load the "
        "same stall also limited pipelined throughput.",
        "",
    ]
    for l in ctx.layouts:
        lrows = [r for r in results if r.get("layout", "A") == l.name]
        ltcp = [t for t in tcp if t.get("layout", "A") == l.name]
        if not lrows and not ltcp:
            continue
        md += [f"# Layout {l.name}: {l.describe()}", ""]
        tg = targets(results, tcp, l.name)
        if tg:
            md += ["Targets (ratios within this layout and run):", "",
                   "| target | value | met |", "|---|---:|---|"]
            md += [f"| {t} | {v} | "
                   f"{ok if isinstance(ok, str) else ('yes' if ok else '**no**')} |"
                   for t, v, ok in tg]
            md.append("")
        for mode, title in [
            ("warm-miss", "Cache miss, warm connections"),
            ("cold-miss", "Cache miss, cold start"),
            ("warm-hit", "Cache hit, warm"),
        ]:
            rows = rows_of(results, l.name, mode)
            if rows:
                md += [f"## {title} (layout {l.name})", "",
                       table(rows, with_first=(mode == "cold-miss")), ""]
                if mode == "warm-hit":
                    md += ["stubby has no answer cache: its cache-hit row still forwards every query.", ""]
        if ltcp:
            md += [
                f"## {a.tcp_clients} concurrent TCP clients (layout {l.name})",
                "",
                "Each client opens a TCP connection to the contender, sends one (cached) query and "
                "reads the answer; RSS is read while all connections are open.",
                "",
                "| contender | connections opened | answered | RSS idle MiB | RSS with clients MiB | KiB per connection |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for r in ltcp:
                per = (r["rss_kib"] - r["idle_rss_kib"]) / r["open_at_snapshot"] if r["open_at_snapshot"] else None
                md.append(
                    f"| {LABELS[r['contender']]} | {r['opened']} | {r['answered']} | "
                    f"{r['idle_rss_kib'] / 1024:.1f} | {r['rss_kib'] / 1024:.1f} | {fmt(per, '.1f')} |")
            md.append("")
    md += ["Raw runs: `latest.json`. Chart: `latest.png`. DoT vs DoH and stub vs unbound "
           "summary: `closing-notes.md`.", ""]
    return "\n".join(md)


def closing_notes(ctx, info, results, tcp):
    """DoT vs DoH through the stub, and the stub against a local unbound forwarder, from
    the same run, for the issue's closing notes."""
    a = ctx.args
    md = [
        "# Closing notes: figures from one `bench/run.sh` run",
        "",
        f"{info['date']}, ctdns {info['ctdns_commit']}, {a.duration} s throughput runs × {a.reps} "
        f"(median), latency at a fixed {a.lat_qps} QPS for {a.lat_duration} s × {a.reps}; "
        f"machine load at start {' '.join(info['loadavg_at_start'])}. Same upstream (unbound "
        "1.17 serving DoT and DoH on loopback) for every row; full tables in `latest.md`.",
        "",
    ]
    for l in ctx.layouts:
        dot = row(results, l.name, "warm-miss", "ctdns-dot")
        doh = row(results, l.name, "warm-miss", "ctdns-doh")
        unb = row(results, l.name, "warm-miss", "unbound-fwd")
        if not (dot or doh or unb):
            continue
        md += [f"## Layout {l.name}: {l.describe()}", ""]
        if dot and doh:
            md += [
                "### DoT vs DoH through the stub (cache off, warm connections)",
                "",
                "| transport | QPS | p50 ms | p99 ms | CPU s / 1k q | peak RSS MiB | first answer ms (cold) |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for r in (dot, doh):
                cold_row = row(results, l.name, "cold-miss", r["contender"])
                md.append(
                    f"| {LABELS[r['contender']]} | {fmt(r['qps'], ',.0f')} | {fmt(r['p50_ms'], '.2f')} | "
                    f"{fmt(r['p99_ms'], '.2f')} | {fmt(r['cpu_per_1k'], '.3f')} | "
                    f"{fmt(r['rss_mib'], '.1f')} | "
                    f"{fmt(cold_row['first_query_ms'] if cold_row else None, '.1f')} |")
            md.append("")
        if dot and unb:
            md += [
                f"### Stub vs local unbound (forwarding over DoT), dnsperf {a.duration} s",
                "",
                "| resolver | QPS | p50 ms | p99 ms | CPU s / 1k q | peak RSS MiB |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for r in (dot, unb):
                md.append(
                    f"| {LABELS[r['contender']]} | {fmt(r['qps'], ',.0f')} | {fmt(r['p50_ms'], '.2f')} | "
                    f"{fmt(r['p99_ms'], '.2f')} | {fmt(r['cpu_per_1k'], '.3f')} | {fmt(r['rss_mib'], '.1f')} |")
            r = ratio(dot["qps"], unb["qps"])
            md += ["", f"ctdns / unbound QPS: {fmt(r, '.2f')} ×.", ""]
    return "\n".join(md)


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = []
    for r in results:
        key = (r["mode"], r.get("layout", "A"))
        if key not in series:
            series.append(key)
    names = []
    for r in results:
        if r["contender"] not in names:
            names.append(r["contender"])
    fig, axes = plt.subplots(1, 4, figsize=(22, 6))
    width = 0.8 / max(1, len(series))
    xs = range(len(names))
    for ax, key, title, log_scale in [
        (axes[0], "qps", "Throughput (QPS, higher is better)", False),
        (axes[1], "p50_ms", "Latency p50 (ms, log) at fixed rate", True),
        (axes[2], "p99_ms", "Latency p99 (ms, log) at fixed rate", True),
        (axes[3], "cpu_per_1k", "Contender CPU s per 1000 queries", False),
    ]:
        for j, (mode, layout) in enumerate(series):
            vals = []
            for n in names:
                r = next((r for r in results if r["contender"] == n and r["mode"] == mode
                          and r.get("layout", "A") == layout), None)
                vals.append(r[key] if r and r[key] is not None else float("nan"))
            ax.bar([x + (j - (len(series) - 1) / 2) * width for x in xs], vals, width,
                   label=f"{mode}, layout {layout}")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([LABELS[n] for n in names], rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        if log_scale:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle("Layout A: upstream alone on a CPU, contender + dnsperf on the other; "
                 "layout B: contender alone, upstream + dnsperf together", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------------------------


class Ctx:
    pass


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=int(env("DURATION", "10")), help="seconds per throughput run (env DURATION)")
    p.add_argument("--reps", type=int, default=int(env("REPS", "3")), help="runs per measurement (env REPS)")
    p.add_argument("--lat-qps", type=int, default=int(env("LAT_QPS", "1000")), help="fixed rate of latency runs (env LAT_QPS)")
    p.add_argument("--lat-duration", type=int, default=int(env("LAT_DURATION", "5")), help="seconds per latency run (env LAT_DURATION)")
    p.add_argument("--clients", type=int, default=int(env("CLIENTS", "4")), help="dnsperf -c")
    p.add_argument("--outstanding", type=int, default=int(env("OUTSTANDING", "100")), help="dnsperf -q")
    p.add_argument("--upstream-cpu", type=int, default=int(env("UPSTREAM_CPU", "0")), help="layout A")
    p.add_argument("--contender-cpu", type=int, default=int(env("CONTENDER_CPU", "1")), help="layouts A and B")
    p.add_argument("--loadgen-cpu", type=int, default=int(env("LOADGEN_CPU", "1")), help="layout A")
    p.add_argument("--layouts", default=env("LAYOUTS", "A,B"),
                   help="CPU layouts to run, in order: A (upstream alone; contender + dnsperf), "
                        "B (contender alone; upstream + dnsperf)")
    p.add_argument("--alt-skip", default=env("ALT_SKIP", "cold,hit,tcp"),
                   help="scenarios to skip in layouts after the first (default: only warm runs)")
    p.add_argument("--no-interleave", dest="interleave", action="store_false",
                   default=env("INTERLEAVE", "1") != "0",
                   help="measure warm contenders one after the other instead of in turn")
    p.add_argument("--tcp-clients", type=int, default=int(env("TCP_CLIENTS", "1000")))
    p.add_argument("--only", default=env("ONLY", ""), help="comma-separated contenders (default all)")
    p.add_argument("--skip", default=env("SKIP", ""), help="comma-separated scenarios to skip: warm,cold,hit,tcp")
    p.add_argument("--perf", default=env("PERF", None), help="profile this contender's first warm-miss run with perf")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--replot", action="store_true", help="only redraw latest.png from latest.json")
    args = p.parse_args()
    if args.replot:
        data = json.loads((Path(args.out) / "latest.json").read_text())
        chart(data["results"], Path(args.out) / "latest.png")
        return

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

    ctx = Ctx()
    ctx.args = args
    ctx.out = Path(args.out)
    ctx.out.mkdir(parents=True, exist_ok=True)
    ctx.work = Path(tempfile.mkdtemp(prefix="ctdns-bench-"))
    # Enough unique names that no run wraps around: far above any loopback QPS x duration.
    ctx.queries = QueryFiles(ctx.work, max(200_000, 60_000 * max(args.duration, args.lat_duration)))
    ctx.ctdns_cmd = [str(ctdns_bin()), "serve"]
    only = {x for x in args.only.split(",") if x}
    skip = {x for x in args.skip.split(",") if x}
    alt_skip = skip | {x for x in args.alt_skip.split(",") if x}
    contenders = [c for c in CONTENDERS if not only or c.name in only]
    directs = [d for d in DIRECT if not only or d in only]
    all_layouts = layouts(args)
    ctx.layouts = [all_layouts[n.strip().upper()] for n in args.layouts.split(",") if n.strip()]

    info = machine_info()
    log(f"work dir {ctx.work}; machine {info['nproc']} × {info['cpu']}; load {info['loadavg_at_start']}")
    ctx.pki, ctx.pin, ctx.pki_how = make_pki(ctx.work)
    log(f"PKI from {ctx.pki_how}; root pin {ctx.pin}; stub = {' '.join(ctx.ctdns_cmd)}")
    results, tcp = [], []
    for i, layout in enumerate(ctx.layouts):
        ctx.layout = layout
        lskip = skip if i == 0 else alt_skip
        ctx.upstream = Upstream(ctx.work / f"layout-{layout.name}", ctx.pki, layout.upstream)
        log(f"layout {layout.name} ({layout.describe()}); upstream unbound: DoT "
            f"{ctx.upstream.dot}, DoH {ctx.upstream.doh}")
        tag = lambda r: {**r, "layout": layout.name}  # noqa: E731
        try:
            if "warm" not in lskip:
                if args.interleave:
                    log("warm, cache miss: " + ", ".join(directs + [c.name for c in contenders])
                        + " in turn")
                    results += [tag(r) for r in warm_interleaved(ctx, contenders, directs, False)]
                else:
                    for d in directs:
                        results.append(tag(direct(ctx, d)))
                    for c in contenders:
                        log(f"{c.name}: warm, cache miss")
                        results.append(tag(warm(ctx, c, hit=False)))
            if "cold" not in lskip:
                for c in contenders:
                    log(f"{c.name}: cold, cache miss")
                    results.append(tag(cold(ctx, c)))
            if "hit" not in lskip:
                # The cache sits in front of the transport: the DoT row suffices.
                hitters = [c for c in contenders if c.name != "ctdns-doh"]
                if args.interleave:
                    log("warm, cache hit: " + ", ".join(c.name for c in hitters) + " in turn")
                    results += [tag(r) for r in warm_interleaved(ctx, hitters, [], True)]
                else:
                    for c in hitters:
                        log(f"{c.name}: warm, cache hit")
                        results.append(tag(warm(ctx, c, hit=True)))
            if "tcp" not in lskip:
                for c in contenders:
                    if c.name == "ctdns-doh":
                        continue
                    log(f"{c.name}: {args.tcp_clients} TCP clients")
                    tcp.append(tag(tcp_clients(ctx, c)))
        finally:
            ctx.upstream.proc.stop()

    md = render(ctx, info, results, tcp)
    (ctx.out / "latest.md").write_text(md)
    (ctx.out / "latest.json").write_text(json.dumps(
        {"machine": info, "args": vars(args), "layouts": [l.as_dict() for l in ctx.layouts],
         "results": results, "tcp_clients": tcp}, indent=1))
    notes = closing_notes(ctx, info, results, tcp)
    (ctx.out / "closing-notes.md").write_text(notes)
    chart(results, ctx.out / "latest.png")
    print(md)
    log(f"wrote {ctx.out / 'latest.md'}, latest.json, latest.png, closing-notes.md")
    shutil.rmtree(ctx.work, ignore_errors=True)


if __name__ == "__main__":
    main()
