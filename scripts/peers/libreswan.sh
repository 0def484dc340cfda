# libreswan 4.x as an interop peer, as functions to source (see /work/shared/tools/peers.md).
#
# Debian's libreswan conflicts with strongSwan, and this kernel has no ESP nor espintcp, so:
#   ls_setup       fetches the .deb with `apt-get download`, unpacks it into build/peers/libreswan (not
#                  installed), and builds the espintcp LD_PRELOAD shim (RFC 8229 framing in userspace).
#                  Idempotent; returns 1 when libreswan cannot be fetched (callers skip).
#   ls_instance D  creates a pluto instance directory D: NSS db, rundir; the caller writes D/ipsec.conf
#                  (with ls_conf_setup for its "config setup") and D/ipsec.secrets.
#   ls_start NS D  runs pluto in network namespace NS (full name) inside a private mount namespace where
#                  the unpacked usr/libexec is bound over /usr/libexec (pluto runs addconn from there);
#                  prints pluto's pid, waits for the control socket and loads every conn of D/ipsec.conf.
#   ls_whack D ARGS...      whack on instance D's control socket (--status, --trafficstatus, --impair ...)
#   ls_ike_established D    IKE SAs in STATE_V2_ESTABLISHED_IKE_SA (a number)
#   ls_child_established D  CHILD SAs in STATE_V2_ESTABLISHED_CHILD_SA (a number)
#   ls_ike_serial D         the serial (#N) of the first established IKE SA, for --deletestate
#   ls_saw_spis D I R       pluto negotiated the IKE SA with SPIs I and R (hex)
#   ls_stop D PID  whack --shutdown, then SIGTERM if pluto is still there.
# Runtime libraries (Debian 12): libldns3 libevent-pthreads-2.1-7 libevent-core-2.1-7 libunbound8
# libcurl3-nss libnss3 libnspr4 libcap-ng0 libldap-2.5-0, and libnss3-tools for certutil.

