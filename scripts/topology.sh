# The reference topology of the configuration contract, as functions to source:
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- carrier -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1                    (NAT + drops UDP)                   10.2.0.1
#
# topo_up P: creates namespaces P-hostA P-gwA P-carrier P-gwB P-hostB; topo_down P removes them.
# Nothing leaves these namespaces: the carrier's "internet" side is a veth to gwB.

topo_ns() { echo "$TOPO_PREFIX-$1"; }

topo_link() { # NS_A IF_A ADDR_A NS_B IF_B ADDR_B
	ip link add "$2" netns "$(topo_ns "$1")" type veth peer name "$5" netns "$(topo_ns "$4")" || return 1
	ip -n "$(topo_ns "$1")" addr add "$3" dev "$2"
	ip -n "$(topo_ns "$4")" addr add "$6" dev "$5"
	ip -n "$(topo_ns "$1")" link set "$2" up
	ip -n "$(topo_ns "$4")" link set "$5" up
}

topo_up() {
	TOPO_PREFIX=$1
	local n
	for n in hostA gwA carrier gwB hostB; do
		ip netns add "$(topo_ns $n)" || return 1
		ip -n "$(topo_ns $n)" link set lo up
	done
	topo_link hostA eth0 10.1.0.10/24 gwA lan0 10.1.0.1/24 || return 1
	topo_link gwA wan0 100.64.0.2/24 carrier c0 100.64.0.1/24 || return 1
	topo_link carrier c1 203.0.113.1/24 gwB wan0 203.0.113.2/24 || return 1
	topo_link gwB lan0 10.2.0.1/24 hostB eth0 10.2.0.10/24 || return 1
	ip -n "$(topo_ns hostA)" route add default via 10.1.0.1
	ip -n "$(topo_ns gwA)" route add default via 100.64.0.1
	ip -n "$(topo_ns gwB)" route add default via 203.0.113.1
	ip -n "$(topo_ns hostB)" route add default via 10.2.0.1
	for n in gwA carrier gwB; do
		ip netns exec "$(topo_ns $n)" sysctl -qw net.ipv4.ip_forward=1
	done
	# The carrier: carrier-grade NAT for the branch, and no UDP at all.
	ip netns exec "$(topo_ns carrier)" iptables -t nat -A POSTROUTING -o c1 -j MASQUERADE || return 1
	ip netns exec "$(topo_ns carrier)" iptables -A FORWARD -p udp -j DROP || return 1
}

topo_down() {
	TOPO_PREFIX=$1
	local n
	for n in hostA gwA carrier gwB hostB; do
		ip netns del "$(topo_ns $n)" 2>/dev/null
	done
	return 0
}

# nginx_https DIR NAMESPACE PAGE ADDR:PORT...: an HTTPS server with a self-signed certificate
# serving PAGE, in a namespace; prints nginx's pid (ip netns exec execs it, so the pid is nginx's).
nginx_https() {
	local dir=$1 ns=$2 page=$3
	shift 3
	mkdir -p "$dir/www"
	echo "$page" >"$dir/www/index.html"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=iketcp-admin" \
		-keyout "$dir/admin.key" -out "$dir/admin.crt" 2>/dev/null || return 1
	{
		echo "daemon off; user root; pid $dir/nginx.pid; error_log $dir/nginx-error.log;"
		echo "events { worker_connections 64; }"
		echo "http { access_log $dir/nginx-access.log;"
		echo "  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;"
		echo "  uwsgi_temp_path $dir; scgi_temp_path $dir;"
		echo "  server {"
		for listen in "$@"; do echo "    listen $listen ssl;"; done
		echo "    ssl_certificate $dir/admin.crt; ssl_certificate_key $dir/admin.key; root $dir/www;"
		echo "  }"
		echo "}"
	} >"$dir/nginx.conf"
	ip netns exec "$ns" nginx -c "$dir/nginx.conf" >"$dir/nginx.log" 2>&1 &
	echo $!
}

# topo_admin_https DIR: gwB's admin page, nginx on 203.0.113.2:443.
topo_admin_https() {
	nginx_https "$1" "$(topo_ns gwB)" "gwB admin page" 203.0.113.2:443
}

# topo_gateway_conf SPEC_CONF OUT RUNDIR PIN: the example config plus where this instance keeps its socket and pins.
topo_gateway_conf() {
	local spec=$1 out=$2 rundir=$3 pin=$4
	awk -v sock="$rundir/iketcpd.sock" -v pin="$pin" '
		{ print }
		/^config system settings/ && !done { print "    set control-socket \"" sock "\""; print "    set bpf-pin-path \"" pin "\""; done = 1 }
	' "$spec" >"$out"
}
