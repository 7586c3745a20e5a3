// SPDX-License-Identifier: MIT
/* xdp_config.c -- mapping the pinned config map's entry (see xdp_config.h for who writes what)
 *
 * The map is a BPF_F_MMAPABLE array of one entry: its value is the first bytes of the
 * first page, shared with the XDP program, so stores into the mapping are what the program
 * reads on its next packet.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nic/xdp_config.h"

static size_t map_len(void)
{
	long page = sysconf(_SC_PAGESIZE);

	return page > 0 ? (size_t)page : 4096;
}

struct sluice_config *xdp_config_map(int fd)
{
	void *p = mmap(NULL, map_len(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

void xdp_config_unmap(struct sluice_config *c)
{
	if (c)
		munmap(c, map_len());
}

int xdp_config_bump_fd(int fd)
{
	struct sluice_config *c = xdp_config_map(fd);

	if (!c)
		return -errno;
	xdp_config_bump(c);
	xdp_config_unmap(c);
	return 0;
}
