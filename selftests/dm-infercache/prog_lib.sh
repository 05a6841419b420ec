#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Helper programs built from the driver's on-disk codec (infercache-check,
# meta_fuzz), for tests sourced after lib.sh and ic_init. The selftest
# Makefile builds them into the install tree when it finds the repository;
# otherwise (or when a source is newer than the binary) they are built here
# with gcc into $IC_TMP.
# shellcheck shell=bash

# ic_prog VAR NAME: set VAR to the path of an up-to-date NAME, or fail.
ic_prog() {
	local var=$1 name=$2 main c s fresh srcs=() out
	case $name in
	infercache-check) main=$IC_SRC/tools/infercache-check/infercache-check.c ;;
	meta_fuzz) main=$IC_DIR/meta_fuzz.c
		[[ -f $main ]] || main=$IC_SRC/selftests/dm-infercache/meta_fuzz.c ;;
	*) ic_fail "ic_prog: unknown program $name" ;;
	esac
	srcs=("$main" "$IC_SRC/driver/format.c" "$IC_SRC/driver/geometry.c"
	      "$IC_SRC/driver/format.h" "$IC_SRC/driver/geometry.h")
	for s in "${srcs[@]}"; do
		[[ -f $s ]] || ic_fail "ic_prog: $name: source $s not found (IC_SRC=$IC_SRC)"
	done
	for c in "$IC_DIR/$name" "$IC_SRC/build/selftests/dm-infercache/$name" \
		 "$IC_SRC/build/tools/$name/$name"; do
		[[ -x $c ]] || continue
		fresh=1
		for s in "${srcs[@]}"; do
			[[ $s -nt $c ]] && fresh=0
		done
		if ((fresh)); then
			printf -v "$var" '%s' "$c"
			return 0
		fi
	done
	command -v gcc >/dev/null || ic_fail "$name is not built (make -C selftests/dm-infercache) and there is no gcc"
	out=$IC_TMP/$name
	gcc -O2 -Wall -Wextra -std=gnu11 -I"$IC_SRC/driver" -o "$out" "$main" \
		"$IC_SRC/driver/format.c" "$IC_SRC/driver/geometry.c" ||
		ic_fail "cannot build $name"
	ic_log "built $name in the guest"
	printf -v "$var" '%s' "$out"
}
