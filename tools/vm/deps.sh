#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages needed to build dm-infercache and run its VM
# tests. A fast no-op when everything is already installed.
# Extra packages can be added with IC_EXTRA_PKGS="pkg1 pkg2".
set -euo pipefail

prog=deps.sh

pkgs=(
	# guest kernel, headers and module build
	linux-image-amd64 linux-headers-amd64 make gcc libc6-dev
	# kselftest runner source (run_kselftest.sh, kselftest.h, ...)
	linux-source-6.1 xz-utils tar
	# the VM itself and its initramfs
	qemu-system-x86 seabios busybox-static cpio gzip kmod
	# tools the rig and the tests use (host and guest share the root fs)
	bash coreutils util-linux procps grep sed findutils perl
	dmsetup fio jq e2fsprogs
)
# shellcheck disable=SC2206 # word splitting wanted
[[ -n "${IC_EXTRA_PKGS:-}" ]] && pkgs+=(${IC_EXTRA_PKGS})

missing=()
for p in "${pkgs[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[[ "$st" == ii* ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi

echo "$prog: installing missing packages: ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
	echo "$prog: error: not root; run as root or install: apt-get install ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
	apt-get install -y --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" </dev/null
}

# Update the package lists once: up front when there are none, otherwise
# only when installing from the existing lists fails.
fail() {
	echo "$prog: error: could not install: ${missing[*]} (see apt-get's messages above)" >&2
	exit 1
}
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
	apt-get update </dev/null || fail
	apt_install || fail
elif ! apt_install; then
	echo "$prog: install failed, refreshing package lists and retrying" >&2
	apt-get update </dev/null || fail
	apt_install || fail
fi

# Verify.
still=()
for p in "${missing[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[[ "$st" == ii* ]] || still+=("$p")
done
if [[ ${#still[@]} -ne 0 ]]; then
	echo "$prog: error: still missing after apt-get: ${still[*]}" >&2
	exit 1
fi
echo "$prog: done" >&2
