/* SPDX-License-Identifier: MIT */
/* chunked.h -- pure incremental decoder of a chunked request body (RFC 9112 §7.1)
 *
 * No I/O and no allocation: the caller feeds the bytes that follow the request head as they
 * arrive and gets back, per call, how many it consumed and at most one span of chunk data
 * (pointing into its own input). It never needs a byte twice, so the caller keeps no raw
 * framing: only the data it copies out. Once chunked_done(), the bytes after the consumed
 * ones belong to the next request.
 *
 * Strict like the head parser (smuggling): every line ends in CRLF (a bare CR or LF is an
 * error), chunk data must be followed by CRLF, chunk-size is 1 to 16 hex digits. Chunk
 * extensions are accepted and ignored as RFC 9112 §7.1.1 asks ("MUST ignore unrecognized"),
 * but only when well formed (token names, token or quoted-string values, BWS around ";" and
 * "=") and within a budget for the whole body, which §7.1.1 lets a server set. Trailer
 * fields are checked like header lines (token name, colon, no obs-fold) within their own
 * byte budget and then dropped: nothing in a trailer can change how a request is framed or
 * routed (§7.1.2 lets a recipient discard them).
 */
#ifndef SLUICE_INGRESS_CHUNKED_H
#define SLUICE_INGRESS_CHUNKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a chunked body was refused; chunked_error_status() maps each to its HTTP status. */
enum chunked_error {
	CHUNKED_ERR_NONE = 0,
	CHUNKED_ERR_SIZE,	       /* 400 chunk-size missing or not hexadecimal */
	CHUNKED_ERR_SIZE_OVERFLOW,     /* 400 chunk-size longer than 16 hex digits */
	CHUNKED_ERR_EXT,	       /* 400 malformed chunk extension */
	CHUNKED_ERR_EXT_TOO_LONG,      /* 400 chunk extensions over the body's budget */
	CHUNKED_ERR_BARE_CR,	       /* 400 CR not followed by LF */
	CHUNKED_ERR_BARE_LF,	       /* 400 LF not preceded by CR */
	CHUNKED_ERR_DATA_END,	       /* 400 chunk data not followed by CRLF */
	CHUNKED_ERR_TRAILER,	       /* 400 malformed trailer field */
	CHUNKED_ERR_TRAILER_TOO_LARGE, /* 431 trailer section over its budget */
	CHUNKED_ERR_BODY_TOO_LARGE,    /* 413 the chunks add up to more than max_body */
	CHUNKED_ERR_MAX,
};

struct chunked_limits {
	uint64_t max_body;  /* sum of the chunk sizes */
	size_t max_ext;	    /* bytes of chunk extensions over the whole body */
	size_t max_trailer; /* bytes of the trailer section, final CRLF included */
};

/* Decoding state; chunked_init() it for every chunked body. */
struct chunked {
	struct chunked_limits lim;
	int state;	    /* enum in chunked.c */
	unsigned digits;    /* hex digits of the current chunk-size */
	uint64_t remaining; /* chunk-size, then data bytes still to come */
	uint64_t body;	    /* data bytes so far */
	size_t ext;	    /* extension bytes so far */
	size_t trailer;	    /* trailer bytes so far */
};

/* Defaults: 1 MiB body, 4 KiB of extensions, 8 KiB of trailers. */
void chunked_limits_default(struct chunked_limits *lim);
/* Start decoding a new body with the given limits (copied). */
void chunked_init(struct chunked *ck, const struct chunked_limits *lim);

/* Decode from in[0..len), the next bytes of the body (never bytes already consumed).
 * Returns how many bytes were consumed, or -enum chunked_error. Chunk data among them is
 * reported in *data and *data_len (pointing into in; at most one span per call, *data_len 0
 * when none): call again with the rest. Consumes at least one byte whenever len > 0 and the
 * body is not done; once done it consumes nothing more. After an error, chunked_init()
 * before any other use. */
long chunked_parse(struct chunked *ck, const char *in, size_t len, const char **data,
		   size_t *data_len);
/* Whether the last chunk and the trailer section have been consumed. */
bool chunked_done(const struct chunked *ck);

/* The HTTP status for an error (400, 413, 431). */
int chunked_error_status(enum chunked_error e);
/* Short machine-readable code ("bad_request") and a human sentence for the error. */
const char *chunked_error_code(enum chunked_error e);
const char *chunked_error_detail(enum chunked_error e);

#endif /* SLUICE_INGRESS_CHUNKED_H */
