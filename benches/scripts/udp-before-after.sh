#!/usr/bin/env bash
# Syslog over UDP into two logd builds side by side, interleaved round-robin, with the
# options of before-after.sh (reactor, --fsync none, rotation out of reach):
#
#   benches/scripts/udp-before-after.sh OLD_LOGD NEW_LOGD [ROUNDS] [RECORDS] [RATE]
#
# A UDP sender cannot be slowed down by the server, so records/s is the sender's rate (or
# the kernel drops); what tells the builds apart is logd's CPU per stored record. The sender
# (Python, one socket) sends RECORDS RFC 5424 datagrams like `ingest`'s (64-byte messages,
# the same header) at about RATE per second, in bursts of 32, then waits until logd's files
# stop growing. Prints one line per run (`round build stored cpu-ticks ticks-per-100k`) and
# the median of the per-round ratios new/old of CPU per stored record, and the stored
# counts (a datagram not stored was dropped by the kernel: the receive buffer was full).
set -euo pipefail
old=$1 new=$2 rounds=${3:-5} records=${4:-400000} rate=${5:-100000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=24000
results=$work/results
cat >"$work/send.py" <<'EOF'
import socket, sys, time
port, n, rate, marker = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
def msg(i):
    text = f"{marker} c0 r{i} "
    while len(text) < 64:
        text += chr(ord('a') + len(text) % 26)
    return f"<14>1 2025-11-24T16:00:00.000000Z bench-host ingest 4242 - - {text}".encode()
frames = [msg(i) for i in range(n)]
start = time.monotonic()
for at in range(0, n, 32):
    for f in frames[at:at + 32]:
        s.send(f)
    ahead = start + (at + 32) / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
EOF
stored_lines() { cat "$1"/*.log 2>/dev/null | grep -c "$2" || true; }
for round in $(seq 1 "$rounds"); do
    builds=(old new)
    ((round % 2 == 0)) && builds=(new old)
    for build in "${builds[@]}"; do
        bin=$old
        [[ $build == new ]] && bin=$new
        port=$((port + 1))
        data=$work/data-$round-$build
        mkdir -p "$data"
        "$bin" --ace-port off --syslog-port "$port" --bind 127.0.0.1 --data-dir "$data" --concurrency reactor \
            --fsync none --rotate-bytes 1000000000000 --idle-timeout 3600 >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 1 2000); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            sleep 0.01
        done
        marker="ub${round}x"
        python3 "$work/send.py" "$port" "$records" "$rate" "$marker"
        # Wait until the files stop growing (logd drains its socket buffer).
        last=-1
        while :; do
            now=$(stored_lines "$data" "$marker")
            [[ $now == "$last" ]] && break
            last=$now
            sleep 0.5
        done
        cpu=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        kill "$pid"; wait "$pid" || true
        rm -rf "$data"
        per=$(awk -v c="$cpu" -v s="$last" 'BEGIN{printf "%.3f", s ? c * 100000 / s : 0}')
        echo "$round $build $last $cpu $per" | tee -a "$results"
    done
done
ratios=$(for round in $(seq 1 "$rounds"); do
    o=$(awk -v r="$round" '$1==r&&$2=="old"{print $5}' "$results")
    n=$(awk -v r="$round" '$1==r&&$2=="new"{print $5}' "$results")
    awk -v o="$o" -v n="$n" 'BEGIN{printf "%.4f\n", n/o}'
done | sort -g)
median() { awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
echo "UDP, $records datagrams at ~$rate/s: CPU per stored record new/old median $(echo "$ratios" | median) (rounds: $(echo $ratios))"
for build in old new; do
    echo "$build stored per round: $(awk -v b="$build" '$2==b{printf "%s ", $3}' "$results")"
done
