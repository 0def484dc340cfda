#!/usr/bin/env bash
# iketcpd as an administrator meets it: --check, status before any IKE, iketcpctl exit codes,
# SIGHUP with a good and a bad file, a second daemon refused, SIGTERM and SIGKILL recovery.
#
#   gw: wan0 192.0.2.1/24 (a veth whose peer idles in ns "peer")
. "$(dirname "$0")/lib.sh"
need_root
need jq

SPEC=$TOP/tests/conf
for f in gwA.conf gwB.conf; do
	"$BUILD/iketcpd" --check -c "$SPEC/$f" >"$TMP/check.out" 2>&1 || { cat "$TMP/check.out"; fail "--check $f"; }
	grep -q "OK" "$TMP/check.out" || fail "--check $f printed no OK"
done
# gwB shares 443 between IKE and the admin service: the warning names both.
"$BUILD/iketcpd" --check -c "$SPEC/gwB.conf" 2>&1 | grep -q "admin-sport 443 is the same as ike-tcp-port 443" ||
	fail "--check gwB.conf: no admin-sport warning"

# Every error of a bad file, as FILE:LINE: message, exit 1.
cat >"$TMP/bad.conf" <<'CONF'
config system settings
    set ike-tcp-port 70000
    set ike-tcp-servise enable
end
config vpn ipsec phase1-interface
    edit "t"
        set ike-version 1
    next
end
CONF
rc=0
"$BUILD/iketcpd" --check -c "$TMP/bad.conf" >"$TMP/bad.out" 2>&1 || rc=$?
cat "$TMP/bad.out"
[ $rc -eq 1 ] || fail "--check bad.conf: exit $rc, expected 1"
grep -q "^$TMP/bad.conf:2: " "$TMP/bad.out" || fail "no error for line 2"
grep -q "^$TMP/bad.conf:3: .*ike-tcp-service" "$TMP/bad.out" || fail "line 3: no did-you-mean"
grep -q "IKEv1 is not supported" "$TMP/bad.out" || fail "IKEv1 not rejected"
"$BUILD/iketcpd" --check -c "$TMP/missing.conf" 2>&1 | grep -q "missing.conf" || fail "missing file not named"

ns_add gw
ns_add peer
veth gw wan0 peer eth0
ip -n "$NSP-gw" addr add 192.0.2.1/24 dev wan0
SOCK=$TMP/ctl.sock
conf() { # PORT
	cat <<CONF
config system settings
    set ike-tcp-service enable
    set ike-tcp-port $1
    set control-socket "$SOCK"
    set bpf-pin-path "/sys/fs/bpf/$NSP"
end
config vpn ipsec phase1-interface
    edit "to-hq"
        set interface "wan0"
        set remote-gw 198.51.100.1
        set transport tcp
        set psksecret "s3cret"
    next
    edit "dialup"
        set interface "wan0"
        set type dynamic
        set psksecret "s3cret"
    next
end
config vpn ipsec phase2-interface
    edit "to-hq-lan"
        set phase1name "to-hq"
        set src-subnet 10.1.0.0/24
        set dst-subnet 10.2.0.0/24
    next
end
CONF
}
conf 443 >"$TMP/gw.conf"
ctl() { ip netns exec "$NSP-gw" "$IKETCPCTL" -s "$SOCK" "$@"; }

# iketcpctl: 2 when no daemon answers.
rc=0; ctl status >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "iketcpctl without a daemon: exit $rc, expected 2"

daemon_start gw "$TMP/gw.conf" gwd

# status lists the configured tunnels before any IKE exists.
ctl status | tee "$TMP/status.txt"
grep -q "to-hq .*static .*tcp .*192.0.2.1 .*198.51.100.1" "$TMP/status.txt" || fail "status text: to-hq"
grep -q "dialup .*dynamic" "$TMP/status.txt" || fail "status text: dialup"
ctl status --json >"$TMP/status.json"
jq -e '.tunnels | length == 2' "$TMP/status.json" >/dev/null || fail "status --json: two tunnels"
jq -e '.tunnels[0] | has("name") and has("state") and has("transport") and has("local") and has("remote") and has("ike_sa") and has("child_sas")' \
	"$TMP/status.json" >/dev/null || fail "status --json: fields of cli.md"
jq -e '.tunnels[] | select(.name == "to-hq") | .transport == "tcp" and .remote == "198.51.100.1" and .phase2 == ["to-hq-lan"]' \
	"$TMP/status.json" >/dev/null || fail "status --json: to-hq"
