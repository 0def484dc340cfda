# Sourced by tests/netns/test_*.sh. Namespaces get a per-test unique prefix and are
# removed on exit (also on failure); processes we start are tracked and killed.
# Exit codes: 0 pass, 77 skip (a kernel or tool feature is missing), anything else fail.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$TOP/build}
NSP="ikt$$"                      # namespace prefix, unique per test run
TMP=$(mktemp -d /tmp/iketcp-test.XXXXXX)
PIDS=()
NSS=()
MOUNTS=()
SKIP=77

log() { echo "  [$(date +%H:%M:%S)] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit $SKIP; }

cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null; done
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
	if [ $rc -ne 0 ] && [ $rc -ne $SKIP ]; then
		for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }; done
	fi
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ns NAME: create namespace $NSP-NAME with loopback up; prints its full name.
ns_add() {
	local n="$NSP-$1"
	ip netns add "$n" || fail "ip netns add $n"
	NSS+=("$n")
	ip -n "$n" link set lo up
}
nsx() { local n="$NSP-$1"; shift; ip netns exec "$n" "$@"; }

# veth A IFA B IFB: a veth pair between namespaces A and B.
veth() {
	ip link add "$2" netns "$NSP-$1" type veth peer name "$4" netns "$NSP-$3" || fail "veth $*"
	ip -n "$NSP-$1" link set "$2" up
	ip -n "$NSP-$3" link set "$4" up
}

# bg NAME CMD...: start CMD in the background, output to $TMP/NAME.log, tracked for cleanup.
bg() {
	local name=$1; shift
	# A function in the background would leave us the subshell's pid: run ip netns exec itself.
	if [ "$1" = nsx ]; then
		local ns="$NSP-$2"
		shift 2
		set -- ip netns exec "$ns" "$@"
	fi
	"$@" >"$TMP/$name.log" 2>&1 &
	PIDS+=($!)
	LAST_PID=$!
}

# wait_for SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
	local secs=$1; shift
	local end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

# own_bpffs DIR: a bpffs of this test's own, visible to the host and to daemons under ip netns exec.
own_bpffs() {
	mkdir -p "$1"
	mount -t bpf bpf "$1" || skip "cannot mount bpffs"
	MOUNTS+=("$1")
}

need() { for c in "$@"; do command -v "$c" >/dev/null || skip "$c not installed"; done; }
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root"; }

# The daemon under test: the sanitized build when there is one (leaks and UB fail the test).
IKETCPD=${IKETCPD:-$BUILD/iketcpd-san}
[ -x "$IKETCPD" ] || IKETCPD=$BUILD/iketcpd
IKETCPCTL=$BUILD/iketcpctl
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=67}

# daemon_start NS CONF NAME: run iketcpd in namespace NS (with $IKETCPD_ARGS); waits for its control socket.
daemon_start() {
	local ns=$1 conf=$2 name=$3
	local sock
	sock=$(sed -n 's/^ *set control-socket "\{0,1\}\([^"]*\)"\{0,1\}/\1/p' "$conf" | head -1)
	# shellcheck disable=SC2086 # IKETCPD_ARGS: more options, word-split on purpose
	bg "$name" ip netns exec "$NSP-$ns" "$IKETCPD" -c "$conf" --log-level debug ${IKETCPD_ARGS:-}
	eval "${name}_PID=$LAST_PID"
	wait_for 15 ip netns exec "$NSP-$ns" "$IKETCPCTL" -s "$sock" status ||
		fail "$name: no answer on control socket $sock (log: $TMP/$name.log)"
}

# daemon_stop NAME: SIGTERM, wait for a clean exit, and fail on sanitizer reports.
daemon_stop() {
	local name=$1 pid
	pid=$(eval echo "\$${name}_PID")
	kill -TERM "$pid" 2>/dev/null
	local rc=0
	wait "$pid" || rc=$?
	if grep -qE "AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:" "$TMP/$name.log"; then
		sed -n '/Sanitizer\|runtime error/,+30p' "$TMP/$name.log" | head -60
		fail "$name: sanitizer report"
	fi
	[ $rc -eq 0 ] || fail "$name: exit status $rc after SIGTERM"
}

# tcp_transfer SRC DST ADDR LABEL: 4 MB from namespace SRC to ADDR:5001 in namespace DST, checked end to end.
tcp_transfer() {
	bg sink nsx "$2" python3 "$TOP/tests/netns/transfer.py" sink "$3" 5001
	local sink=$LAST_PID sent
	sleep 0.3
	sent=$(nsx "$1" python3 "$TOP/tests/netns/transfer.py" send "$3" 5001 $((4 << 20))) || fail "TCP transfer ($4)"
	wait "$sink"
	[ "$(cat "$TMP/sink.log")" = "$sent" ] || fail "TCP transfer corrupted ($4): sent '$sent', got '$(cat "$TMP/sink.log")'"
}

# stat NS SOCK SECTION COUNTER: one counter from iketcpctl stats --json.
stat_of() {
	ip netns exec "$NSP-$1" "$IKETCPCTL" -s "$2" stats --json | jq -r ".$3.$4"
}
