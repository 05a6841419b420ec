// SPDX-License-Identifier: GPL-2.0-only
/*
 * On-disk format: encode, decode and check the superblock and the entries.
 * No I/O here (see format.h).
 */
#include "format.h"

static bool ic_all_zero(const void *buf, size_t len)
{
	const u8 *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

u32 ic_format_salt(const u8 uuid[IC_UUID_BYTES])
{
	return crc32c(~0U, uuid, IC_UUID_BYTES);
}

static u32 ic_sb_csum(const struct ic_disk_sb *disk)
{
	return crc32c(~0U, (const u8 *)disk + sizeof(disk->csum),
		      IC_SB_BYTES - sizeof(disk->csum));
}

void ic_sb_encode(const struct ic_sb *sb, struct ic_disk_sb *disk)
{
	memset(disk, 0, sizeof(*disk));
	disk->version = cpu_to_le32(IC_SB_VERSION);
	disk->magic = cpu_to_le64(IC_SB_MAGIC);
	disk->sb_seq = cpu_to_le64(sb->sb_seq);
	disk->compat = cpu_to_le64(sb->compat);
	disk->ro_compat = cpu_to_le64(sb->ro_compat);
	disk->incompat = cpu_to_le64(sb->incompat);
	memcpy(disk->uuid, sb->uuid, IC_UUID_BYTES);
	disk->flags = cpu_to_le32(sb->flags);
	disk->block_sectors = cpu_to_le32(sb->block_sectors);
	disk->ways = cpu_to_le32(IC_WAYS);
	disk->meta_sectors_per_set = cpu_to_le32(IC_META_SECTORS_PER_SET);
	disk->nr_sets = cpu_to_le64(sb->nr_sets);
	disk->meta_start = cpu_to_le64(sb->meta_start);
	disk->data_start = cpu_to_le64(sb->data_start);
	disk->cache_sectors = cpu_to_le64(sb->cache_sectors);
	disk->origin_sectors = cpu_to_le64(sb->origin_sectors);
	memcpy(disk->origin_tag, sb->origin_tag, IC_ORIGIN_TAG_BYTES);
	disk->commit_seq = cpu_to_le64(sb->commit_seq);
	disk->format_time = cpu_to_le64(sb->format_time);
	disk->load_count = cpu_to_le64(sb->load_count);
	disk->csum = cpu_to_le32(ic_sb_csum(disk));
}

enum ic_sb_status ic_sb_decode(const void *buf, struct ic_sb *sb,
			       const char **why)
{
	const struct ic_disk_sb *disk = buf;

	*why = NULL;
	if (le64_to_cpu(disk->magic) != IC_SB_MAGIC) {
		if (ic_all_zero(buf, IC_SB_BYTES))
			return IC_SB_BLANK;
		*why = "no infercache superblock magic";
		return IC_SB_NOT_OURS;
	}
	if (le32_to_cpu(disk->csum) != ic_sb_csum(disk)) {
		*why = "superblock checksum mismatch";
		return IC_SB_CORRUPT;
	}
	if (le32_to_cpu(disk->version) != IC_SB_VERSION) {
		*why = "unsupported superblock version";
		return IC_SB_CORRUPT;
	}

	memset(sb, 0, sizeof(*sb));
	sb->sb_seq = le64_to_cpu(disk->sb_seq);
	sb->compat = le64_to_cpu(disk->compat);
	sb->ro_compat = le64_to_cpu(disk->ro_compat);
	sb->incompat = le64_to_cpu(disk->incompat);
	memcpy(sb->uuid, disk->uuid, IC_UUID_BYTES);
	sb->flags = le32_to_cpu(disk->flags);
	sb->block_sectors = le32_to_cpu(disk->block_sectors);
	sb->nr_sets = le64_to_cpu(disk->nr_sets);
	sb->meta_start = le64_to_cpu(disk->meta_start);
	sb->data_start = le64_to_cpu(disk->data_start);
	sb->cache_sectors = le64_to_cpu(disk->cache_sectors);
	sb->origin_sectors = le64_to_cpu(disk->origin_sectors);
	memcpy(sb->origin_tag, disk->origin_tag, IC_ORIGIN_TAG_BYTES);
	sb->commit_seq = le64_to_cpu(disk->commit_seq);
	sb->format_time = le64_to_cpu(disk->format_time);
	sb->load_count = le64_to_cpu(disk->load_count);

	if (sb->incompat & ~IC_FEATURE_INCOMPAT_SUPP) {
		*why = "superblock has unknown incompatible features";
		return IC_SB_CORRUPT;
	}
	if (sb->ro_compat & ~IC_FEATURE_RO_COMPAT_SUPP) {
		*why = "superblock has unknown read-only-compatible features";
		return IC_SB_CORRUPT;
	}
	if (sb->flags & ~IC_SB_KNOWN_FLAGS) {
		*why = "superblock has unknown flags";
		return IC_SB_CORRUPT;
	}
	if (le32_to_cpu(disk->ways) != IC_WAYS ||
	    le32_to_cpu(disk->meta_sectors_per_set) != IC_META_SECTORS_PER_SET) {
		*why = "superblock has an unsupported set layout";
		return IC_SB_CORRUPT;
	}
	if (ic_sb_check_geometry(sb, why))
		return IC_SB_CORRUPT;
	return IC_SB_OK;
}

int ic_sb_check_geometry(const struct ic_sb *sb, const char **why)
{
	struct ic_geometry geo;

	if (sb->block_sectors < IC_MIN_BLOCK_SECTORS ||
	    sb->block_sectors > IC_MAX_BLOCK_SECTORS ||
	    !is_power_of_2(sb->block_sectors)) {
		*why = "superblock block size out of range";
		return -EINVAL;
	}
	/*
	 * The layout is a function of the cache size at format time and the
	 * block size: anything else was not written by us.
	 */
	if (ic_geometry_init(&geo, sb->cache_sectors, sb->block_sectors) ||
	    geo.nr_sets != sb->nr_sets || geo.meta_start != sb->meta_start ||
	    geo.data_start != sb->data_start) {
		*why = "superblock geometry is inconsistent";
		return -EINVAL;
	}
	if (sb->nr_sets > U32_MAX) {
		*why = "superblock has too many sets";
		return -EINVAL;
	}
	if (!sb->origin_sectors ||
	    sb->origin_sectors / sb->block_sectors > IC_OBLOCK_LIMIT) {
		*why = "superblock origin size out of range";
		return -EINVAL;
	}
	return 0;
}

void ic_sb_geometry(const struct ic_sb *sb, struct ic_geometry *geo)
{
	/* Cannot fail: ic_sb_check_geometry() passed. */
	ic_geometry_init(geo, sb->cache_sectors, sb->block_sectors);
}

int ic_sb_choose(const enum ic_sb_status st[IC_SB_COPIES],
		 const struct ic_sb sb[IC_SB_COPIES])
{
	int best = -1, i;

	for (i = 0; i < IC_SB_COPIES; i++)
		if (st[i] == IC_SB_OK &&
		    (best < 0 || sb[i].sb_seq > sb[best].sb_seq))
			best = i;
	return best;
}

static u32 ic_entry_csum(const struct ic_disk_entry *disk, u32 salt, u64 slot)
{
	__le64 le_slot = cpu_to_le64(slot);
	u32 crc;

	crc = crc32c(salt, &le_slot, sizeof(le_slot));
	return crc32c(crc, disk, offsetof(struct ic_disk_entry, csum));
}

void ic_entry_encode(const struct ic_entry *e, u32 salt, u64 slot,
		     struct ic_disk_entry *disk)
{
	memset(disk, 0, sizeof(*disk));
	if (!(e->flags & IC_ENTRY_VALID))
		return;		/* a free slot is all zeroes */
	disk->oblock = cpu_to_le64(e->oblock);
	disk->seq = cpu_to_le64(e->seq);
	disk->flags = cpu_to_le32(e->flags);
	disk->csum = cpu_to_le32(ic_entry_csum(disk, salt, slot));
}

enum ic_entry_status ic_entry_decode(const struct ic_disk_entry *disk,
				     u32 salt, u64 slot, u64 origin_blocks,
				     u64 nr_sets, struct ic_entry *e)
{
	memset(e, 0, sizeof(*e));
	if (ic_all_zero(disk, sizeof(*disk)))
		return IC_ENTRY_FREE;
	if (le32_to_cpu(disk->csum) != ic_entry_csum(disk, salt, slot))
		return IC_ENTRY_BAD_CSUM;

	e->oblock = le64_to_cpu(disk->oblock);
	e->seq = le64_to_cpu(disk->seq);
	e->flags = le32_to_cpu(disk->flags);
	if (!(e->flags & IC_ENTRY_VALID) ||
	    (e->flags & ~IC_ENTRY_KNOWN_FLAGS) || disk->reserved[0] ||
	    disk->reserved[1] || e->oblock >= origin_blocks ||
	    ic_oblock_set(e->oblock, nr_sets) != slot / IC_WAYS)
		return IC_ENTRY_BAD_VALUE;
	return IC_ENTRY_OK;
}
