#!/usr/bin/env bash
# logd shipping into ClickHouse, side by side with the tool an operator would script
# (`clickhouse-client --query "INSERT ... FORMAT TSV"` fed the same rows from a file),
# interleaved round-robin in one run, and the "counts by severity per host" query over
# one hour of 1M rows:
#
#   benches/scripts/clickhouse.sh LOGD LOGC [ROUNDS] [RECORDS]
#
# LOGD_EXTRA adds options to logd's command line (such as `--clickhouse-batch 100000`).
#
# One clickhouse-server (Debian's) runs in the foreground on 127.0.0.1, high ports, with a
# fresh data directory under a temporary directory, and is stopped by PID. Per round:
#   logd:   logd --clickhouse (default batching: 20,000 rows or 1 s) takes RECORDS syslog
#           records from `logc bench` (4 connections, 100 bytes); timed from the first
#           record sent until ClickHouse counts RECORDS rows in the table (end to end).
#   spool:  logd takes the same records while its ClickHouse is away (a dead port), stops
#           (its spool on disk), and is started again pointing at ClickHouse; timed from
#           that start until ClickHouse counts RECORDS rows: rows on disk to rows in
#           ClickHouse, the same starting point as clickhouse-client's file.
#   client: the rows logd inserted, exported once as TSV to a file, inserted into a fresh
#           table by clickhouse-client; timed around clickhouse-client.
# Prints one line per run and the median of the per-round ratios logd/client.
set -euo pipefail
logd=$1 logc=$2 rounds=${3:-5} records=${4:-500000}
server=$(command -v clickhouse-server || true)
client=$(command -v clickhouse-client || true)
if [[ -z $server || -z $client ]]; then
    echo "skipped: clickhouse-server not installed (apt-get install clickhouse-server clickhouse-client)"
    exit 0
fi
work=$(mktemp -d)
chpid=
logdpid=
cleanup() {
    [[ -n $logdpid ]] && kill "$logdpid" 2>/dev/null && wait "$logdpid" 2>/dev/null || true
    [[ -n $chpid ]] && kill "$chpid" 2>/dev/null && wait "$chpid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
http=28223 tcp=29100 port=23900
mkdir -p "$work/ch"
cat >"$work/ch/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <http_port>$http</http_port>
    <tcp_port>$tcp</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>$work/ch/data/</path>
    <tmp_path>$work/ch/data/tmp/</tmp_path>
    <user_files_path>$work/ch/data/user_files/</user_files_path>
    <format_schema_path>$work/ch/data/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>5368709</mark_cache_size>
    <uncompressed_cache_size>8589934</uncompressed_cache_size>
</yandex>
EOF
cat >"$work/ch/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
    <quotas><default></default></quotas>
</yandex>
EOF
(cd "$work/ch" && exec "$server" --config-file="$work/ch/config.xml" >"$work/ch/server.log" 2>&1) &
chpid=$!
q() { curl -sS --fail-with-body --data-binary "$1" "http://127.0.0.1:$http/"; }
for _ in $(seq 1 600); do
    curl -s "http://127.0.0.1:$http/ping" >/dev/null 2>&1 && break
    sleep 0.05
done
schema() {
    echo "CREATE TABLE $1 (time DateTime('UTC'), usec UInt32, host String, app String, pid String, facility UInt8, severity UInt8, sent String, msgid String, sd String, message String, logd String, seq UInt64) ENGINE = MergeTree() PARTITION BY toYYYYMM(time) ORDER BY (host, time)"
}
now() { date +%s.%N; }
results=$work/results
rows=$work/rows.tsv
run_logd() {
    local round=$1 table=logs_logd_$1
    port=$((port + 1))
    local data=$work/logd-$round
    "$logd" --ace-port off --syslog-port "$port" --data-dir "$data" --rotate-bytes 1000000000000 \
        --clickhouse "http://127.0.0.1:$http" --clickhouse-table "$table" --clickhouse-create ${LOGD_EXTRA:-} \
        >"$work/logd-$round.out" 2>"$work/logd-$round.err" &
    logdpid=$!
    for _ in $(seq 1 600); do
        grep -q "listening" "$work/logd-$round.out" 2>/dev/null && break
        sleep 0.05
    done
    local t0 t1 n
    t0=$(now)
    "$logc" bench --server "127.0.0.1:$port" --count "$records" --conns 4 --size 100 >/dev/null 2>&1
    while :; do
        n=$(q "SELECT count() FROM $table" 2>/dev/null) || n=0
        [[ $n =~ ^[0-9]+$ && $n -ge $records ]] && break
        sleep 0.02
    done
    t1=$(now)
    kill "$logdpid"
    wait "$logdpid" || true
    logdpid=
    if [[ ! -s $rows ]]; then
        "$client" --port "$tcp" --query "SELECT * FROM $table FORMAT TSV" >"$rows"
    fi
    echo "$round logd $(echo "$records / ($t1 - $t0)" | bc -l)" >>"$results"
}
wait_listening() {
    for _ in $(seq 1 600); do
        grep -q "listening" "$1" 2>/dev/null && break
        sleep 0.05
    done
}
run_spool() {
    local round=$1 table=logs_spool_$1
    port=$((port + 1))
    local data=$work/spool-$round
    "$logd" --ace-port off --syslog-port "$port" --data-dir "$data" --rotate-bytes 1000000000000 \
        --clickhouse "http://127.0.0.1:1" --clickhouse-table "$table" --stop-timeout 0s ${LOGD_EXTRA:-} \
        >"$work/spool-$round.out" 2>"$work/spool-$round.err" &
    logdpid=$!
    wait_listening "$work/spool-$round.out"
    "$logc" bench --server "127.0.0.1:$port" --count "$records" --conns 4 --size 100 >/dev/null 2>&1
    kill "$logdpid"
    wait "$logdpid" || true
    logdpid=
    grep -q "clickhouse ledger: received=$records recovered=0 queued=$records" "$work/spool-$round.out" \
        || { echo "the spool does not hold $records rows:" >&2; cat "$work/spool-$round.out" >&2; exit 1; }
    local t0 t1 n
    t0=$(now)
    "$logd" --ace-port off --syslog-port off --data-dir "$data" \
        --clickhouse "http://127.0.0.1:$http" --clickhouse-table "$table" --clickhouse-create ${LOGD_EXTRA:-} \
        >"$work/spool-$round.out2" 2>"$work/spool-$round.err2" &
    logdpid=$!
    while :; do
        n=$(q "SELECT count() FROM $table" 2>/dev/null) || n=0
        [[ $n =~ ^[0-9]+$ && $n -ge $records ]] && break
        sleep 0.02
    done
    t1=$(now)
    kill "$logdpid"
    wait "$logdpid" || true
    logdpid=
    echo "$round spool $(echo "$records / ($t1 - $t0)" | bc -l)" >>"$results"
}
run_client() {
    local round=$1 table=logs_client_$1
    q "$(schema "$table")"
    local t0 t1
    t0=$(now)
    "$client" --port "$tcp" --query "INSERT INTO $table FORMAT TSV" <"$rows"
    t1=$(now)
    local n
    n=$(q "SELECT count() FROM $table")
    [[ $n -eq $records ]] || { echo "clickhouse-client inserted $n of $records" >&2; exit 1; }
    echo "$round client $(echo "$records / ($t1 - $t0)" | bc -l)" >>"$results"
}
# The first logd run makes the rows file; it is a warm-up, not counted.
run_logd 0
for round in $(seq 1 "$rounds"); do
    case $((round % 3)) in
        1) run_logd "$round"; run_spool "$round"; run_client "$round" ;;
        2) run_client "$round"; run_logd "$round"; run_spool "$round" ;;
        0) run_spool "$round"; run_client "$round"; run_logd "$round" ;;
    esac
