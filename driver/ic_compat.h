/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one header that lets the pure logic of dm-infercache (geometry, index,
 * policy, on-disk format) build both in the kernel and in user space for the host unit tests.
 * In user space, selftests/unit/kcompat.h supplies the few kernel types and
 * helpers these files use.
 */
#ifndef DM_INFERCACHE_COMPAT_H
#define DM_INFERCACHE_COMPAT_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/errno.h>
#include <linux/bits.h>
#include <linux/hash.h>
#include <linux/math.h>
#include <linux/limits.h>
#include <linux/log2.h>
#include <linux/spinlock.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/string.h>
#include <linux/stddef.h>
#include <linux/crc32c.h>
#include <asm/byteorder.h>
#else
#include "../selftests/unit/kcompat.h"
#endif

#endif
