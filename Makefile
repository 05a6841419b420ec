# SPDX-License-Identifier: GPL-2.0-only
#
# dm-infercache: out-of-tree build, tests and demo.
#
#   make              build dm-infercache.ko against the installed Debian headers,
#                     and the user-space tools (build/tools/)
#   make tools        only the tools: infercache-check (offline metadata check)
#   make install      install the module for $(KVER) and run depmod
#   make check        host unit tests + selftests in a QEMU guest (CI tier)
#   make check-full   the same with the long counts
#   make demo         cold/warm inference-read demo in a QEMU guest
#   make bench        infercache beside the raw devices and the peers (guest)
#   make bench-writeback  writeback mode beside dm-writecache and bcache (guest)
#   make bench-scaling    warm hits with 1 vs 2 CPUs: raw, dm-linear, infercache
#   make unit         host unit tests only (ASan/UBSan)
#   make deps         install what the above need from Debian's packages

# The kernel we build for: the newest installed Debian -amd64 headers, not the
# running kernel (the build host may run another one).
KVER ?= $(shell ls -d /lib/modules/*-amd64/build 2>/dev/null | sed 's|/lib/modules/||; s|/build||' | sort -V | tail -n 1)
KDIR ?= /lib/modules/$(KVER)/build
PWD := $(CURDIR)

all: modules tools

modules:
	@test -d "$(KDIR)" || { echo "no kernel headers at '$(KDIR)': run 'make deps' or set KDIR" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(PWD) modules

tools:
	$(MAKE) -C tools/infercache-check

install: modules tools
	$(MAKE) -C $(KDIR) M=$(PWD) modules_install
	depmod -a $(KVER)
	$(MAKE) -C tools/infercache-check install

clean:
	$(MAKE) -C $(KDIR) M=$(PWD) clean 2>/dev/null || true
	rm -rf build

deps:
	tools/vm/deps.sh

unit:
	$(MAKE) -C selftests/unit run

check:
	tools/check.sh

check-full:
	tools/check.sh --full

demo:
	tools/demo.sh

bench:
	tools/bench/bench.sh

bench-writeback:
	BENCH_PARTS=w tools/bench/bench.sh

bench-scaling:
	BENCH_PARTS=s tools/bench/bench.sh

.PHONY: all modules tools install clean deps unit check check-full demo bench bench-writeback \
	bench-scaling
