#!/usr/bin/env bash
# Run every tests/netns/test_*.sh (or those named); print one line each and a summary.
set -u
cd "$(dirname "$0")/../.."
mkdir -p build/netns
passed=0 failed=0 skipped=0
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(tests/netns/test_*.sh)
for t in "${tests[@]}"; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	start=$SECONDS
	timeout --kill-after=10 300 bash "$t" >"build/netns/$name.log" 2>&1
	rc=$?
	dur=$((SECONDS - start))
	case $rc in
	0) passed=$((passed + 1)); echo "PASS $name (${dur}s)" ;;
	77) skipped=$((skipped + 1)); echo "SKIP $name: $(grep -m1 '^SKIP' "build/netns/$name.log")" ;;
	*) failed=$((failed + 1)); echo "FAIL $name (rc $rc, ${dur}s), log build/netns/$name.log"; tail -40 "build/netns/$name.log" ;;
	esac
done
echo "netns: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