ctl stats --json | jq -e '.tcp | has("accepted") and has("active") and has("prefix_errors") and has("bad_length") and has("timeouts") and has("frames_ike") and has("frames_esp")' >/dev/null ||
	fail "stats --json: tcp fields of cli.md"
ctl stats --json | jq -e '(.ike | has("sa_established")) and (.esp | has("replay_drops")) and (.xdp | has("syn_dropped") and has("to_xsk"))' >/dev/null ||
	fail "stats --json: ike/esp/xdp fields of cli.md"

# Refused requests: exit 1 with the reason on stderr.
rc=0; ctl down nosuch 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q "no such phase1-interface" "$TMP/err" || fail "down nosuch: exit $rc"
rc=0; ctl frobnicate 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "unknown command: exit $rc, expected 2 (usage)"
# Bad bytes on the control socket: a clear error, and the daemon keeps answering.
printf 'status\001\n' | ip netns exec "$NSP-gw" socat - "UNIX-CONNECT:$SOCK" | grep -q "^ERR" || fail "control byte: no ERR"
head -c 5000 /dev/zero | tr '\0' 'a' | ip netns exec "$NSP-gw" socat - "UNIX-CONNECT:$SOCK" | grep -q "^ERR" || fail "long request: no ERR"
ctl status >/dev/null || fail "daemon stopped answering after bad control requests"

# A second daemon with the same control socket refuses and says why.
rc=0
ip netns exec "$NSP-gw" "$IKETCPD" -c "$TMP/gw.conf" >"$TMP/second.log" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "second daemon started"
grep -q "another iketcpd (pid $gwd_PID) is running" "$TMP/second.log" || { cat "$TMP/second.log"; fail "second daemon: no reason"; }

# SIGHUP with a bad file: the old configuration keeps running, the log says why.
cp "$TMP/gw.conf" "$TMP/good.conf"
printf 'config system settings\n    set ike-tcp-port banana\nend\n' >>"$TMP/gw.conf"
kill -HUP "$gwd_PID"
wait_for 5 grep -q "still running the previous configuration" "$TMP/gwd.log" || fail "bad reload not logged"
grep -q "gw.conf:[0-9]*: .*banana" "$TMP/gwd.log" || fail "bad reload: FILE:LINE error not logged"
ctl status | grep -q "to-hq" || fail "lost the configuration after a bad reload"
rc=0; ctl reload 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q "banana" "$TMP/err" || fail "iketcpctl reload with a bad file: exit $rc"

# SIGHUP with a good file: the IKE port moves to 8443, steering follows.
conf 8443 >"$TMP/gw.conf"
sed -i 's/edit "dialup"/edit "dialup2"/' "$TMP/gw.conf"
kill -HUP "$gwd_PID"
wait_for 5 grep -q "reloaded" "$TMP/gwd.log" || fail "good reload not logged"
ctl status | grep -q "dialup2" || fail "reload did not apply"
ctl status --json | jq -e '.daemon.ike_tcp_port == 8443' >/dev/null || fail "ike_tcp_port not 8443 after reload"
ip -n "$NSP-gw" link show wan0 | grep -q "prog/xdp" || fail "XDP detached by reload"
pid_bpftool() { nsenter -t "$gwd_PID" -m -n bpftool "$@"; }
pid_bpftool map dump pinned "/sys/fs/bpf/$NSP/wan0/steer_config" | grep -q "8443" ||
	fail "steer_config map does not show the new port"

# SIGTERM: programs detached, exit 0, socket removed.
daemon_stop gwd
ip -n "$NSP-gw" link show wan0 | grep -q "prog/xdp" && fail "XDP still attached after SIGTERM"
[ -e "$SOCK" ] && fail "control socket left after SIGTERM"

# SIGKILL: the next start removes what was left attached.
daemon_start gw "$TMP/gw.conf" gwd
kill -KILL "$gwd_PID"
wait "$gwd_PID" 2>/dev/null
ip -n "$NSP-gw" link show wan0 | grep -q "prog/xdp" || log "note: nothing was left attached after SIGKILL"
daemon_start gw "$TMP/gw.conf" gwd
[ "$(ip -n "$NSP-gw" -d link show wan0 | grep -c 'prog/xdp')" -eq 1 ] || fail "after SIGKILL recovery: XDP not attached exactly once"
[ "$(tc -n "$NSP-gw" filter show dev wan0 egress | grep -c 'tc_steer')" -eq 1 ] || {
	tc -n "$NSP-gw" filter show dev wan0 egress; fail "after SIGKILL recovery: not exactly one tc filter"; }
ctl status >/dev/null || fail "daemon after SIGKILL recovery does not answer"
daemon_stop gwd
exit 0
