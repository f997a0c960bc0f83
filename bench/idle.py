#!/usr/bin/python3
"""Idle connections (issue 14 item 5): the latency of the first query after a pause.

One DoT upstream (a real unbound on 127.0.0.1, test PKI from `ctdns pki`) closes idle
connections after `--upstream-idle` s (10 s): `tcp-idle-timeout` and, for clients that send
the RFC 7828 option, `edns-tcp-keepalive-timeout`. Three contenders forward to it over DoT,
each started, warmed with one query, then left idle:
- ctdns (DoT upstream, default options: asks for the keepalive timeout and reconnects
  before the next query once it has passed);
- unbound as a forwarder (`forward-tls-upstream: yes`);
- stubby (idle_timeout 30000 ms: it would keep the connection longer than the server does).
Each repetition waits `--idle` s (30 s; the DURATION environment variable overrides it),
then asks each contender, one after the other, one name never asked before (no cache can
answer it) over UDP and times the answer; then asks a second new name at once (the warm
figure, on the connection the first one opened). Medians over `--reps` (3) repetitions.
All three idle at the same time, so a run takes about reps x idle.

Started by bench/idle.sh, which installs the packages and builds the release binary. Only
processes started here are stopped here (by their Popen handles).
"""

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import AUTH_NAME, LOOPBACK, ROOT, free_port, make_pki  # noqa: E402
from outage import UNBOUND_BASE, start, stop, wait_tcp  # noqa: E402


