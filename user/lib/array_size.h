/* SPDX-License-Identifier: MIT */
/* array_size.h -- ARRAY_SIZE, the one element count of a fixed array for all user code
 *
 * As in the kernel's <linux/array_size.h>: sizeof(a) / sizeof((a)[0]), and a pointer in
 * place of an array (which would give a wrong count) stops the build, through an array
 * whose size turns negative. Its own header, so including it pulls in nothing else.
 */
#ifndef SLUICE_ARRAY_SIZE_H
#define SLUICE_ARRAY_SIZE_H

#define ARRAY_SIZE_MUST_BE_ARRAY(a)                                                                \
	(0 * sizeof(char[1 - 2 * __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0]))]))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]) + ARRAY_SIZE_MUST_BE_ARRAY(a))

#endif /* SLUICE_ARRAY_SIZE_H */
