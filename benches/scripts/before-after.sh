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
# system-ticks [p50 p99]`) and, per (wire, conns), the medians of the per-round ratios
# new/old of records/s, of CPU and of its user part (logd's own code; the system part is
# mostly the copies into the page cache and socket reads, whose cost on a VM swings with the
# host's memory: see docs/benchmarks.md). Servers run on 127.0.0.1, high ports, and are
# stopped by PID.
#
# Environment: FSYNC (logd's --fsync, default none), CONCURRENCY (default reactor) and THREADS
# (its --threads), WIRES and CONNS (default "ace syslog" and "1 16"), and PROBE: the path of
# `relp-probe`, run as a second client over RELP for the length of each flood, whose p50 and
# p99 round trips (microseconds) are two more columns, with their ratios new/old.
set -euo pipefail
read -r -a extra <<<"${LOGD_EXTRA:-}"
old=$1 new=$2 ingest=$3 rounds=${4:-5} records=${5:-400000}
fsync=${FSYNC:-none} concurrency=${CONCURRENCY:-reactor} probe=${PROBE:-}
threads=(); [[ -n ${THREADS:-} ]] && threads=(--threads "$THREADS")
wires=${WIRES:-ace syslog} conns_list=${CONNS:-1 16}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=${PORT:-23000}
results=$work/results
for round in $(seq 1 "$rounds"); do
    for wire in $wires; do
        for conns in $conns_list; do
            builds=(old new)
            ((round % 2 == 0)) && builds=(new old)
            for build in "${builds[@]}"; do
                bin=$old
                [[ $build == new ]] && bin=$new
                port=$((port + 2))
                data=$work/data-$round-$wire-$conns-$build
                mkdir -p "$data"
                if [[ $wire == ace ]]; then ports=(--ace-port "$port" --syslog-port off); else ports=(--ace-port off --syslog-port "$port"); fi
                [[ -n $probe ]] && ports+=(--relp-port $((port + 1)))
                "$bin" "${ports[@]}" --bind 127.0.0.1 --data-dir "$data" --concurrency "$concurrency" "${threads[@]}" \
                    --fsync "$fsync" --rotate-bytes 1000000000000 --idle-timeout 3600 "${extra[@]}" >/dev/null 2>&1 &
                pid=$!
                for _ in $(seq 1 2000); do
                    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
                    sleep 0.01
                done
                if [[ -n $probe ]]; then
                    rm -f "$work/flood-over"
                    "$probe" --addr "127.0.0.1:$((port + 1))" --until "$work/flood-over" >"$work/probe.json" &
                    probe_pid=$!
                fi
                rate=$("$ingest" --addr "127.0.0.1:$port" --format "$wire" --count-dir "$data" \
                    --connections "$conns" --records $((records / conns)) --message-bytes 64 \
                    --marker "ba${round}x" --timeout 120 |
                    sed -n 's/.*"records_per_sec":\([0-9.]*\).*/\1/p')
                # logd's user + system CPU ticks over its whole life (start-up is a few), and each.
                cpu=$(awk '{print $14 + $15, $14, $15}' "/proc/$pid/stat")
                lat=""
                if [[ -n $probe ]]; then
                    touch "$work/flood-over"
                    wait "$probe_pid" || true
                    lat=$(sed -n 's/.*"p50_us":\([0-9]*\),"p99_us":\([0-9]*\).*/\1 \2/p' "$work/probe.json")
                fi
                kill "$pid"; wait "$pid" || true
                rm -rf "$data"
                echo "$round $wire $conns $build $rate $cpu $lat" | tee -a "$results"
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
for wire in $wires; do
    for conns in $conns_list; do
        rate=$(ratio 5 "$wire" "$conns")
        cpu=$(ratio 6 "$wire" "$conns")
        user=$(ratio 7 "$wire" "$conns")
        echo "$wire $conns connections: records/s $(echo "$rate" | median) (rounds: $(echo $rate)); CPU $(echo "$cpu" | median) (rounds: $(echo $cpu)); user CPU $(echo "$user" | median) (rounds: $(echo $user))"
        if [[ -n $probe ]]; then
            p50=$(ratio 9 "$wire" "$conns")
            p99=$(ratio 10 "$wire" "$conns")
            echo "  second client's RELP round trip: p50 $(echo "$p50" | median) (rounds: $(echo $p50)); p99 $(echo "$p99" | median) (rounds: $(echo $p99))"
        fi
    done
done
