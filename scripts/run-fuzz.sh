#!/usr/bin/env bash
# replay BIN...: run each fuzz target over its seed corpus (tests/fuzz/corpus/NAME).
# run SECONDS BIN...: fuzz each target for SECONDS, growing a scratch corpus under build/.
set -u
mode=$1; shift
failed=0 passed=0
if [ "$mode" = run ]; then secs=$1; shift; fi
for bin in "$@"; do
	name=$(basename "$bin"); name=${name#fuzz_}
	seeds=tests/fuzz/corpus/$name
	if [ "$mode" = replay ]; then
		files=("$seeds"/*)
		if [ ! -e "${files[0]}" ]; then echo "fuzz $name: no seed corpus in $seeds"; failed=$((failed + 1)); continue; fi
		if "$bin" -runs=0 "${files[@]}" >"build/fuzz/$name.replay.log" 2>&1; then
			echo "fuzz $name: replayed ${#files[@]} inputs"; passed=$((passed + 1))
		else
			echo "fuzz $name: FAILED, see build/fuzz/$name.replay.log"; tail -20 "build/fuzz/$name.replay.log"; failed=$((failed + 1))
		fi
	else
		work=build/fuzz/corpus-$name; mkdir -p "$work"
		if "$bin" -max_total_time="$secs" -max_len=65600 "$work" "$seeds"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	fi
done
echo "fuzz-$mode: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
