# Certificates for libreswan (pluto) interop tests, as functions to source after lib.sh and
# scripts/peers/libreswan.sh:
#   lsc_pki DIR               tests/certs/mkpki.sh's PKI (caA caB gwA gwB expired) plus three leaves:
#                             branch-rsa (branch.example, RSA-2048, CA A), hq-ec (hq.example, ECDSA P-256,
#                             CA A) and branch-caB (branch.example, ECDSA P-256, from CA B).
#                             Every leaf NAME has NAME.crt, NAME.key and NAME.pem (certificate then key);
#                             the new ones have OU=NAME in their subject: NSS names certificates by subject.
#   lsc_nss_import D PKI NAME...  into instance D's NSS db: caA as a trusted CA (nickname caA) and each
#                             leaf NAME with its private key (nickname NAME), from a PKCS#12 file.
#   lsc_ls_conf D NICK AUTH RIGHTAUTH [EXTRA...]  D/ipsec.conf: conn "hq", pluto as branch.example with
#                             the certificate NICK (leftauth=AUTH: rsasig|ecdsa), hq.example authenticated
#                             with RIGHTAUTH, over TCP to 203.0.113.2:443, auto=add; EXTRA conn lines as is.
#   lsc_gw_conf F SOCK PIN ROLE PEM CA  iketcpd's config F (control socket SOCK, bpf pins under PIN)
#                             as hq.example with authmethod signature, the certificate+key PEM and
#                             trust anchor CA; ROLE responder (TCP 443, phase1 "branch", dynamic) or
#                             initiator (phase1 "to-ls", to 203.0.113.1:4500 over tcp, auto-negotiate).
#   lsc_topology              (after lib.sh) namespaces ls and gw, ls eth0 203.0.113.1/24 == gw wan0
#                             203.0.113.2/24, and iketcpd's inner interface lan0 10.2.0.1/24 in gw.

lsc_topology() {
	ns_add ls && ns_add gw && veth ls eth0 gw wan0 || return 1
	nsx ls ip addr add 203.0.113.1/24 dev eth0 && nsx gw ip addr add 203.0.113.2/24 dev wan0 &&
		nsx gw ip link add lan0 type veth peer name lan0p && nsx gw ip link set lan0 up &&
		nsx gw ip addr add 10.2.0.1/24 dev lan0
}

# lsc_leaf DIR NAME CN ec|rsa CA: a leaf certificate for CN (SAN DNS:CN) signed by DIR/CA.{pem,key}.
lsc_leaf() {
	local d=$1 n=$2 cn=$3 ca=$5 keyopt=(-newkey rsa:2048)
	[ "$4" = ec ] && keyopt=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
	printf 'subjectAltName=DNS:%s\nkeyUsage=critical,digitalSignature\n' "$cn" >"$d/$n.ext"
	openssl req -new "${keyopt[@]}" -nodes -subj "/O=iketcp test/OU=$n/CN=$cn" -keyout "$d/$n.key" \
		-out "$d/$n.csr" >/dev/null 2>&1 &&
		openssl x509 -req -in "$d/$n.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" -CAcreateserial -days 30 \
			-sha256 -extfile "$d/$n.ext" -out "$d/$n.crt" >/dev/null 2>&1 || return 1
	cat "$d/$n.crt" "$d/$n.key" >"$d/$n.pem"
	chmod 600 "$d/$n.key" "$d/$n.pem"
}

lsc_pki() {
	"$TOP/tests/certs/mkpki.sh" "$1" || return 1
	lsc_leaf "$1" branch-rsa branch.example rsa caA &&
		lsc_leaf "$1" hq-ec hq.example ec caA &&
		lsc_leaf "$1" branch-caB branch.example ec caB
}

lsc_nss_import() {
	local d=$1 pki=$2 n
	shift 2
	certutil -A -d "sql:$d/nss" -n caA -t 'CT,,' -i "$pki/caA.pem" || return 1
	for n in "$@"; do
		# NAME.pem holds the certificate and its key (PKCS#12 with an empty password).
		openssl pkcs12 -export -in "$pki/$n.pem" -name "$n" -passout pass: -out "$d/$n.p12" 2>/dev/null &&
			pk12util -i "$d/$n.p12" -d "sql:$d/nss" -W '' -K '' >/dev/null || return 1
	done
}

lsc_ls_conf() {
	local d=$1 nick=$2 auth=$3 rauth=$4 l
	shift 4
	{
		ls_conf_setup "$d"
		printf 'conn hq\n'
		for l in ikev2=insist "leftauth=$auth" "rightauth=$rauth" left=203.0.113.1 "leftcert=$nick" \
			leftid=@branch.example leftsendcert=always leftsubnet=10.1.0.0/24 right=203.0.113.2 \
			rightid=@hq.example rightsubnet=10.2.0.0/24 'ike=aes_gcm128-sha2_256;dh19' esp=aes_gcm128 \
			enable-tcp=yes tcp-remoteport=443 retransmit-timeout=10s rekey=no auto=add "$@"; do
			printf '\t%s\n' "$l"
		done
	} >"$d/ipsec.conf"
	: >"$d/ipsec.secrets"
	chmod 600 "$d/ipsec.secrets"
}

lsc_gw_conf() {
	local f=$1 sock=$2 pin=$3 role=$4 pem=$5 ca=$6 port=443 name=branch p1=("set type dynamic")
	[ "$role" = initiator ] && port=4500 name=to-ls p1=("set remote-gw 203.0.113.1" "set transport tcp")
	{
		echo 'config system settings'
		printf '    set %s\n' "control-socket \"$sock\"" "bpf-pin-path \"$pin\"" \
			"ike-tcp-service enable" "ike-tls-service disable" "ike-tcp-port $port" 'inner-interface "lan0"'
		printf 'end\nconfig vpn ipsec phase1-interface\n    edit "%s"\n' "$name"
		printf '        %s\n' 'set interface "wan0"' "set ike-version 2" "${p1[@]}" "set authmethod signature" \
			"set certificate \"$pem\"" "set ca \"$ca\"" 'set localid "hq.example"' \
			'set peerid "branch.example"' "set proposal aes128gcm-prfsha256" "set dhgrp 19"
		printf '    next\nend\nconfig vpn ipsec phase2-interface\n    edit "%s-lan"\n' "$name"
		printf '        %s\n' "set phase1name \"$name\"" "set proposal aes128gcm" \
			"set src-subnet 10.2.0.0 255.255.255.0" "set dst-subnet 10.1.0.0 255.255.255.0"
		printf '    next\nend\n'
	} >"$f"
}
