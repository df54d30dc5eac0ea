#!/usr/bin/env bash
# Proxy overhead, side by side: pgbench -S against PostgreSQL directly,
# through pgbouncer (session mode) and through uuidgate, on this machine.
#
# Usage: bench/proxy_bench.sh
# Environment: DURATION (s per run, 15), ROUNDS (3), SCALE (10), CLIENTS (8),
#   THREADS (2), MODES ("simple extended"), UUIDGATE_BIN, PG_BINDIR, KEEP=1 to
#   keep the work directory.
#
# The three targets run interleaved, round after round, so that drift on the
# machine hits all of them alike; each figure is the median over the rounds.
# As root, PostgreSQL and pgbouncer run as the postgres user (both refuse
# root); uuidgate runs as the caller.
set -euo pipefail

DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-10}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
MODES=${MODES:-"simple extended"}

ROOT=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "proxy_bench: $*" >&2; exit 1; }

find_uuidgate() {
	if [[ -n ${UUIDGATE_BIN:-} ]]; then echo "$UUIDGATE_BIN"; return; fi
	local newest="" c
	for c in "$ROOT/build/uuidgate" "$ROOT/build/proxy/uuidgate"; do
		if [[ -x $c && ( -z $newest || $c -nt $newest ) ]]; then newest=$c; fi
	done
	[[ -n $newest ]] || die "no uuidgate binary: build it with 'ninja -C build'"
	echo "$newest"
}

find_pg_bindir() {
	if [[ -n ${PG_BINDIR:-} ]]; then echo "$PG_BINDIR"; return; fi
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -1)
	[[ -n $d ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
	echo "$d"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
	local port=$1 i
	for ((i = 0; i < 200; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	die "nothing listening on port $port"
}

UUIDGATE=$(find_uuidgate)
PGBIN=$(find_pg_bindir)
PGBOUNCER=$(command -v pgbouncer || true)
[[ -n $PGBOUNCER ]] || die "pgbouncer is not installed"
command -v pgbench >/dev/null || die "pgbench is not installed"

as_pg=()
if [[ $(id -u) -eq 0 ]]; then
	as_pg=(runuser -u postgres --)
fi

WORK=$(mktemp -d /tmp/uuidgate-bench.XXXXXX)
chmod 755 "$WORK"
PGDATA=$WORK/data
PG_PORT=$(free_port)
BOUNCER_PORT=$(free_port)
GATE_PORT=$(free_port)
GATE_PID=""
PG_STARTED=""

cleanup() {
	set +e
	if [[ -n $GATE_PID ]]; then
		kill -INT "$GATE_PID" 2>/dev/null
		wait "$GATE_PID" 2>/dev/null
	fi
	if [[ -f $WORK/pgbouncer.pid ]]; then
		local bpid
		bpid=$(cat "$WORK/pgbouncer.pid")
		kill -INT "$bpid" 2>/dev/null
		for ((i = 0; i < 100; i++)); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.05; done
	fi
	if [[ -n $PG_STARTED ]]; then
		"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
	fi
	if [[ -z ${KEEP:-} ]]; then rm -rf "$WORK"; else echo "work directory kept: $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ${#as_pg[@]} -gt 0 ]]; then chown postgres: "$WORK"; fi

echo "== setup: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), $($PGBOUNCER --version | head -1), uuidgate $("$UUIDGATE" --version | awk '{print $2}')"
"${as_pg[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
cat >>"$PGDATA/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK'
max_connections = 100
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/postgres.log" -w start >/dev/null
PG_STARTED=1
psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "create database bench" >/dev/null
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U postgres bench 2>&1 | tail -1

cat >"$WORK/userlist.txt" <<EOF
"postgres" ""
EOF
cat >"$WORK/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = $((CLIENTS + 4))
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
EOF
if [[ ${#as_pg[@]} -gt 0 ]]; then chown postgres: "$WORK/userlist.txt" "$WORK/pgbouncer.ini"; fi
"${as_pg[@]}" "$PGBOUNCER" -d "$WORK/pgbouncer.ini"
wait_port "$BOUNCER_PORT"

cat >"$WORK/uuidgate.ini" <<EOF
[uuidgate]
upstream = host=127.0.0.1 port=$PG_PORT dbname=bench user=postgres sslmode=disable
listen_addr = 127.0.0.1
listen_port = $GATE_PORT
migrate_on_start = no
log_level = warning
EOF
"$UUIDGATE" -c "$WORK/uuidgate.ini" >"$WORK/uuidgate.log" 2>&1 &
GATE_PID=$!
wait_port "$GATE_PORT"

declare -A PORT=([direct]=$PG_PORT [pgbouncer]=$BOUNCER_PORT [uuidgate]=$GATE_PORT)
TARGETS=(direct pgbouncer uuidgate)
RESULTS=$WORK/results.txt
: >"$RESULTS"

run_one() {
	local target=$1 mode=$2 round=$3 out tps lat
	if ! kill -0 "$GATE_PID" 2>/dev/null; then
		die "uuidgate is no longer running; its log:"$'\n'"$(tail -20 "$WORK/uuidgate.log")"
	fi
	out=$(pgbench -n -S -M "$mode" -c "$CLIENTS" -j "$THREADS" -T "$DURATION" \
		-h 127.0.0.1 -p "${PORT[$target]}" -U postgres bench 2>&1) ||
		die "pgbench failed against $target ($mode):"$'\n'"$out"$'\n'"uuidgate log:"$'\n'"$(tail -20 "$WORK/uuidgate.log")"
	if grep -q "number of failed transactions: [1-9]" <<<"$out"; then
		die "pgbench reported failed transactions against $target ($mode):"$'\n'"$out"
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
	[[ -n $tps && -n $lat ]] || die "cannot read pgbench's output:"$'\n'"$out"
	echo "$mode $target $round $tps $lat" >>"$RESULTS"
	printf '  round %d  %-8s  %-9s  %10.0f tps  %7.3f ms\n' "$round" "$mode" "$target" "$tps" "$lat"
}

echo "== pgbench -S, $CLIENTS clients, -j $THREADS, ${DURATION}s per run, $ROUNDS rounds, scale $SCALE"
for ((round = 1; round <= ROUNDS; round++)); do
	for mode in $MODES; do
		for target in "${TARGETS[@]}"; do
			run_one "$target" "$mode" "$round"
		done
	done
done

echo
echo "== medians over $ROUNDS rounds"
python3 - "$RESULTS" "$MODES" <<'EOF'
import statistics
import sys

rows = [line.split() for line in open(sys.argv[1])]
modes = sys.argv[2].split()
print(f"{'mode':<9} {'target':<10} {'tps':>10} {'latency ms':>11}")
for mode in modes:
    med = {}
    for target in ("direct", "pgbouncer", "uuidgate"):
        runs = [r for r in rows if r[0] == mode and r[1] == target]
        tps = statistics.median(float(r[3]) for r in runs)
        lat = statistics.median(float(r[4]) for r in runs)
        med[target] = (tps, lat)
        print(f"{mode:<9} {target:<10} {tps:>10.0f} {lat:>11.3f}")
    d, b, u = med["direct"], med["pgbouncer"], med["uuidgate"]
    print(f"{mode:<9} ratios     tps uuidgate/direct {u[0] / d[0]:.3f}, uuidgate/pgbouncer {u[0] / b[0]:.3f}; "
          f"latency uuidgate/direct {u[1] / d[1]:.3f}, uuidgate/pgbouncer {u[1] / b[1]:.3f}")
EOF