def log(msg):
    print(f"[idle {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ask(port, name, timeout=10.0):
    """One UDP A query for `name`: (rcode, milliseconds), rcode None on timeout."""
    qid = int.from_bytes(os.urandom(2), "big")
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        t0 = time.perf_counter()
        s.sendto(q, (LOOPBACK, port))
        while True:
            data, _ = s.recvfrom(4096)
            if data[:2] == q[:2]:
                return data[3] & 0x0F, (time.perf_counter() - t0) * 1000
    except socket.timeout:
        return None, timeout * 1000
    finally:
        s.close()


def upstream_start(work, pki, idle_ms):
    d = work / "upstream"
    d.mkdir()
    dot, plain = free_port(), free_port()
    (d / "unbound.conf").write_text(
        "server:\n"
        f"  interface: {LOOPBACK}@{dot}\n  interface: {LOOPBACK}@{plain}\n"
        f"  port: {plain}\n  tls-port: {dot}\n"
        f'  tls-service-key: "{pki / "key.pem"}"\n  tls-service-pem: "{pki / "chain.pem"}"\n'
        + UNBOUND_BASE.format(dir=d)
        + f"  tcp-idle-timeout: {idle_ms}\n  edns-tcp-keepalive: yes\n"
        f"  edns-tcp-keepalive-timeout: {idle_ms}\n"
        '  local-zone: "bench." redirect\n  local-data: "bench. 300 IN A 192.0.2.7"\n'
        "remote-control:\n  control-enable: no\n"
    )
    proc = start(["unbound", "-d", "-c", str(d / "unbound.conf")], d / "log")
    wait_tcp(proc, dot, "upstream unbound (DoT)")
    return proc, dot


def ctdns_start(ctx, d, port):
    (d / "ctdns.toml").write_text(
        f'listen = ["{LOOPBACK}:{port}"]\n'
        f'[ct]\nlog_list = "{ctx.pki / "log_list.json"}"\n'
        f'[tls]\nroots = "{ctx.pki / "ca.pem"}"\n'
        '[log]\nlevel = "warn"\n'
        f'[[upstream]]\nprotocol = "dot"\nip = "{LOOPBACK}"\nport = {ctx.up_port}\n'
        f'pins = ["{ctx.pin}"]\n'
    )
    return start([str(ctx.ctdns), "serve", "--config", str(d / "ctdns.toml")], d / "log")


def unbound_fwd_start(ctx, d, port):
    (d / "unbound.conf").write_text(
        "server:\n"
        f"  interface: {LOOPBACK}@{port}\n  port: {port}\n"
        + UNBOUND_BASE.format(dir=d)
        + "  do-not-query-localhost: no\n  qname-minimisation: no\n"
        f'  tls-cert-bundle: "{ctx.pki / "ca.pem"}"\n'
        'forward-zone:\n  name: "."\n'
        f"  forward-addr: {LOOPBACK}@{ctx.up_port}#{AUTH_NAME}\n"
        "  forward-tls-upstream: yes\n"
        "remote-control:\n  control-enable: no\n"
    )
    return start(["unbound", "-d", "-c", str(d / "unbound.conf")], d / "log")


def stubby_start(ctx, d, port):
    (d / "stubby.yml").write_text(
        "resolution_type: GETDNS_RESOLUTION_STUB\n"
        "dns_transport_list:\n  - GETDNS_TRANSPORT_TLS\n"
        "tls_authentication: GETDNS_AUTHENTICATION_REQUIRED\n"
        f'tls_ca_file: "{ctx.pki / "ca.pem"}"\n'
        "round_robin_upstreams: 0\n"
        "idle_timeout: 30000\n"
        f"listen_addresses:\n  - {LOOPBACK}@{port}\n"
        "upstream_recursive_servers:\n"
        f"  - address_data: {LOOPBACK}\n    tls_port: {ctx.up_port}\n"
        f'    tls_auth_name: "{AUTH_NAME}"\n'
    )
    return start(["stubby", "-C", str(d / "stubby.yml")], d / "log")


CONTENDERS = [
    ("ctdns", "ctdns → DoT", ctdns_start),
    ("unbound-fwd", "unbound fwd → DoT", unbound_fwd_start),
    ("stubby", "stubby → DoT (idle_timeout 30 s)", stubby_start),
]


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ctdns", default=str(ROOT / "target" / "release" / "ctdns"))
    ap.add_argument("--idle", type=float, default=float(os.environ.get("DURATION", "30")))
    ap.add_argument("--upstream-idle", type=float, default=10.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated contenders (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "idle.md"))
    args = ap.parse_args()

    ctx = Ctx()
    ctx.ctdns = Path(args.ctdns)
    work = Path(tempfile.mkdtemp(prefix="ctdns-idle-"))
    procs = []
    try:
        ctx.pki, ctx.pin, _ = make_pki(work)
        up, ctx.up_port = upstream_start(work, ctx.pki, int(args.upstream_idle * 1000))
        procs.append(up)
        only = set(filter(None, args.only.split(",")))
        running = []
        for name, label, fn in CONTENDERS:
            if only and name not in only:
                continue
            d = work / name
            d.mkdir()
            port = free_port()
            proc = fn(ctx, d, port)
            procs.append(proc)
            wait_tcp(proc, port, name)
            rcode, ms = ask(port, f"warm.{name}.bench.")
            if rcode != 0:
                raise RuntimeError(f"{name} does not answer (rcode {rcode}); see {d}/log")
            running.append((name, label, port))
            log(f"{name}: warm query {ms:.1f} ms")
        first = {n: [] for n, _, _ in running}
        warm = {n: [] for n, _, _ in running}
        for rep in range(args.reps):
            log(f"rep {rep + 1}/{args.reps}: idle {args.idle:g} s")
            time.sleep(args.idle)
            for name, _, port in running:
                rcode, ms = ask(port, f"first{rep}.{name}.bench.")
                rcode2, ms2 = ask(port, f"next{rep}.{name}.bench.")
                if rcode != 0 or rcode2 != 0:
                    log(f"{name}: rcode {rcode}/{rcode2}")
                first[name].append(ms if rcode == 0 else None)
                warm[name].append(ms2 if rcode2 == 0 else None)
                log(f"{name}: first after idle {ms:.1f} ms (rcode {rcode}), next {ms2:.1f} ms")

        def fmt(xs):
            ok = [x for x in xs if x is not None]
            med = f"{statistics.median(ok):.1f}" if ok else "—"
            return med, " / ".join("fail" if x is None else f"{x:.1f}" for x in xs)

        lines = [
            "# First query after an idle pause",
            "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; script: "
            f"bench/idle.sh (`--idle {args.idle:g} --upstream-idle {args.upstream_idle:g} "
            f"--reps {args.reps}`).",
            f"- One DoT upstream: Debian unbound on loopback closing idle connections after "
            f"{args.upstream_idle:g} s (`tcp-idle-timeout`, `edns-tcp-keepalive: yes`, "
            f"`edns-tcp-keepalive-timeout`). Each contender warmed, then idle {args.idle:g} s, "
            "then one never-asked name over UDP (first), then another at once (next); "
            "milliseconds, client-side, medians over the repetitions (each run listed).",
            "",
            "| contender | first after idle (median) | runs | next (median) | runs |",
            "|---|---:|---|---:|---|",
        ]
        for name, label, _ in running:
            fm, fr = fmt(first[name])
            wm, wr = fmt(warm[name])
            lines.append(f"| {label} | {fm} | {fr} | {wm} | {wr} |")
        md = "\n".join(lines) + "\n"
        print(md)
        Path(args.out).write_text(md)
        log(f"written {args.out}")
    finally:
        for p in reversed(procs):
            stop(p)
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
