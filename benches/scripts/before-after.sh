#!/usr/bin/env bash
# Ingest of two logd builds side by side, interleaved round-robin, the way
# `cargo xtask bench-logging` measures (same `ingest` client, same logd options:
# reactor, --fsync none, rotation out of reach), for a before/after comparison:
#
#   benches/scripts/before-after.sh OLD_LOGD NEW_LOGD INGEST [ROUNDS] [RECORDS]
#
# LOGD_EXTRA adds options to both logd runs (word-split), e.g. LOGD_EXTRA="--forward
# 127.0.0.1:PORT" to measure ingest while forwarding to an upstream started beforehand.
#
# Prints one line per run (`round wire conns build records/s cpu-ticks user-ticks
# system-ticks`) and, per (wire, conns), the medians of the per-round ratios new/old of
# records/s, of CPU and of its user part (logd's own code; the system part is mostly the
# copies into the page cache and socket reads, whose cost on a VM swings with the host's
# memory: see docs/benchmarks.md). Servers run on 127.0.0.1, high ports, and are stopped
# by PID.
set -euo pipefail
read -r -a extra <<<"${LOGD_EXTRA:-}"
old=$1 new=$2 ingest=$3 rounds=${4:-5} records=${5:-400000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=23000
results=$work/results
for round in $(seq 1 "$rounds"); do
    for wire in ace syslog; do
        for conns in 1 16; do
            builds=(old new)
            ((round % 2 == 0)) && builds=(new old)
            for build in "${builds[@]}"; do
                bin=$old
                [[ $build == new ]] && bin=$new
                port=$((port + 1))
                data=$work/data-$round-$wire-$conns-$build
                mkdir -p "$data"
                if [[ $wire == ace ]]; then ports=(--ace-port "$port" --syslog-port off); else ports=(--ace-port off --syslog-port "$port"); fi
                "$bin" "${ports[@]}" --bind 127.0.0.1 --data-dir "$data" --concurrency reactor \
                    --fsync none --rotate-bytes 1000000000000 --idle-timeout 3600 "${extra[@]}" >/dev/null 2>&1 &
                pid=$!
                for _ in $(seq 1 2000); do
                    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
                    sleep 0.01
                done
                rate=$("$ingest" --addr "127.0.0.1:$port" --format "$wire" --count-dir "$data" \
                    --connections "$conns" --records $((records / conns)) --message-bytes 64 \
                    --marker "ba${round}x" --timeout 120 |
                    sed -n 's/.*"records_per_sec":\([0-9.]*\).*/\1/p')
                # logd's user + system CPU ticks over its whole life (start-up is a few), and each.
                cpu=$(awk '{print $14 + $15, $14, $15}' "/proc/$pid/stat")
                kill "$pid"; wait "$pid" || true
                rm -rf "$data"
                echo "$round $wire $conns $build $rate $cpu" | tee -a "$results"
            done
        done
    done
done
ratio() { # column, wire, conns: the sorted per-round ratios new/old
    for round in $(seq 1 "$rounds"); do
        o=$(awk -v r="$round" -v w="$2" -v c="$3" -v k="$1" '$1==r&&$2==w&&$3==c&&$4=="old"{print $k}' "$results")
        n=$(awk -v r="$round" -v w="$2" -v c="$3" -v k="$1" '$1==r&&$2==w&&$3==c&&$4=="new"{print $k}' "$results")
        awk -v o="$o" -v n="$n" 'BEGIN{printf "%.4f\n", n/o}'
    done | sort -g
}
median() { awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
echo "medians of per-round ratios new/old (records/s; CPU ticks and user ticks, lower is better):"
for wire in ace syslog; do
    for conns in 1 16; do
        rate=$(ratio 5 "$wire" "$conns")
        cpu=$(ratio 6 "$wire" "$conns")
        user=$(ratio 7 "$wire" "$conns")
        echo "$wire $conns connections: records/s $(echo "$rate" | median) (rounds: $(echo $rate)); CPU $(echo "$cpu" | median) (rounds: $(echo $cpu)); user CPU $(echo "$user" | median) (rounds: $(echo $user))"
    done
done
