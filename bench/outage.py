#!/usr/bin/python3
"""Upstream outage (issue 14): what clients get while the only DoT upstream is down.

For each contender (ctdns with serve-stale on, unbound as forwarder with serve-expired on,
stubby), on 127.0.0.1 only:
- a fresh upstream unbound serves DoT from a `ctdns pki` test PKI; every name under
  `bench.` answers A 192.0.2.7 with TTL `--ttl` (5 s), so cached answers expire during the
  outage;
- the contender is started and warmed: every one of `--names` names asked once;
- dnsperf replays those names (seen before) at `--qps` over UDP in three phases:
  `before` (upstream up, `--before` s), `outage` (upstream killed with SIGKILL, `--outage` s)
  and `after` (upstream restarted on the same ports, `--after` s).
Per phase: answered (NOERROR), SERVFAIL, other RCODEs, and lost (no response within
dnsperf's 5 s); and how many answers were stale: ctdns's `ctdns_stale_answers_total`
(from its /metrics endpoint) and unbound's `num.expired` (from `unbound-control stats`).
stubby has no cache, so nothing to serve stale.

Started by bench/outage.sh, which installs the packages and builds the release binary.
Only processes started here are stopped here (by their Popen handles).
"""

import argparse
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import AUTH_NAME, LOOPBACK, ROOT, free_port, make_pki, udp_ask  # noqa: E402

UNBOUND_BASE = """  do-daemonize: no
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
  so-reuseport: no
"""


def log(msg):
    print(f"[outage {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def start(args, logfile):
    return subprocess.Popen(args, stdout=open(logfile, "ab"), stderr=subprocess.STDOUT)


def stop(proc, sig=signal.SIGTERM):
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_tcp(proc, port, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see its log")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} is not listening on {port}")


class Upstream:
    """The DoT upstream: a real unbound; killable and restartable on the same ports."""

    def __init__(self, work, pki, ttl):
        self.dot, self.plain = free_port(), free_port()
        self.dir = work / "upstream"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "unbound.conf").write_text(
            "server:\n"
            f"  interface: {LOOPBACK}@{self.dot}\n  interface: {LOOPBACK}@{self.plain}\n"
            f"  port: {self.plain}\n  tls-port: {self.dot}\n"
            f'  tls-service-key: "{pki / "key.pem"}"\n  tls-service-pem: "{pki / "chain.pem"}"\n'
            + UNBOUND_BASE.format(dir=self.dir)
            + "  incoming-num-tcp: 256\n"
            f'  local-zone: "bench." redirect\n  local-data: "bench. {ttl} IN A 192.0.2.7"\n'
            "remote-control:\n  control-enable: no\n"
        )
        self.proc = None
        self.start()

    def start(self):
        self.proc = start(["unbound", "-d", "-c", str(self.dir / "unbound.conf")],
                          self.dir / "log")
        wait_tcp(self.proc, self.dot, "upstream unbound (DoT)")

    def kill(self):
        stop(self.proc, signal.SIGKILL)
        self.proc = None


def ctdns_start(ctx, d, port):
    mport = free_port()
    (d / "ctdns.toml").write_text(
        f'listen = ["{LOOPBACK}:{port}"]\n'
        "[cache]\nserve_stale_secs = 86400\nstale_answer_client_timeout_ms = 1800\n"
        f'[ct]\nlog_list = "{ctx.pki / "log_list.json"}"\n'
        f'[tls]\nroots = "{ctx.pki / "ca.pem"}"\n'
        '[log]\nlevel = "warn"\n'
        f'[metrics]\nlisten = "{LOOPBACK}:{mport}"\n'
        f'[[upstream]]\nprotocol = "dot"\nip = "{LOOPBACK}"\nport = {ctx.upstream.dot}\n'
        f'pins = ["{ctx.pin}"]\n'
    )
    proc = start([str(ctx.ctdns), "serve", "--config", str(d / "ctdns.toml")], d / "log")
    wait_tcp(proc, mport, "ctdns metrics")

    def stale():
        body = urllib.request.urlopen(f"http://{LOOPBACK}:{mport}/metrics", timeout=5).read()
        m = re.search(rb"^ctdns_stale_answers_total (\d+)", body, re.M)
        return int(m.group(1)) if m else None

    return proc, stale


