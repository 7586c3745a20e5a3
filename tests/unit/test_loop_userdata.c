// SPDX-License-Identifier: MIT
/* test_loop_userdata.c -- io_uring user_data encode/decode round trips and field isolation */
#include "ingress/loop.h"
#include "lib/array_size.h"
#include "test_progs.h"

void test_loop_userdata(void)
{
	static const uint32_t idxs[] = {0, 1, 65535, 0x7fffffff, 0xffffffff};
	static const uint32_t gens[] = {0, 1, 0x123456, LOOP_UD_GEN_MASK};

	if (test__start_subtest("roundtrip")) {
		for (int op = LOOP_OP_NONE; op < LOOP_OP_MAX; op++)
			for (size_t i = 0; i < ARRAY_SIZE(idxs); i++)
				for (size_t g = 0; g < ARRAY_SIZE(gens); g++) {
					uint64_t ud = loop_ud_encode(op, idxs[i], gens[g]);

					if (!ASSERT_EQ(loop_ud_op(ud), op, "op") ||
					    !ASSERT_EQ(loop_ud_idx(ud), idxs[i], "idx") ||
					    !ASSERT_EQ(loop_ud_gen(ud), gens[g], "gen"))
						return;
				}
	}
	if (test__start_subtest("generation_wraps")) {
		/* a generation past 24 bits wraps instead of spilling into the op byte */
		uint64_t ud = loop_ud_encode(LOOP_OP_RECV, 7, LOOP_UD_GEN_MASK + 1 + 5);

		ASSERT_EQ(loop_ud_op(ud), LOOP_OP_RECV, "op intact");
		ASSERT_EQ(loop_ud_gen(ud), 5, "gen wrapped");
		ASSERT_EQ(loop_ud_idx(ud), 7, "idx intact");
	}
	if (test__start_subtest("distinct")) {
		/* the same slot's operations never collide across ops or generations */
		ASSERT_NEQ(loop_ud_encode(LOOP_OP_SEND, 3, 1), loop_ud_encode(LOOP_OP_RECV, 3, 1),
			   "op differs");
		ASSERT_NEQ(loop_ud_encode(LOOP_OP_SEND, 3, 1), loop_ud_encode(LOOP_OP_SEND, 3, 2),
			   "gen differs");
		ASSERT_NEQ(loop_ud_encode(LOOP_OP_NONE, 0, 0), 0xffffffffffffffffULL,
			   "never LIBURING_UDATA_TIMEOUT");
	}
}
