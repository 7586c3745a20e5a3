/* SPDX-License-Identifier: MIT */
/* loop_features.h -- the io_uring features newer than Sluice's floor, by name
 *
 * The ingress loop (loop.c) uses each of these where the kernel has it and a Linux 5.7
 * equivalent where it does not; --uring-off turns them off by name on a kernel that has
 * them. Kept apart from loop.c so the settings parser does not pull in liburing.
 */
#ifndef SLUICE_LOOP_FEATURES_H
#define SLUICE_LOOP_FEATURES_H

#include <stddef.h>

enum loop_feature {
	LOOP_FEAT_BUF_RING = 1u << 0,	      /* 5.19; else IORING_OP_PROVIDE_BUFFERS SQEs */
	LOOP_FEAT_MULTISHOT_ACCEPT = 1u << 1, /* 5.19; else one accept SQE per connection */
	LOOP_FEAT_MULTISHOT_RECV = 1u << 2,   /* 6.0; else one recv SQE per read */
	LOOP_FEAT_ALL = (1u << 3) - 1,
};

/* Parse a comma-separated list of feature names (buf_ring, multishot_accept, multishot_recv,
 * or all) into LOOP_FEAT_* bits. 0, or -EINVAL at the first unknown name. */
int loop_features_parse(const char *list, unsigned *bits);

/* Log fields saying, per feature, what is used: ` buffers=ring`, or the fallback and why
 * (` recv="one-shot (multishot recv needs Linux 6.0)"`, or "turned off" when it is not in
 * wanted). Written into buf (always terminated); returns buf. */
const char *loop_features_describe(unsigned have, unsigned wanted, char *buf, size_t len);

#endif /* SLUICE_LOOP_FEATURES_H */
