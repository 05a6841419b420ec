/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * dm-infercache user-visible constants.
 *
 * The target's status line (dmsetup status, STATUSTYPE_INFO) is part of the
 * ABI: fields are only ever appended, never reordered or removed. After
 * "<start> <len> infercache" it reads
 *
 *   <block size> <cached>/<total> <counter>... <mode> <ok|degraded>
 *   <counter>...
 *
 * with one decimal <counter> for each entry of enum dm_infercache_counter,
 * in that order: the first DM_INFERCACHE_NR_COUNTERS_V0 before the mode,
 * the rest (added later, so appended) after the state. Then
 *
 *   <loaded> <dropped> <commits> <dirty>
 *   <idle|running|backoff|paused|flushing> <written back> <writeback ios>
 *   <backoffs> <read p99 us> <read latency target us>
 */
#ifndef _UAPI_LINUX_DM_INFERCACHE_H
#define _UAPI_LINUX_DM_INFERCACHE_H

#define DM_INFERCACHE_TARGET_NAME	"infercache"

enum dm_infercache_counter {
	DM_INFERCACHE_READS,		/* read bios, after splitting into blocks */
	DM_INFERCACHE_READ_HITS,	/* reads served by the cache device */
	DM_INFERCACHE_READ_MISSES,	/* reads served by the origin */
	DM_INFERCACHE_FILLS,		/* blocks copied into the cache */
	DM_INFERCACHE_WRITES,		/* write bios */
	DM_INFERCACHE_WRITE_HITS,	/* writes also written to a cached block */
	DM_INFERCACHE_EVICTIONS,	/* cached blocks given to another block */
	DM_INFERCACHE_DISCARDS,		/* discard bios */
	DM_INFERCACHE_BYPASSES,		/* misses served without a fill */
	DM_INFERCACHE_FILL_ABORTS,	/* fills dropped: raced a write, or failed */
	DM_INFERCACHE_CACHE_ERRORS,	/* I/O errors on the cache device */
	DM_INFERCACHE_NR_COUNTERS_V0,
	DM_INFERCACHE_REJECTS = DM_INFERCACHE_NR_COUNTERS_V0,
					/* misses admission did not fill */
	DM_INFERCACHE_SEQUENTIAL,	/* misses of sequential streams */
	DM_INFERCACHE_NR_COUNTERS,
};

#endif /* _UAPI_LINUX_DM_INFERCACHE_H */
