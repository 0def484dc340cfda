# strongSwan 5.9 (charon + swanctl) as an IKEv2-over-UDP interop peer, as functions to source after
# tests/netns/lib.sh, whose bg, PIDS, NSP and TMP they use (see /work/shared/tools/peers.md). This kernel has no ESP, so charon runs with
# kernel-libipsec: userspace ESP over a TUN device (ipsec0); libipsec only does UDP-encapsulated ESP,
# which is why every connection here has `encap = yes`. One charon per namespace, each with:
#   DIR/strongswan.conf     its own STRONGSWAN_CONF (explicit plugin list, vici socket, log to stderr)
#   DIR/swanctl/            SWANCTL_DIR: swanctl.conf, x509/ (own certs), x509ca/ (trust anchors), private/
#   DIR/run/                bound over /run in a private mount namespace (charon's pidfile is fixed)
#   DIR/charon.vici         the vici socket swanctl talks to
#
#   ss_have                       charon and swanctl are installed (else callers skip)
#   ss_plugins_missing            the plugins we load that are not installed (callers fail on any)
#   ss_instance DIR               creates DIR, its strongswan.conf and swanctl folders; the caller writes
#                                 DIR/swanctl/swanctl.conf (ss_conn_conf, ss_psk_secret) and certificates
#   ss_start NS DIR [NAME]        charon in namespace NS (lib.sh short name or full name), log in
#                                 $TMP/NAME.log (default ss-NS), pid tracked in PIDS for lib.sh's cleanup;
#                                 waits until vici answers, then loads DIR/swanctl (creds and conns)
#   ss_reload NS DIR              swanctl --load-all again (after the caller rewrote swanctl.conf)
#   ss_swanctl NS DIR ARGS...     swanctl in NS against DIR's charon (command first, as swanctl wants)
#   ss_stop DIR                   SIGTERM, wait up to 3 s, then SIGKILL
#   ss_conn_conf ...              one connection section of swanctl.conf (see below)
#   ss_psk_secret ID1 ID2 KEY     a secrets entry for a PSK
#   ss_pki OUT                    a throw-away PKI: two CAs, RSA and ECDSA P-256 certificates
#   ss_install_cert DIR CERT.pem KEY.pem [CA.pem...]   copies them into DIR/swanctl/{x509,private,x509ca}
#   ss_ike_sas NS DIR             `swanctl --list-sas --raw`, one line per IKE SA
#   ss_ike_field LINE KEY         a field (state, initiator-spi, spi-in, encr-alg...) of that raw output
#   ss_ike_established NS DIR     number of ESTABLISHED IKE SAs; ss_child_installed: INSTALLED CHILD SAs

SS_CHARON=${SS_CHARON:-/usr/lib/ipsec/charon}
SS_PLUGIN_DIR=${SS_PLUGIN_DIR:-/usr/lib/ipsec/plugins}
# openssl brings AES-GCM, ChaCha20-Poly1305, ECDSA, ECP and Curve25519 groups; gcm/aes/sha2/hmac are the
# fallbacks libipsec's ESP also uses. openssl and gcm live in libstrongswan-standard-plugins.
SS_PLUGINS=${SS_PLUGINS:-"random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints gcm aes sha2 hmac kdf kernel-libipsec kernel-netlink socket-default vici"}
SS_SWANCTL_PLUGINS="random nonce openssl pem pkcs1 pkcs8 x509 pubkey"
SS_PACKAGES="strongswan-charon strongswan-swanctl libstrongswan-standard-plugins libcharon-extra-plugins"

ss_have() { [ -x "$SS_CHARON" ] && command -v swanctl >/dev/null; }

# ss_plugins_missing: the plugins of SS_PLUGINS that are not installed (empty when all are); charon
# without them is a broken install, not a reason to skip.
ss_plugins_missing() {
	local p
	for p in $SS_PLUGINS; do
		[ -f "$SS_PLUGIN_DIR/libstrongswan-$p.so" ] || printf '%s ' "$p"
	done
}

ss_ns() { if [ -e "/run/netns/$1" ]; then echo "$1"; else echo "$NSP-$1"; fi; }
ss_sock() { echo "$1/charon.vici"; }

