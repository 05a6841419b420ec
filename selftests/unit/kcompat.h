/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The few kernel types and helpers the pure logic of driver/ uses, for
 * building it in user space (host unit tests). Included through
 * driver/ic_compat.h only.
 */
#ifndef DM_INFERCACHE_KCOMPAT_H
#define DM_INFERCACHE_KCOMPAT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <endian.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

typedef uint32_t __le32;
typedef uint64_t __le64;
#define __packed	__attribute__((packed))
#define cpu_to_le32(x)	htole32(x)
#define cpu_to_le64(x)	htole64(x)
#define le32_to_cpu(x)	le32toh(x)
#define le64_to_cpu(x)	le64toh(x)

/* Castagnoli CRC, bitwise, as lib/libcrc32c.c computes it (no final xor). */
static inline u32 crc32c(u32 crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int k;

	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78U & -(crc & 1));
	}
	return crc;
}

#define U16_MAX		((u16)~0U)
#define U32_MAX		((u32)~0U)
#define BIT(n)		(1UL << (n))
#define BIT_ULL(n)	(1ULL << (n))
#define GFP_KERNEL	0

/* Unit tests are single-threaded: the set lock only has to exist. */
typedef struct { int locked; } spinlock_t;
#define spin_lock_init(l)	((l)->locked = 0)

static inline void *kvcalloc(size_t n, size_t size, int gfp)
{
	(void)gfp;
	return calloc(n, size);
}

static inline void kvfree(const void *p)
{
	free((void *)p);
}

static inline bool is_power_of_2(unsigned long n)
{
	return n && !(n & (n - 1));
}

#define GOLDEN_RATIO_64 0x61C8864680B583EBull

static inline u32 hash_64(u64 val, unsigned int bits)
{
	return val * GOLDEN_RATIO_64 >> (64 - bits);
}

static inline u32 reciprocal_scale(u32 val, u32 ep_ro)
{
	return (u32)(((u64)val * ep_ro) >> 32);
}

#endif
