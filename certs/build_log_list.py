#!/usr/bin/env python3
"""Regenerate ctdns's curated CT log list (crates/ctdns-verify/certs/ct_log_list.json).

Python 3 standard library only. `openssl` on PATH is optional: when present the
Android list's detached signature is verified, otherwise a warning is printed.

    python3 certs/build_log_list.py --sources /path/to/loglists            # write
    python3 certs/build_log_list.py --sources /path/to/loglists --check    # compare only

What it does (see certs/README.md for the why):
  1. loads the base list (newest Chrome v3 log_list.json);
  2. checks log_id == base64(SHA-256(base64-decoded key)) for every log of every source;
  3. cross-checks every base log against the Android (signature-verified), Apple and newer
     Chrome all_logs lists: a differing key for the same log_id aborts the build;
  4. applies state transitions from the newer all_logs list, but only restrictive ones
     (to `retired` or `rejected`, with a newer timestamp): ctdns never loosens a state;
  5. drops the two published "mimic" logs and the placeholder logs that never issued
     SCTs for real certificates;
  6. writes a v3-schema list with ctdns's own `version` and `log_list_timestamp`.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

VERSION = "ctdns-2026.11.2"
LOG_LIST_TIMESTAMP = "2026-11-26T00:00:00Z"
# The date of the newest source data (the 2026-08 all-logs list): staleness counts from it.
DATA_TIMESTAMP = "2026-08-21T00:00:00Z"

BASE = "chrome_log_list_v86.4_2026-06-23.json"
ANDROID = "android_log_list_v85.28_2026-03-27.json"
ANDROID_SIG = "android_log_list_v85.28_2026-03-27.sig.b64"
ANDROID_KEY = "android_log_list_signing_key.pem"
APPLE = "apple_current_log_list_2026-04-01.json"
# Chrome all_logs_list.json as of 2026-08 (re-serialized by a third party without
# `version`/`log_list_timestamp`): used only for restrictive state transitions.
STATE_OVERLAY = "chrome_all_logs_list_2026-08_mcpherrinm_noversion.json"

# Logs whose private keys Google published and which it adds to the lists it serves to
# third-party libraries: never trusted by ctdns, whatever list they appear in.
MIMIC_LOG_IDS = {
    "9EGV1vAOLbVUNcrdV3iS5T4VrUFwWPh44U/2uRh0FYk=": "mimic log 1 (private key published)",
    "si9+3rWvav5QPeBAgbLXTBJThJL+3yyypSZQPO9TztI=": "mimic log 2 (private key published)",
}

# Placeholder entries that only exist so that libraries expecting a non-empty `logs`
# array keep working; they never logged real certificates, so ctdns does not trust them.
PLACEHOLDER_LOG_IDS = {
    "LtakTeuPDIZGZ3acTt0EH4QjZ1X6OqymNNCTXfzVmnA=": "Geomys placeholder log",
    "0vxlL6X5tzi4N1X6XrFfC0UlP06Po7m2T9TeVmLRhwg=": "IPng Networks placeholder log",
}

RESTRICTIVE_STATES = ("retired", "rejected")


def fail(msg):
    print("build_log_list: error: " + msg, file=sys.stderr)
    sys.exit(1)


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    return raw, json.loads(raw)


def iter_logs(doc):
    for op in doc.get("operators", []):
        for kind in ("logs", "tiled_logs"):
            for log in op.get(kind, []):
                yield op, kind, log


def check_ids(name, doc):
    for _, _, log in iter_logs(doc):
        key = base64.b64decode(log["key"], validate=True)
        computed = base64.b64encode(hashlib.sha256(key).digest()).decode()
        if computed != log["log_id"]:
            fail("%s: %r: log_id %s != SHA-256(key) %s"
                 % (name, log.get("description"), log["log_id"], computed))


def index(doc):
    return {log["log_id"]: (op, kind, log) for op, kind, log in iter_logs(doc)}


def state_of(log):
    st = log.get("state") or {}
    for name, body in st.items():
        return name, body.get("timestamp")
    return None, None


def verify_android_signature(sources):
    openssl = shutil.which("openssl")
    if openssl is None:
        print("warning: openssl not found; Android list signature NOT verified", file=sys.stderr)
        return False
    with open(os.path.join(sources, ANDROID_SIG), "rb") as f:
        sig = base64.b64decode(f.read())
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(sig)
        tmp.flush()
        res = subprocess.run(
            [openssl, "dgst", "-sha256", "-verify", os.path.join(sources, ANDROID_KEY),
             "-signature", tmp.name, os.path.join(sources, ANDROID)],
            capture_output=True, text=True, check=False)
    if res.returncode != 0:
        fail("Android log list signature does not verify: " + res.stdout + res.stderr)
    return True


def build(sources):
    notes = []
    _, base = load(os.path.join(sources, BASE))
    others = {}
    for name in (ANDROID, APPLE, STATE_OVERLAY):
        _, others[name] = load(os.path.join(sources, name))
    for name, doc in [(BASE, base)] + list(others.items()):
        check_ids(name, doc)
    if verify_android_signature(sources):
        notes.append("Android list signature verified with " + ANDROID_KEY)

    idx = {name: index(doc) for name, doc in others.items()}
    overlay = idx[STATE_OVERLAY]

    out_ops = []
    for op in base["operators"]:
        new_op = {"name": op["name"], "email": op.get("email", [])}
        for kind in ("logs", "tiled_logs"):
            kept = []
            for log in op.get(kind, []):
                log_id = log["log_id"]
                desc = log["description"]
                if log_id in MIMIC_LOG_IDS:
                    notes.append("dropped %s: %s" % (desc, MIMIC_LOG_IDS[log_id]))
                    continue
                if log_id in PLACEHOLDER_LOG_IDS:
                    notes.append("dropped %r: %s" % (desc, PLACEHOLDER_LOG_IDS[log_id]))
                    continue
                for name, other in idx.items():
                    if log_id in other and other[log_id][2]["key"] != log["key"]:
                        fail("%r: key differs between %s and %s" % (desc, BASE, name))
                log = json.loads(json.dumps(log))  # deep copy
                if log_id in overlay:
                    o_state, o_ts = state_of(overlay[log_id][2])
                    b_state, b_ts = state_of(log)
                    if (o_state in RESTRICTIVE_STATES and o_state != b_state
                            and (b_ts is None or o_ts > b_ts)):
                        log["state"] = overlay[log_id][2]["state"]
                        notes.append("state of %r: %s (%s) -> %s (%s) from %s"
                                     % (desc, b_state, b_ts, o_state, o_ts, STATE_OVERLAY))
                kept.append(log)
            new_op[kind] = kept
        out_ops.append(new_op)

    out = {
        "version": VERSION,
        "log_list_timestamp": LOG_LIST_TIMESTAMP,
        "ctdns_data_timestamp": DATA_TIMESTAMP,
        "operators": out_ops,
    }
    text = json.dumps(out, indent=2, ensure_ascii=False) + "\n"
    count = sum(len(o["logs"]) + len(o["tiled_logs"]) for o in out_ops)
    notes.append("%d logs from %d operators" % (count, len(out_ops)))
    return text, notes


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", required=True, help="directory holding the source lists")
    ap.add_argument("--out", default=os.path.join(here, "..", "crates", "ctdns-verify", "certs", "ct_log_list.json"))
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if --out differs from the regenerated list")
    args = ap.parse_args()
    text, notes = build(args.sources)
    for n in notes:
        print(n, file=sys.stderr)
    if args.check:
        with open(args.out, encoding="utf-8") as f:
            if f.read() != text:
                fail("%s is not what the sources produce; rerun without --check" % args.out)
        print("%s is up to date" % args.out, file=sys.stderr)
        return
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote " + args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