def unbound_fwd_start(ctx, d, port):
    sock = d / "control.sock"
    conf = d / "unbound.conf"
    conf.write_text(
        "server:\n"
        f"  interface: {LOOPBACK}@{port}\n  port: {port}\n"
        + UNBOUND_BASE.format(dir=d)
        + "  do-not-query-localhost: no\n  qname-minimisation: no\n"
        f'  tls-cert-bundle: "{ctx.pki / "ca.pem"}"\n'
        "  serve-expired: yes\n  serve-expired-ttl: 86400\n  serve-expired-reply-ttl: 30\n"
        "  serve-expired-client-timeout: 1800\n"
        'forward-zone:\n  name: "."\n'
        f"  forward-addr: {LOOPBACK}@{ctx.upstream.dot}#{AUTH_NAME}\n"
        "  forward-tls-upstream: yes\n"
        f'remote-control:\n  control-enable: yes\n  control-interface: "{sock}"\n'
        "  control-use-cert: no\n"
    )
    proc = start(["unbound", "-d", "-c", str(conf)], d / "log")

    def stale():
        try:
            out = subprocess.run(["unbound-control", "-c", str(conf), "stats_noreset"],
                                 capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        m = re.search(r"^total\.num\.expired=(\d+)", out, re.M)
        return int(m.group(1)) if m else None

    return proc, stale


def stubby_start(ctx, d, port):
    (d / "stubby.yml").write_text(
        "resolution_type: GETDNS_RESOLUTION_STUB\n"
        "dns_transport_list:\n  - GETDNS_TRANSPORT_TLS\n"
        "tls_authentication: GETDNS_AUTHENTICATION_REQUIRED\n"
        f'tls_ca_file: "{ctx.pki / "ca.pem"}"\n'
        "round_robin_upstreams: 0\n"
        "idle_timeout: 10000\n"
        f"listen_addresses:\n  - {LOOPBACK}@{port}\n"
        "upstream_recursive_servers:\n"
        f"  - address_data: {LOOPBACK}\n    tls_port: {ctx.upstream.dot}\n"
        f'    tls_auth_name: "{AUTH_NAME}"\n'
    )
    return start(["stubby", "-C", str(d / "stubby.yml")], d / "log"), lambda: None


CONTENDERS = [
    ("ctdns", "ctdns → DoT (serve_stale_secs = 86400)", ctdns_start),
    ("unbound-fwd", "unbound fwd → DoT (serve-expired: yes)", unbound_fwd_start),
    ("stubby", "stubby → DoT (no cache)", stubby_start),
]


def dnsperf(port, qfile, qps, duration):
    out = subprocess.run(
        ["dnsperf", "-m", "udp", "-s", LOOPBACK, "-p", str(port), "-d", str(qfile),
         "-Q", str(qps), "-l", str(duration), "-t", "5", "-c", "4",
         "-O", "suppress=timeouts,congestion,sockready"],
        capture_output=True, text=True,
    ).stdout
    res = {"sent": 0, "noerror": 0, "servfail": 0, "other": 0, "lost": 0}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Queries sent:"):
            res["sent"] = int(s.split()[2])
        elif s.startswith("Queries lost:"):
            res["lost"] = int(s.split()[2])
        elif s.startswith("Response codes:"):
            for code, n in re.findall(r"([A-Z]+) (\d+)", s):
                key = code.lower() if code in ("NOERROR", "SERVFAIL") else "other"
                res[key] += int(n)
    if res["sent"] == 0:
        log(f"dnsperf sent nothing; output:\n{out[-2000:]}")
    return res


class Ctx:
    pass


def run_one(ctx, name, label, start_fn, qfile):
    ctx.upstream = Upstream(ctx.work / f"up-{name}", ctx.pki, ctx.args.ttl)
    port = free_port()
    d = ctx.work / name
    d.mkdir()
    proc, stale = start_fn(ctx, d, port)
    phases = {}
    try:
        wait_tcp(proc, port, name)
        # Warm: every name once (cache filled), checked by a probe.
        rcode, _ = udp_ask(port, "probe.bench.")
        if rcode != 0:
            raise RuntimeError(f"{name} does not answer (rcode {rcode}); see {d}/log")
        subprocess.run(["dnsperf", "-m", "udp", "-s", LOOPBACK, "-p", str(port), "-d",
                        str(qfile), "-n", "1", "-Q", str(ctx.args.qps), "-t", "5"],
                       capture_output=True)
        for phase, secs in (("before", ctx.args.before), ("outage", ctx.args.outage),
                            ("after", ctx.args.after)):
            if phase == "outage":
                ctx.upstream.kill()
                log(f"{name}: upstream killed")
            elif phase == "after":
                ctx.upstream.start()
                log(f"{name}: upstream restarted")
            s0 = stale()
            r = dnsperf(port, qfile, ctx.args.qps, secs)
            s1 = stale()
            r["stale"] = None if s0 is None or s1 is None else s1 - s0
            phases[phase] = r
            log(f"{name} {phase}: {r}")
    finally:
        stop(proc)
        if ctx.upstream.proc is not None:
            stop(ctx.upstream.proc)
    return {"name": name, "label": label, "phases": phases}


def render(ctx, results):
    a = ctx.args
    lines = [
        "# Upstream outage: serve-stale",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; script: bench/outage.sh "
        f"(`--qps {a.qps} --names {a.names} --ttl {a.ttl} --before {a.before} --outage {a.outage} "
        f"--after {a.after}`).",
        f"- One DoT upstream (Debian unbound, test PKI from `ctdns pki`), every name TTL {a.ttl} s; "
        f"{a.names} names asked once to warm the cache, then dnsperf replays them over UDP at "
        f"{a.qps} QPS: {a.before} s upstream up, {a.outage} s upstream killed (SIGKILL), "
        f"{a.after} s after restarting it on the same ports.",
        "- answered = NOERROR; lost = no response within dnsperf's 5 s; stale = answers from "
        "expired entries (ctdns: `ctdns_stale_answers_total`; unbound: `total.num.expired`).",
        "",
        "| contender | phase | sent | answered | SERVFAIL | other | lost | stale |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for phase, p in r["phases"].items():
            stale = "—" if p["stale"] is None else str(p["stale"])
            lines.append(f"| {r['label']} | {phase} | {p['sent']} | {p['noerror']} | "
                         f"{p['servfail']} | {p['other']} | {p['lost']} | {stale} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ctdns", default=str(ROOT / "target" / "release" / "ctdns"))
    ap.add_argument("--qps", type=int, default=300)
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--ttl", type=int, default=5)
    ap.add_argument("--before", type=int, default=10)
    ap.add_argument("--outage", type=int, default=30)
    ap.add_argument("--after", type=int, default=40)
    ap.add_argument("--only", default="", help="comma-separated contenders (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "outage.md"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    ctx = Ctx()
    ctx.args = args
    ctx.ctdns = Path(args.ctdns)
    ctx.work = Path(tempfile.mkdtemp(prefix="ctdns-outage-"))
    try:
        # make_pki runs target/release/ctdns pki.
        ctx.pki, ctx.pin, _ = make_pki(ctx.work)
        qfile = ctx.work / "names.txt"
        qfile.write_text("".join(f"n{i}.bench. A\n" for i in range(args.names)))
        only = set(filter(None, args.only.split(",")))
        results = [run_one(ctx, n, l, f, qfile) for n, l, f in CONTENDERS
                   if not only or n in only]
        md = render(ctx, results)
        print(md)
        Path(args.out).write_text(md)
        log(f"written {args.out}")
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(ctx.work)])
        else:
            log(f"work directory kept: {ctx.work}")


if __name__ == "__main__":
    main()
