#!/usr/bin/env bash
# test_steer_daemon.sh with `set steer-hook tc`, beside an XDP program that is not ours.
STEER_HOOK=tc exec bash "$(dirname "$0")/test_steer_daemon.sh"
