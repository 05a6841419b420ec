/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The on-disk format of a dm-infercache cache device, version 1. Pure
 * encode/decode/validate: no I/O. Built into the module and, through
 * ic_compat.h, into tools/infercache-check and the host unit tests, so all
 * three agree on every byte. Documentation/admin-guide/dm-infercache-format.rst
 * describes the same layout in prose.
 *
 * Layout (sectors are 512 bytes; all integers little-endian):
 *
 *   sector 0     superblock copy 0 (struct ic_disk_sb in a 4 KiB slot)
 *   sector 8     superblock copy 1
 *   sector 2048  set metadata: set S at sector meta_start + S, holding
 *                the IC_WAYS entries (struct ic_disk_entry) of its slots
 *   data_start   the data of slot N at data_start + N * block_sectors
 *
 * A superblock copy is valid when its magic, version and crc32c are right;
 * the valid copy with the larger sb_seq wins. Both copies are rewritten on
 * every update, one after the other, so a torn write leaves the other.
 *
 * An entry says "slot N holds origin block B". It is all zeroes when the
 * slot is free; otherwise its crc32c covers the slot number and the entry,
 * seeded with a salt derived from the superblock UUID, so an entry left by
 * an earlier format of the same device, or copied to another slot, fails.
 * The driver writes an entry VALID only when the slot's data and the
 * origin's agree and are both stable, and removes it (stable) before
 * either may change: so after any crash, every entry that checks out may be
 * served (see Documentation/admin-guide/dm-infercache-format.rst).
 */
#ifndef DM_INFERCACHE_FORMAT_H
#define DM_INFERCACHE_FORMAT_H

#include "ic_compat.h"
#include "geometry.h"

#define IC_SB_MAGIC		0x4843414352464e49ULL	/* "INFRCACH" */
#define IC_SB_VERSION		1
#define IC_SB_COPIES		2
#define IC_SB_SLOT_SECTORS	8	/* each copy owns 4 KiB */
#define IC_SB_BYTES		512	/* of which this much is used */
#define IC_UUID_BYTES		16
#define IC_ORIGIN_TAG_BYTES	32

/* Superblock flags. */
#define IC_SB_CLEAN		BIT(0)	/* shut down cleanly */
#define IC_SB_ERRORS		BIT(1)	/* cache I/O error: trust nothing */
#define IC_SB_KNOWN_FLAGS	(IC_SB_CLEAN | IC_SB_ERRORS)

/*
 * Feature flags. An unknown incompat or ro_compat bit refuses the device
 * (the driver always writes); an unknown compat bit is ignored.
 */
#define IC_FEATURE_COMPAT_SUPP		0ULL
#define IC_FEATURE_RO_COMPAT_SUPP	0ULL
/* Entries may say DIRTY: the slot, not the origin, holds the block. */
#define IC_FEATURE_INCOMPAT_DIRTY	BIT_ULL(0)
#define IC_FEATURE_INCOMPAT_SUPP	IC_FEATURE_INCOMPAT_DIRTY

struct ic_disk_sb {
	__le32 csum;		/* crc32c of bytes 4..IC_SB_BYTES */
	__le32 version;
	__le64 magic;
	__le64 sb_seq;		/* +1 on every superblock write */
	__le64 compat;
	__le64 ro_compat;
	__le64 incompat;
	u8 uuid[IC_UUID_BYTES];	/* made at format time */
	__le32 flags;
	__le32 block_sectors;
	__le32 ways;
	__le32 meta_sectors_per_set;
	__le64 nr_sets;
	__le64 meta_start;
	__le64 data_start;
	__le64 cache_sectors;	/* of the cache device at format time */
	__le64 origin_sectors;	/* of the target at format time */
	u8 origin_tag[IC_ORIGIN_TAG_BYTES];	/* NUL padded */
	__le64 commit_seq;	/* newest commit when this copy was written */
	__le64 format_time;	/* seconds since the epoch */
	__le64 load_count;	/* times loaded since format */
	u8 pad[IC_SB_BYTES - 176];
} __packed;

/* Entry flags. */
#define IC_ENTRY_VALID		BIT(0)
/* Writeback: the origin's copy may be older (only with INCOMPAT_DIRTY). */
#define IC_ENTRY_DIRTY		BIT(1)
#define IC_ENTRY_KNOWN_FLAGS	(IC_ENTRY_VALID | IC_ENTRY_DIRTY)

struct ic_disk_entry {
	__le64 oblock;		/* origin block, in cache blocks */
	__le64 seq;		/* commit that wrote it */
	__le32 flags;
	__le32 reserved[2];	/* zero */
	__le32 csum;		/* crc32c(salt; le64 slot, entry[0..28)) */
} __packed;

#define IC_ENTRIES_PER_SECTOR	(512 / sizeof(struct ic_disk_entry))

/* The superblock, in CPU order. */
struct ic_sb {
	u64 sb_seq;
	u64 compat, ro_compat, incompat;
	u8 uuid[IC_UUID_BYTES];
	u32 flags;
	u32 block_sectors;
	u64 nr_sets;
	u64 meta_start, data_start;
	u64 cache_sectors, origin_sectors;
	u8 origin_tag[IC_ORIGIN_TAG_BYTES];
	u64 commit_seq;
	u64 format_time;
	u64 load_count;
};

enum ic_sb_status {
	IC_SB_OK,
	IC_SB_BLANK,		/* all zeroes: never formatted */
	IC_SB_NOT_OURS,		/* no magic, not blank: someone else's data */
	IC_SB_CORRUPT,		/* our magic, but fails a check */
};

/* What decoding an entry found. */
enum ic_entry_status {
	IC_ENTRY_FREE,		/* all zeroes */
	IC_ENTRY_OK,		/* a VALID entry that checks out */
	IC_ENTRY_BAD_CSUM,	/* damaged, or from an earlier format */
	IC_ENTRY_BAD_VALUE,	/* checksum right, contents impossible */
};

struct ic_entry {
	u64 oblock;
	u64 seq;
	u32 flags;
};

u32 ic_format_salt(const u8 uuid[IC_UUID_BYTES]);

void ic_sb_encode(const struct ic_sb *sb, struct ic_disk_sb *disk);

/*
 * Decode and check one superblock copy (IC_SB_BYTES at @buf). On
 * IC_SB_CORRUPT, *why says what is wrong.
 */
enum ic_sb_status ic_sb_decode(const void *buf, struct ic_sb *sb,
			       const char **why);

/* Check that a decoded superblock describes a sane layout that fits. */
int ic_sb_check_geometry(const struct ic_sb *sb, const char **why);

/* The geometry a valid superblock describes. */
void ic_sb_geometry(const struct ic_sb *sb, struct ic_geometry *geo);

/* Pick the copy to use: the valid one with the larger sb_seq, or -1. */
int ic_sb_choose(const enum ic_sb_status st[IC_SB_COPIES],
		 const struct ic_sb sb[IC_SB_COPIES]);

void ic_entry_encode(const struct ic_entry *e, u32 salt, u64 slot,
		     struct ic_disk_entry *disk);

/*
 * Decode the entry of @slot. A VALID entry is IC_ENTRY_OK only if its
 * origin block lies below @origin_blocks and belongs to the set of @slot
 * among @nr_sets.
 */
enum ic_entry_status ic_entry_decode(const struct ic_disk_entry *disk,
				     u32 salt, u64 slot, u64 origin_blocks,
				     u64 nr_sets, struct ic_entry *e);

#endif
