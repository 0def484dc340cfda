#!/usr/bin/env bash
# make bench: every benchmark in one run; a table on stdout, JSON lines in benchmarks/results/.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
mkdir -p benchmarks/results
out=benchmarks/results/bench-$(date -u +%Y%m%dT%H%M%SZ).json
: >"$out"
failed=() # every benchmark runs; make bench fails at the end if one did

run() { # NAME CMD...
	local name=$1; shift
	echo "== $name"
	local log
	log=$(mktemp)
	"$@" | tee "$log"
	local rc=${PIPESTATUS[0]}
	case $rc in
	0) grep '^{' "$log" >>"$out" ;;
	77) echo "(skipped: a kernel or tool feature is missing)" ;;
	*) echo "(failed: exit $rc)"; failed+=("$name") ;;
	esac
	rm -f "$log"
	echo
}

for b in "$@"; do
	run "$(basename "$b")" "$b"
done
run conn_rate scripts/bench_conn_rate.sh
run tunnel scripts/bench_tunnel.sh
run ike_sa_tcp scripts/bench_ike.sh
BENCH_IKE_TRANSPORT=udp run ike_sa_udp scripts/bench_ike.sh
echo "results: $out"
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed: ${failed[*]}" >&2
	exit 1
fi
