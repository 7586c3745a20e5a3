/* SPDX-License-Identifier: MIT */
/* crc32c.h -- CRC-32C (Castagnoli), the checksum of every journal record
 *
 * Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF (the iSCSI / ext4 /
 * RocksDB convention): crc32c("123456789") == 0xE3069283. Uses the SSE4.2 crc32 instruction
 * when the CPU has it, a slice-by-8 table otherwise; both give identical results.
 */
#ifndef SLUICE_CRC32C_H
#define SLUICE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c_extend(0, buf, n) is the CRC of buf; feeding a buffer in pieces
 * through the previous result gives the same value as one call. */
uint32_t crc32c_extend(uint32_t crc, const void *buf, size_t len);

static inline uint32_t crc32c(const void *buf, size_t len)
{
	return crc32c_extend(0, buf, len);
}

/* The portable table implementation (exposed so tests compare it with the hardware path). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif /* SLUICE_CRC32C_H */