LS_TOP=${LS_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LS_ROOT=${LS_ROOT:-$LS_TOP/build/peers/libreswan}
# The shim is kept in the repo (a copy of /work/shared/tools/espintcp_shim.c) so that the tests are
# self-contained.
LS_SHIM_SRC=${LS_SHIM_SRC:-$LS_TOP/tests/interop/libreswan/espintcp_shim.c}
LS_SHIM=$LS_ROOT/espintcp_shim.so
LS_LIBEXEC=$LS_ROOT/root/usr/libexec/ipsec
LS_RUNTIME_PKGS="libldns3 libevent-pthreads-2.1-7 libevent-core-2.1-7 libunbound8 libcurl3-nss libnss3 libnspr4 libcap-ng0 libldap-2.5-0 libnss3-tools"

# ls_version: the unpacked package's version (e.g. 4.10-2+deb12u1).
ls_version() { cat "$LS_ROOT/version" 2>/dev/null; }

ls_setup() {
	mkdir -p "$LS_ROOT" || return 1
	if [ ! -x "$LS_LIBEXEC/pluto" ]; then
		command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
		local dl
		dl=$(mktemp -d "$LS_ROOT/dl.XXXXXX") || return 1
		# apt-get download writes into the current directory; _apt cannot write there (a warning only).
		(cd "$dl" && apt-get download -q libreswan >/dev/null 2>&1) || { rm -rf "$dl"; return 1; }
		local deb
		deb=$(find "$dl" -maxdepth 1 -name 'libreswan_*.deb' | head -1)
		[ -n "$deb" ] || { rm -rf "$dl"; return 1; }
		rm -rf "$LS_ROOT/root"
		dpkg-deb -x "$deb" "$LS_ROOT/root" || { rm -rf "$dl"; return 1; }
		# Only the binaries are used; etc/ (pam.d, ipsec.conf) and the docs would only confuse tools
		# that walk build/.
		rm -rf "$LS_ROOT/root/etc" "$LS_ROOT/root/usr/share" "$LS_ROOT/root/lib"
		dpkg-deb -f "$deb" Version >"$LS_ROOT/version"
		rm -rf "$dl"
	fi
	# pluto's shared libraries must all resolve (they are not installed with the package).
	if LD_LIBRARY_PATH='' ldd "$LS_LIBEXEC/pluto" | grep -q "not found"; then
		echo "libreswan: missing runtime libraries: $(ldd "$LS_LIBEXEC/pluto" | awk '/not found/ {print $1}' | tr '\n' ' ')" >&2
		echo "libreswan: install $LS_RUNTIME_PKGS" >&2
		return 1
	fi
	command -v certutil >/dev/null || { echo "libreswan: certutil missing (libnss3-tools)" >&2; return 1; }
	if [ ! -f "$LS_SHIM" ] || [ "$LS_SHIM_SRC" -nt "$LS_SHIM" ]; then
		[ -f "$LS_SHIM_SRC" ] || { echo "libreswan: no $LS_SHIM_SRC" >&2; return 1; }
		gcc -shared -fPIC -O2 -o "$LS_SHIM.tmp" "$LS_SHIM_SRC" -ldl && mv "$LS_SHIM.tmp" "$LS_SHIM" || return 1
	fi
	return 0
}

# ls_instance DIR: a fresh instance directory with its own NSS db and rundir.
ls_instance() {
	local d=$1
	mkdir -p "$d/nss" "$d/run" "$d/ipsec.d" || return 1
	[ -f "$d/nss/cert9.db" ] || certutil -N -d "sql:$d/nss" --empty-password >/dev/null 2>&1 || return 1
}

# ls_conf_setup DIR [EXTRA...]: the "config setup" section for instance DIR (listen on TCP too; logs
# with full debugging to DIR/pluto.log; EXTRA lines appended as they are).
ls_conf_setup() {
	local d=$1; shift
	printf 'config setup\n'
	printf '\tlogfile=%s\n' "$d/pluto.log"
	printf '\tlogtime=yes\n\tplutodebug=all\n'
	printf '\tlisten-tcp=yes\n'
	printf '\tdumpdir=%s\n' "$d/run"
	printf '\tuniqueids=yes\n'
	local l
	for l in "$@"; do printf '\t%s\n' "$l"; done
	printf '\n'
}

ls_ctl() { echo "$1/run/pluto.ctl"; }

ls_whack() {
	local d=$1; shift
	"$LS_LIBEXEC/whack" --ctlsocket "$(ls_ctl "$d")" "$@"
}

# ls_start NS DIR: pluto in network namespace NS; prints its pid (the ip netns exec process, whose
# exec chain ends in pluto itself).
ls_start() {
	local ns=$1 d=$2
	rm -f "$(ls_ctl "$d")" "$d/run/pluto.pid"
	LS_SHIM=$LS_SHIM LS_SHIMLOG=$d/shim.log ip netns exec "$ns" unshare --mount --propagation private sh -c '
		mount --bind "$1" /usr/libexec || exit 1
		shift
		exec env LD_PRELOAD="$LS_SHIM" PA_SHIM_LOG="$LS_SHIMLOG" "$@"' sh \
		"$LS_ROOT/root/usr/libexec" "$LS_LIBEXEC/pluto" --nofork \
		--config "$d/ipsec.conf" --secretsfile "$d/ipsec.secrets" --ipsecdir "$d/ipsec.d" \
		--nssdir "$d/nss" --rundir "$d/run" \
		>"$d/pluto.stderr" 2>&1 &
	local pid=$!
	local i
	for i in $(seq 100); do
		[ -S "$(ls_ctl "$d")" ] && ls_whack "$d" --status >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || { echo "pluto exited: $(tail -5 "$d/pluto.stderr")" >&2; return 1; }
		sleep 0.1
	done
	[ -S "$(ls_ctl "$d")" ] || { echo "pluto: no control socket" >&2; kill "$pid"; return 1; }
	# Load every conn (pluto itself does not read them: that is addconn's job, as in `ipsec start`).
	"$LS_LIBEXEC/addconn" --config "$d/ipsec.conf" --ctlsocket "$(ls_ctl "$d")" --autoall \
		>"$d/addconn.log" 2>&1 || { echo "addconn failed: $(cat "$d/addconn.log")" >&2; kill "$pid"; return 1; }
	ls_whack "$d" --listen >/dev/null 2>&1
	echo "$pid"
}

ls_ike_established() { ls_whack "$1" --showstates 2>/dev/null | grep -c "STATE_V2_ESTABLISHED_IKE_SA"; }
ls_child_established() { ls_whack "$1" --showstates 2>/dev/null | grep -c "STATE_V2_ESTABLISHED_CHILD_SA"; }

# ls_ike_serial D: the state serial (#N) of the first established IKE SA.
ls_ike_serial() {
	ls_whack "$1" --showstates 2>/dev/null | sed -n 's/^[0-9]* #\([0-9]*\): .*STATE_V2_ESTABLISHED_IKE_SA.*/\1/p' | head -1
}

# ls_saw_spis D SPI_I SPI_R: pluto's (debug) log shows an IKE header with these SPIs (16 hex digits each),
# i.e. the IKE SA the other side reports is the one pluto negotiated.
ls_saw_spis() {
	local f='s/^\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)$/\1 \2 \3 \4  \5 \6 \7 \8/'
	local i r
	i=$(echo "$2" | tr 'A-F' 'a-f' | sed "$f")
	r=$(echo "$3" | tr 'A-F' 'a-f' | sed "$f")
	grep -A1 "initiator SPI: $i" "$1/pluto.log" | grep -q "responder SPI: $r"
}

# ls_keyed_spis D SPI_I SPI_R: pluto (debug log) filed an IKE SA under this SPI pair; unlike ls_saw_spis
# it needs no message on that SA yet (an IKE SA just made by a rekey).
ls_keyed_spis() {
	local f='s/^\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)$/\1 \2 \3 \4  \5 \6 \7 \8/'
	local i r
	i=$(echo "$2" | tr 'A-F' 'a-f' | sed "$f")
	r=$(echo "$3" | tr 'A-F' 'a-f' | sed "$f")
	grep -q "ike_spis.*: $i  $r added to hash table" "$1/pluto.log"
}

ls_stop() {
	local d=$1 pid=$2
	ls_whack "$d" --shutdown >/dev/null 2>&1
	local i
	for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
