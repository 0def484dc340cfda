#!/usr/bin/env bash
# A throw-away test PKI made at test time with the openssl CLI (no key is ever committed):
#   OUT/caA.pem, OUT/caB.pem            two unrelated trust anchors (ECDSA P-256, self-signed)
#   OUT/gwA.pem                          branch.example (ECDSA P-256) from CA A: certificate then key
#   OUT/gwB.pem                          hq.example (RSA-2048) from CA A: certificate then key
#   OUT/expired.pem                      hq.example from CA A, expired yesterday
# Usage: tests/certs/mkpki.sh OUT
set -eu
out=$1
mkdir -p "$out"
cd "$out"
q() { "$@" >/dev/null 2>&1 || { echo "mkpki: $* failed" >&2; "$@"; exit 1; }; }

ca() { # NAME CN
	q openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/O=iketcp test/CN=$2" -keyout "$1.key" -out "$1.pem" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

leaf() { # NAME CN KEYSPEC(ec|rsa) CA [not_after]
	local name=$1 cn=$2 kind=$3 ca=$4 end=${5:-}
	if [ "$kind" = ec ]; then
		q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=iketcp test/CN=$cn" \
			-keyout "$name.key" -out "$name.csr"
	else
		q openssl req -new -newkey rsa:2048 -nodes -subj "/O=iketcp test/CN=$cn" \
			-keyout "$name.key" -out "$name.csr"
	fi
	printf "subjectAltName=DNS:%s\nkeyUsage=critical,digitalSignature\n" "$cn" >"$name.ext"
	if [ -n "$end" ]; then
		# openssl ca takes explicit dates: an expired certificate without faking the clock
		mkdir -p "$name.db" && : >"$name.db/index" && echo 01 >"$name.db/serial"
		cat >"$name.cnf" <<CNF
[ca]
default_ca = t
[t]
database = $name.db/index
serial = $name.db/serial
new_certs_dir = $name.db
default_md = sha256
policy = p
copy_extensions = none
[p]
CNF
		q openssl ca -batch -config "$name.cnf" -cert "$ca.pem" -keyfile "$ca.key" -in "$name.csr" \
			-out "$name.crt" -extfile "$name.ext" -startdate 20200101000000Z -enddate "$end" -notext
	else
		q openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 30 \
			-sha256 -extfile "$name.ext" -out "$name.crt"
	fi
	cat "$name.crt" "$name.key" >"$name.pem"
	chmod 600 "$name.pem" "$name.key"
}

ca caA "Test CA A"
ca caB "Test CA B"
leaf gwA branch.example ec caA
leaf gwB hq.example rsa caA
leaf expired hq.example ec caA "$(date -u -d yesterday +%Y%m%d%H%M%SZ)"
