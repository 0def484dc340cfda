#!/usr/bin/env bash
# Install every Debian package iketcp needs to build, test, demo and benchmark. Idempotent:
# when everything is present it only checks (a dpkg query) and mounts bpffs if needed.
set -euo pipefail

PACKAGES=(
	build-essential gcc make pkg-config git
	clang llvm libclang-rt-14-dev          # BPF objects, libFuzzer
	libbpf-dev libxdp-dev xdp-tools bpftool libelf-dev zlib1g-dev
	libssl-dev openssl libcmocka-dev
	libipsec-mb-dev                        # AES-GCM for ESP (intel-ipsec-mb)
	iproute2 iptables ethtool tcpdump tshark procps psmisc
	python3 curl nginx-light iperf3 socat jq iputils-ping
	# libreswan's runtime libraries: the interop test unpacks libreswan itself, since the package
	# conflicts with strongSwan's (shared/tools/peers.md)
	libldns3 libevent-pthreads-2.1-7 libevent-core-2.1-7 libunbound8 libcurl3-nss libnss3 libnspr4
	libcap-ng0 libldap-2.5-0 libnss3-tools
	# strongSwan, the UDP interop peer: charon with userspace ESP (kernel-libipsec), run per namespace
	strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# tshark asks whether non-root users may capture; the default (no) is fine.
	echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# nginx-light starts a service on install; we run our own instances in namespaces only.
# strongSwan's packages may do the same with charon; the tests run their own charon per namespace.
for svc in nginx strongswan strongswan-starter; do
	if systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done

if [ "$(id -u)" -eq 0 ] && ! mountpoint -q /sys/fs/bpf; then
	mount -t bpf bpf /sys/fs/bpf
fi
exit 0
