#!/usr/bin/python3
"""Cost of a refused upstream (issue 16): `ctdns serve` whose only upstream is a real unbound
presenting a CT-valid chain that ctdns refuses, driven by dnsperf at a fixed rate.

Reports, for the measured run: TCP connections (= handshakes attempted) that reached the
upstream, ctdns CPU time (utime + stime from /proc/<pid>/stat) and what dnsperf got back.

Setup (all on 127.0.0.1, nothing else dialed):
- `ctdns pki` twice: PKI A (served by unbound) and PKI B.
- unbound serves DoT with A's chain (leaf for 127.0.0.1, two SCTs from two operators).
- A counting TCP relay in this script sits between ctdns and unbound's DoT port: it counts
  accepted connections and copies bytes both ways. ctdns dials the relay's port; the
  certificate (IP SAN 127.0.0.1) is unbound's, unchanged.
- ctdns trusts A's root and A's log list, so chain and CT pass, and is refused by:
  `--rule issuer-pin` (default): pins B's root, so the issuer pin refuses A's chain;
  `--rule chain`: trusts B's root only, so the chain does not verify (as behind a
  TLS-inspecting proxy).
- dnsperf sends distinct names at `--qps` for `--duration` seconds over UDP; cache off.

Started by bench/refused_upstream.sh, which installs the packages and builds the binary.
Only processes started here are stopped here (by their Popen handles).
"""

import argparse
import base64
import hashlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import CLK_TCK, LOOPBACK, ROOT, cpu_ticks, free_port, sh  # noqa: E402


def log(msg):
    print(f"[refused {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


def spki_pin(ca_pem):
    pub = sh(["openssl", "x509", "-in", str(ca_pem), "-noout", "-pubkey"])
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=pub.encode(), capture_output=True, check=True,
    ).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class CountingRelay:
    """TCP relay on a loopback port to `target`, counting accepted connections."""

    def __init__(self, target_port):
        self.target = (LOOPBACK, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def count(self):
        with self.lock:
            return self.accepted

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopped = True
        self.listener.close()


def start(args, logfile):
    return subprocess.Popen(args, stdout=open(logfile, "ab"), stderr=subprocess.STDOUT)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ctdns", default=str(ROOT / "target" / "release" / "ctdns"),
                    help="the ctdns binary to measure (default: target/release/ctdns)")
    ap.add_argument("--qps", type=int, default=500)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rule", choices=["issuer-pin", "chain"], default="issuer-pin")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ctdns-refused-"))
    procs = []
    relay = None
    try:
        pkis = []
        for name in ("a", "b"):
            d = work / f"pki-{name}"
            sh([args.ctdns, "pki", "--out", str(d), "--ip", LOOPBACK, "--dns", "dns.bench.test"])
            pkis.append(d)
        served, other = pkis

        dot, plain = free_port(), free_port()
        ub = work / "unbound"
        ub.mkdir()
        (ub / "unbound.conf").write_text(
            "server:\n"
            f"  interface: {LOOPBACK}@{dot}\n  interface: {LOOPBACK}@{plain}\n"
            f"  port: {plain}\n  tls-port: {dot}\n"
            f'  tls-service-key: "{served / "key.pem"}"\n'
            f'  tls-service-pem: "{served / "chain.pem"}"\n'
            '  do-daemonize: no\n  username: ""\n  chroot: ""\n'
            f'  directory: "{ub}"\n  pidfile: ""\n  use-syslog: no\n  logfile: ""\n'
            "  verbosity: 1\n  module-config: \"iterator\"\n"
            "  access-control: 127.0.0.0/8 allow\n  num-threads: 1\n"
            "  incoming-num-tcp: 1200\n  so-reuseport: no\n"
            '  local-zone: "bench." redirect\n  local-data: "bench. 300 IN A 192.0.2.7"\n'
            "remote-control:\n  control-enable: no\n"
        )
        unbound = start(["unbound", "-d", "-c", str(ub / "unbound.conf")], ub / "log")
        procs.append(unbound)
        wait_tcp(unbound, dot, "unbound (DoT)")
        relay = CountingRelay(dot)

        if args.rule == "issuer-pin":
            roots, pin = served / "ca.pem", spki_pin(other / "ca.pem")
        else:
            roots, pin = other / "ca.pem", spki_pin(other / "ca.pem")
        port = free_port()
        conf = work / "ctdns.toml"
        conf.write_text(
            f'listen = ["{LOOPBACK}:{port}"]\n'
            "[cache]\nenabled = false\n"
            f'[ct]\nlog_list = "{served / "log_list.json"}"\n'
            f'[tls]\nroots = "{roots}"\n'
            '[log]\nlevel = "error"\n'
            f'[[upstream]]\nprotocol = "dot"\nip = "{LOOPBACK}"\nport = {relay.port}\n'
            f'pins = ["{pin}"]\n'
        )
        ctdns = start([args.ctdns, "serve", "--config", str(conf)], work / "ctdns.log")
        procs.append(ctdns)
        wait_tcp(ctdns, port, "ctdns serve")
        time.sleep(1.0)

        qfile = work / "queries.txt"
        n = args.qps * args.duration
        qfile.write_text("".join(f"q{i}.bench. A\n" for i in range(n)))

        accepted0, ticks0, t0 = relay.count(), cpu_ticks(ctdns.pid), time.monotonic()
        out = subprocess.run(
            ["dnsperf", "-m", "udp", "-s", LOOPBACK, "-p", str(port), "-d", str(qfile),
             "-n", "1", "-Q", str(args.qps), "-l", str(args.duration), "-t", "5",
             "-O", "suppress=timeouts"],
            capture_output=True, text=True,
        ).stdout
        ticks1, t1 = cpu_ticks(ctdns.pid), time.monotonic()
        accepted = relay.count() - accepted0
        cpu = (ticks1 - ticks0) / CLK_TCK
        wall = t1 - t0

        summary = [l.strip() for l in out.splitlines()
                   if l.strip().startswith(("Queries sent", "Queries completed", "Queries lost",
                                            "Response codes", "Average Latency", "Queries per"))]
        print(f"ctdns: {args.ctdns}")
        print(f"rule refused: {args.rule}; {args.qps} QPS for {args.duration} s over UDP")
        for line in summary:
            print(f"  dnsperf: {line}")
        print(f"TCP connections to the upstream during the run: {accepted}")
        print(f"ctdns CPU during the run: {cpu:.2f} s over {wall:.1f} s wall "
              f"= {100 * cpu / wall:.1f} % of one core")
    finally:
        for p in reversed(procs):
            stop(p)
        if relay:
            relay.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)])
        else:
            log(f"work directory kept: {work}")


if __name__ == "__main__":
    main()
