// SPDX-License-Identifier: MIT
/* crc32c.c -- CRC-32C with the SSE4.2 instruction, slice-by-8 tables as the fallback
 *
 * The tables are built once (pthread_once) from the reflected polynomial; the hardware path
 * is chosen at first use with __builtin_cpu_supports and is bit-identical to the tables.
 * Both take and return the finalised CRC so calls chain (crc32c_extend(crc, ...)).
 */
#include <pthread.h>
#include <string.h>

#include "queue/journal/crc32c.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int use_hw = -1;

static void table_build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

/* Table CRC-32C; same contract as crc32c_extend. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&table_once, table_build);
	crc = ~crc;
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= crc; /* little-endian: the low 4 bytes meet the running CRC */
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
		      table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
		      table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf,
							    size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

/* CRC-32C of buf continued from crc (0 to start). Thread-safe. */
uint32_t crc32c_extend(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	int hw = __atomic_load_n(&use_hw, __ATOMIC_RELAXED);

	if (hw < 0) {
		hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		__atomic_store_n(&use_hw, hw, __ATOMIC_RELAXED);
	}
	if (hw)
		return crc32c_hw(crc, buf, len);
#endif
	return crc32c_sw(crc, buf, len);
}