done
grep -v '^0 ' "$results" | while read -r r who rate; do printf '%s %-6s %10.0f records/s\n' "$r" "$who" "$rate"; done
median() { sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}'; }
for who in logd spool client; do
    echo "median $who records/s: $(awk -v w="$who" '$2 == w && $1 > 0 {print $3}' "$results" | median)"
done
for who in logd spool; do
    echo "median of per-round ratios $who/client: $(awk -v w="$who" '$1 > 0 {r[$1, $2] = $3; n[$1] = 1} END {for (k in n) print r[k, w] / r[k, "client"]}' "$results" | median)"
done

# The query: counts by severity per host over one hour of 1M rows (100 hosts), through
# `logc query --counts` (HTTP, as an operator runs it), 7 times, median wall time.
q "$(schema logs_hour)"
q "INSERT INTO logs_hour SELECT toDateTime('2026-12-05 10:00:00') + intDiv(number, 278) AS time, number % 1000000 AS usec, concat('host-', toString(number % 100)) AS host, 'app' AS app, toString(number % 5000) AS pid, 1 AS facility, toUInt8(number % 8) AS severity, '-' AS sent, '-' AS msgid, '-' AS sd, concat('message ', toString(number)) AS message, 'bench' AS logd, number AS seq FROM numbers(1000000)"
echo "rows in logs_hour: $(q "SELECT count() FROM logs_hour"), hours: $(q "SELECT (max(time) - min(time)) / 3600 FROM logs_hour")"
for i in $(seq 1 7); do
    t0=$(now)
    "$logc" query --clickhouse "http://127.0.0.1:$http" --table logs_hour --counts \
        --since 2026-12-05T10:00:00Z --until 2026-12-05T11:00:00Z >"$work/counts.txt"
    t1=$(now)
    echo "$(echo "($t1 - $t0) * 1000" | bc -l)"
done | sort -g | awk '{a[NR]=$1} END {printf "median logc query --counts over 1M rows: %.1f ms (min %.1f, max %.1f)\n", a[4], a[1], a[7]}'
echo "lines of the answer: $(wc -l <"$work/counts.txt") (a header, then one per host and severity present)"
