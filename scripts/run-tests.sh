#!/usr/bin/env bash
# Run cmocka test binaries; each prints its own summary. Exit non-zero if any failed.
set -u
suite=$1; shift
failed=0 passed=0
for t in "$@"; do
	echo "== $suite: $(basename "$t")"
	if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t"; fi
done
echo "$suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