ss_instance() {
	local d=$1
	local sub
	# every folder swanctl --load-all reads (a missing one is a warning that would hide real errors)
	for sub in x509 x509ca x509ocsp x509aa x509ac x509crl pubkey private rsa ecdsa bliss pkcs8 pkcs12; do
		mkdir -p "$d/swanctl/$sub" || return 1
	done
	mkdir -p "$d/run" || return 1
	cat >"$d/strongswan.conf" <<EOF
charon {
	load_modular = no
	load = $SS_PLUGINS
	port = 500
	port_nat_t = 4500
	install_routes = yes
	install_virtual_ip = no
	retransmit_tries = 3
	retransmit_timeout = 2
	filelog {
		stderr {
			time_format = %T
			ike_name = yes
			flush_line = yes
			default = 1
			ike = 2
			cfg = 1
			knl = 1
			esp = 1
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
	plugins {
		vici {
			socket = unix://$(ss_sock "$d")
		}
	}
}
swanctl {
	load = $SS_SWANCTL_PLUGINS
	socket = unix://$(ss_sock "$d")
}
EOF
}

ss_swanctl() {
	local ns d=$2 cmd=$3
	ns=$(ss_ns "$1")
	shift 3
	STRONGSWAN_CONF=$d/strongswan.conf SWANCTL_DIR=$d/swanctl \
		ip netns exec "$ns" swanctl "$cmd" --uri "unix://$(ss_sock "$d")" "$@"
}

ss_start() {
	local ns d=$2 name=${3:-ss-$1}
	ns=$(ss_ns "$1")
	rm -f "$(ss_sock "$d")" "$d/run/charon.pid"
	# ip netns exec execs unshare, which execs sh, which execs charon: the tracked pid is charon's.
	STRONGSWAN_CONF=$d/strongswan.conf bg "$name" ip netns exec "$ns" unshare --mount --propagation private \
		sh -c 'mount --bind "$1" /run || exit 1; exec "$2"' sh "$d/run" "$SS_CHARON"
	echo "$LAST_PID" >"$d/pid"
	local i
	for i in $(seq 100); do
		[ -S "$(ss_sock "$d")" ] && ss_swanctl "$1" "$d" --stats >/dev/null 2>&1 && break
		kill -0 "$LAST_PID" 2>/dev/null || { echo "charon exited: $(tail -5 "$TMP/$name.log")" >&2; return 1; }
		sleep 0.1
	done
	ss_swanctl "$1" "$d" --stats >/dev/null 2>&1 || { echo "charon: vici socket does not answer" >&2; return 1; }
	[ -f "$d/swanctl/swanctl.conf" ] || return 0
	ss_reload "$1" "$d"
}

ss_reload() {
	ss_swanctl "$1" "$2" --load-all --clear >"$2/load.txt" 2>&1 ||
		{ echo "swanctl --load-all failed: $(cat "$2/load.txt")" >&2; return 1; }
	! grep -qiE "failed|error|missing" "$2/load.txt" || { echo "swanctl --load-all: $(cat "$2/load.txt")" >&2; return 1; }
}

ss_stop() {
	local d=$1 pid
	pid=$(cat "$d/pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null
	local i
	for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$d/pid"
	return 0
}

# ss_conn_conf NAME LOCAL_ADDR REMOTE_ADDR LOCAL_ID REMOTE_ID AUTH(psk|pubkey) IKE_PROPOSAL ESP_PROPOSAL
#               LOCAL_TS REMOTE_TS [LOCAL_CERT [REMOTE_CA]]
# One IKEv2 connection with one tunnel-mode CHILD SA named NAME-net. encap = yes: libipsec can only do
# ESP in UDP, so charon pretends to be behind a NAT (its NAT_DETECTION_SOURCE_IP hash is random).
ss_conn_conf() {
	local name=$1 la=$2 ra=$3 lid=$4 rid=$5 auth=$6 ike=$7 esp=$8 lts=$9 rts=${10} cert=${11:-} ca=${12:-}
	cat <<EOF
	$name {
		version = 2
		local_addrs = $la
		remote_addrs = $ra
		proposals = $ike
		encap = yes
		mobike = no
		rekey_time = 0
		dpd_delay = 0
		unique = replace
		# strongSwan's default: its CERT only after a CERTREQ (RFC 7296 3.7); SS_SEND_CERT=always to diagnose
		send_cert = ${SS_SEND_CERT:-ifasked}
		local {
			auth = $auth
			id = $lid
EOF
	[ -n "$cert" ] && printf '\t\t\tcerts = %s\n' "$cert"
	cat <<EOF
		}
		remote {
			auth = $auth
			id = $rid
EOF
	[ -n "$ca" ] && printf '\t\t\tcacerts = %s\n' "$ca"
	cat <<EOF
		}
		children {
			$name-net {
				mode = tunnel
				local_ts = $lts
				remote_ts = $rts
				esp_proposals = $esp
				rekey_time = 0
				start_action = none
				close_action = none
				dpd_action = clear
			}
		}
	}
EOF
}

# (section names may not contain dots: the first ID, dots made dashes, names the entry)
ss_psk_secret() { # ID1 ID2 KEY
	printf '\tike-%s {\n\t\tid-1 = %s\n\t\tid-2 = %s\n\t\tsecret = "%s"\n\t}\n' "$(echo "$1" | tr -c 'A-Za-z0-9\n' -)" "$1" "$2" "$3"
}

# ss_install_cert DIR CERT KEY [CA...]: strongSwan's own certificate, key and trust anchors.
ss_install_cert() {
	local d=$1 cert=$2 key=$3
	shift 3
	rm -f "$d"/swanctl/x509/* "$d"/swanctl/private/* "$d"/swanctl/x509ca/*
	cp "$cert" "$d/swanctl/x509/" && cp "$key" "$d/swanctl/private/" || return 1
	local c
	for c in "$@"; do cp "$c" "$d/swanctl/x509ca/" || return 1; done
}

# ss_pki OUT: CA caA (trusted by both gateways) and caX (trusted by nobody), both ECDSA P-256; leaves,
# each as NAME.crt + NAME.key and NAME.pem (certificate then key, iketcpd's format):
#   gwA-rsa, gwA-ec   branch.example from caA (iketcpd's side)
#   gwB-rsa, gwB-ec   hq.example from caA (strongSwan's side)
#   gwB-wrong         hq.example (ECDSA) from caX
ss_pki() {
	local out=$1
	mkdir -p "$out" || return 1
	(
		cd "$out" || exit 1
		q() { "$@" >/dev/null 2>&1 || { echo "ss_pki: $* failed" >&2; "$@"; exit 1; }; }
		ca() { # NAME CN
			q openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
				-subj "/O=iketcp interop/CN=$2" -keyout "$1.key" -out "$1.crt" \
				-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
			cp "$1.crt" "$1.pem"
		}
		leaf() { # NAME CN ec|rsa CA
			local key
			[ "$3" = ec ] && key="-newkey ec -pkeyopt ec_paramgen_curve:P-256" || key="-newkey rsa:2048"
			# shellcheck disable=SC2086
			q openssl req -new $key -nodes -subj "/O=iketcp interop/CN=$2" -keyout "$1.key" -out "$1.csr"
			printf "subjectAltName=DNS:%s\nkeyUsage=critical,digitalSignature\n" "$2" >"$1.ext"
			q openssl x509 -req -in "$1.csr" -CA "$4.crt" -CAkey "$4.key" -CAcreateserial -days 30 \
				-sha256 -extfile "$1.ext" -out "$1.crt"
			cat "$1.crt" "$1.key" >"$1.pem"
			chmod 600 "$1.key" "$1.pem"
		}
		ca caA "Interop CA A"
		ca caX "Interop CA X"
		leaf gwA-rsa branch.example rsa caA
		leaf gwA-ec branch.example ec caA
		leaf gwB-rsa hq.example rsa caA
		leaf gwB-ec hq.example ec caA
		leaf gwB-wrong hq.example ec caX
	)
}

# ss_ike_sas NS DIR: one line per IKE SA (swanctl's raw vici dump, children included).
ss_ike_sas() { ss_swanctl "$1" "$2" --list-sas --raw 2>/dev/null | grep "^list-sa event"; }
# ss_ike_field LINE KEY: the first KEY=VALUE of LINE (IKE SA fields come before the CHILD SA's).
ss_ike_field() { echo "$1" | grep -o "[ {]$2=[^ }]*" | head -1 | cut -d= -f2-; }
ss_ike_established() { ss_ike_sas "$1" "$2" | grep -c " state=ESTABLISHED "; }
ss_child_installed() { ss_ike_sas "$1" "$2" | grep -o " state=INSTALLED " | wc -l; }
