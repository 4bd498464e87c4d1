#!/usr/bin/env python3
"""Builds of the workspace, side by side in one interleaved run.

Usage: compare-builds.py ROUNDS LABEL=RELEASE_DIR LABEL=RELEASE_DIR [...]

Each directory is a `target/release` holding echo-raw-mio, echo-reactor, echo-lf and logd
(`cargo build --release -p benches --bins` and `-p logging-service --bin logd`).
The client is always the LAST build's `loadgen` and `ingest`, so only the servers differ.
Every round runs every (server, build, load) once, the order of the builds rotating from
round to round; the report gives, per server and load, each build's median over the rounds
and the median over the rounds of the per-round ratio of each later build to the first
(requests/s and p99; records/s for ingest), with the rounds' range.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(sys.argv[1])
BUILDS = [tuple(a.split("=", 1)) for a in sys.argv[2:]]
NEW = BUILDS[-1][1]
WARMUP, DURATION = "1", "3"

ECHO = [
    ("raw mio", ["echo-raw-mio"]),
    ("reactor", ["echo-reactor"]),
    ("leader/followers, 1 thread", ["echo-lf", "--threads", "1"]),
    ("leader/followers, 2 threads", ["echo-lf", "--threads", "2"]),
]
ECHO_CONNS = [64, 512]
INGEST = [("logd reactor", "reactor"), ("logd leader/followers", "leader-followers")]
INGEST_CONNS = [1, 16]
INGEST_RECORDS = 1_000_000


def echo_run(build, argv, conns):
    srv = subprocess.Popen(
        [os.path.join(build, argv[0]), "--addr", "127.0.0.1:0"] + argv[1:],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = srv.stdout.readline().split()
        assert line[0] == "LISTENING", line
        out = subprocess.run(
            [os.path.join(NEW, "loadgen"), "--addr", line[1], "--connections", str(conns),
             "--warmup", WARMUP, "--duration", DURATION],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        assert r["mismatches"] == 0
        return r["requests_per_sec"], r["p99_us"]
    finally:
        srv.kill()
        srv.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ingest_run(build, model, conns, run):
    work = tempfile.mkdtemp(prefix="osl-ingest-")
    data = os.path.join(work, "data")
    port = free_port()
    srv = subprocess.Popen(
        [os.path.join(build, "logd"), "--ace-port", str(port), "--syslog-port", "off",
         "--bind", "127.0.0.1", "--data-dir", data, "--concurrency", model]
        + (["--threads", "2"] if model != "reactor" else [])
        + ["--fsync", "none", "--rotate-bytes", "1000000000000", "--idle-timeout", "3600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        out = subprocess.run(
            [os.path.join(NEW, "ingest"), "--addr", f"127.0.0.1:{port}", "--format", "ace",
             "--count-dir", data, "--connections", str(conns),
             "--records", str(INGEST_RECORDS // conns), "--message-bytes", "64",
             "--marker", f"oslrun{run}x", "--timeout", "120"],
            capture_output=True, text=True, check=True, timeout=180,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        return r["records_per_sec"], None
    finally:
        srv.kill()
        srv.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    samples = {}  # (server, load) -> list of {label: (rate, p99)}
    run = 0
    for rnd in range(ROUNDS):
        k = rnd % len(BUILDS)
        order = BUILDS[k:] + BUILDS[:k]
        for conns in ECHO_CONNS:
            for name, argv in ECHO:
                got = {label: echo_run(build, argv, conns) for label, build in order}
                key = (name, f"{conns} connections")
                samples.setdefault(key, []).append(got)
                print(f"round {rnd + 1} {key}: {got}", flush=True)
        for conns in INGEST_CONNS:
            for name, model in INGEST:
                got = {}
                for label, build in order:
                    run += 1
                    got[label] = ingest_run(build, model, conns, run)
                key = (name, f"{conns} connections")
                samples.setdefault(key, []).append(got)
                print(f"round {rnd + 1} {key}: {got}", flush=True)
    base = BUILDS[0][0]
    later = [label for label, _ in BUILDS[1:]]
    print()
    head = "| server | load | " + " | ".join(f"{l} /s" for l, _ in BUILDS)
    head += "".join(f" | {l} ÷ {base} (range) | p99 {l} ÷ {base}" for l in later) + " |"
    print(head)
    print("|---|---|" + "---:|" * (len(BUILDS) + 2 * len(later)))
    for (name, load), rounds in samples.items():
        row = f"| {name} | {load} | "
        row += " | ".join(f"{statistics.median(r[l][0] for r in rounds):,.0f}" for l, _ in BUILDS)
        for l in later:
            ratio = [r[l][0] / r[base][0] for r in rounds]
            p99 = [r[l][1] / r[base][1] for r in rounds if r[l][1] is not None]
            p = f"{statistics.median(p99):.3f}×" if p99 else "–"
            row += f" | {statistics.median(ratio):.3f}× ({min(ratio):.2f}–{max(ratio):.2f}) | {p}"
        print(row + " |")


main()
