#!/usr/bin/env bash
# System calls per record of a logd that ingests ACE records on one connection and forwards
# them to a sink that reads and discards (whole process, all threads, counted with perf's
# syscall tracepoints), for a before/after comparison of the forwarder:
#
#   benches/scripts/forward-syscalls.sh LOGD INGEST [RECORDS]
#
# Prints logd's forwarding summary and, per system call, the count and the count per 1,000
# records. Needs perf with access to the syscall tracepoints, and python3 (the sink).
set -euo pipefail
bin=$1 ingest=$2 records=${3:-200000}
work=$(mktemp -d)
port=$((24000 + RANDOM % 1000)) sink=$((25000 + RANDOM % 1000))
python3 - "$sink" <<'PY' &
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(64)
def drain(c):
    with c:
        while c.recv(1 << 20):
            pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
PY
sinkpid=$!
trap 'kill $sinkpid 2>/dev/null; rm -rf "$work"' EXIT
ev=syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex
for _ in $(seq 1 500); do (exec 3<>"/dev/tcp/127.0.0.1/$sink") 2>/dev/null && break; sleep 0.01; done
"$bin" --ace-port "$port" --syslog-port off --bind 127.0.0.1 --data-dir "$work/data" --concurrency reactor \
    --fsync none --rotate-bytes 1000000000000 --idle-timeout 3600 --forward "127.0.0.1:$sink" >"$work/logd.out" 2>&1 &
pid=$!
for _ in $(seq 1 2000); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.01; done
perf stat -e "$ev" -p "$pid" -o "$work/perf" &
perfpid=$!
sleep 0.5
"$ingest" --addr "127.0.0.1:$port" --format ace --count-dir "$work/data" --connections 1 --records "$records" \
    --message-bytes 64 --marker "sc" --timeout 120 >/dev/null
kill "$pid"; wait "$pid" || true
wait "$perfpid" || true
grep -o "[0-9]* forwarded, [0-9]* spooled, [0-9]* queued" "$work/logd.out" | head -1
awk -v n="$records" '/syscalls:/ {gsub(",","",$1); printf "%s %d %.2f\n", $2, $1, 1000*$1/n}' "$work/perf"
