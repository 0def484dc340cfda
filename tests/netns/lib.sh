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

need() { for c in "$@"; do command -v "$c" >/dev/null || skip "$c not installed"; done; }
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root"; }
