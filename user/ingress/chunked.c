// SPDX-License-Identifier: MIT
/* chunked.c -- pure incremental decoder of a chunked request body (RFC 9112 §7.1)
 *
 * One state per position in the grammar, one byte at a time through the framing and one
 * memcpy-able span at a time through chunk data:
 *
 *	chunked-body = *chunk last-chunk trailer-section CRLF
 *	chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *	chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )   ext-val = token /
 *quoted-string
 *
 * Limits are checked where their quantity grows, so a body is refused at the first byte
 * that breaks one, never after buffering it. The body limit is checked when a chunk-size
 * line ends (not digit by digit), so a chunk-size too long to be a number is always the
 * 400 for overflow and a well-formed size over the budget always the 413.
 *
 * Invariant: ck->body is the sum of the chunk sizes accepted so far, <= lim.max_body.
 */
#include <string.h>

#include "ingress/chunked.h"
#include "ingress/http_chars.h"
#include "lib/hex.h"

enum {
	S_SIZE_FIRST,	   /* first hex digit of a chunk-size */
	S_SIZE,		   /* more digits, or ";" / BWS / CR */
	S_EXT_BWS,	   /* whitespace that must lead to ";" */
	S_EXT_NAME_WS,	   /* after ";": BWS, then a name */
	S_EXT_NAME,	   /* name token; then "=" / ";" / BWS / CR */
	S_EXT_NAME_BWS,	   /* whitespace after a name: "=" or ";" must follow */
	S_EXT_VAL_WS,	   /* after "=": BWS, then a token or a quoted string */
	S_EXT_TOKEN,	   /* token value */
	S_EXT_QUOTED,	   /* inside a quoted string */
	S_EXT_QUOTED_PAIR, /* after a backslash in a quoted string */
	S_EXT_END,	   /* after a closing quote: ";" / BWS / CR */
	S_SIZE_LF,	   /* CR of the chunk-size line seen */
	S_DATA,		   /* chunk data */
	S_DATA_CR,	   /* CRLF after chunk data */
	S_DATA_LF,
	S_TRAILER_START, /* a trailer line, or the final CRLF */
	S_TRAILER_NAME,
	S_TRAILER_VALUE,
	S_TRAILER_LF,
	S_END_LF, /* CR of the final CRLF seen */
	S_DONE,
};

static const struct {
	int status;
	const char *detail;
} errors[CHUNKED_ERR_MAX] = {
    [CHUNKED_ERR_NONE] = {200, "no error"},
    [CHUNKED_ERR_SIZE] = {400, "chunk size missing or not hexadecimal"},
    [CHUNKED_ERR_SIZE_OVERFLOW] = {400, "chunk size longer than 16 hex digits"},
    [CHUNKED_ERR_EXT] = {400, "malformed chunk extension"},
    [CHUNKED_ERR_EXT_TOO_LONG] = {400, "chunk extensions too long"},
    [CHUNKED_ERR_BARE_CR] = {400, "CR not followed by LF in chunked body"},
    [CHUNKED_ERR_BARE_LF] = {400, "line ends in LF without CR in chunked body"},
    [CHUNKED_ERR_DATA_END] = {400, "chunk data not followed by CRLF"},
    [CHUNKED_ERR_TRAILER] = {400, "malformed trailer field"},
    [CHUNKED_ERR_TRAILER_TOO_LARGE] = {431, "trailer section too large"},
    [CHUNKED_ERR_BODY_TOO_LARGE] = {413, "request body larger than --max-body"},
};

int chunked_error_status(enum chunked_error e)
{
	return e < CHUNKED_ERR_MAX ? errors[e].status : 500;
}

const char *chunked_error_code(enum chunked_error e)
{
	switch (chunked_error_status(e)) {
	case 413:
		return "body_too_large";
	case 431:
		return "header_too_large";
	default:
		return "bad_request";
	}
}

const char *chunked_error_detail(enum chunked_error e)
{
	return e < CHUNKED_ERR_MAX ? errors[e].detail : "internal error";
}

void chunked_limits_default(struct chunked_limits *lim)
{
	lim->max_body = 1 << 20;
	lim->max_ext = 4096;
	lim->max_trailer = 8192;
}

void chunked_init(struct chunked *ck, const struct chunked_limits *lim)
{
	memset(ck, 0, sizeof(*ck));
	ck->lim = *lim;
	ck->state = S_SIZE_FIRST;
}

bool chunked_done(const struct chunked *ck)
{
	return ck->state == S_DONE;
}

/* The chunk-size is complete: charge it to the body budget. */
static int size_done(struct chunked *ck)
{
	if (ck->remaining > ck->lim.max_body - ck->body)
		return -CHUNKED_ERR_BODY_TOO_LARGE;
	ck->body += ck->remaining;
	return 0;
}

/* One byte of a chunk-size line (digits and extensions). New state, or -error. */
static int size_line_byte(struct chunked *ck, unsigned char c)
{
	int s = ck->state, h, err;

	if (s != S_SIZE_FIRST && s != S_SIZE && ++ck->ext > ck->lim.max_ext)
		return -CHUNKED_ERR_EXT_TOO_LONG;
	if (c == '\n')
		return -CHUNKED_ERR_BARE_LF;
	switch (s) {
	case S_SIZE_FIRST:
	case S_SIZE:
		h = hex_digit(c);
		if (h >= 0) {
			if (++ck->digits > 16)
				return -CHUNKED_ERR_SIZE_OVERFLOW;
			ck->remaining = ck->remaining << 4 | (uint64_t)h;
			return S_SIZE;
		}
		if (s == S_SIZE_FIRST || (c != '\r' && c != ';' && !http_is_ws(c)))
			return -CHUNKED_ERR_SIZE;
		if ((err = size_done(ck)))
			return err;
		if (c == '\r')
			return S_SIZE_LF;
		if (++ck->ext > ck->lim.max_ext) /* the byte that starts the extensions */
			return -CHUNKED_ERR_EXT_TOO_LONG;
		return c == ';' ? S_EXT_NAME_WS : S_EXT_BWS;
	case S_EXT_BWS:
		return http_is_ws(c) ? S_EXT_BWS : c == ';' ? S_EXT_NAME_WS : -CHUNKED_ERR_EXT;
	case S_EXT_NAME_WS:
		return http_is_ws(c)	  ? S_EXT_NAME_WS
		       : http_is_tchar(c) ? S_EXT_NAME
					  : -CHUNKED_ERR_EXT;
	case S_EXT_NAME:
	case S_EXT_NAME_BWS:
		if (http_is_tchar(c) && s == S_EXT_NAME)
			return S_EXT_NAME;
		if (c == '\r' && s == S_EXT_NAME)
			return S_SIZE_LF;
		return http_is_ws(c) ? S_EXT_NAME_BWS
		       : c == '='    ? S_EXT_VAL_WS
		       : c == ';'    ? S_EXT_NAME_WS
				     : -CHUNKED_ERR_EXT;
	case S_EXT_VAL_WS:
		return http_is_ws(c)	  ? S_EXT_VAL_WS
		       : c == '"'	  ? S_EXT_QUOTED
		       : http_is_tchar(c) ? S_EXT_TOKEN
					  : -CHUNKED_ERR_EXT;
	case S_EXT_TOKEN:
		if (http_is_tchar(c))
			return S_EXT_TOKEN;
		__attribute__((fallthrough)); /* after a value, as after a quoted string */
	case S_EXT_END:
		return c == '\r'       ? S_SIZE_LF
		       : c == ';'      ? S_EXT_NAME_WS
		       : http_is_ws(c) ? S_EXT_BWS
				       : -CHUNKED_ERR_EXT;
	case S_EXT_QUOTED:
		return c == '"'		       ? S_EXT_END
		       : c == '\\'	       ? S_EXT_QUOTED_PAIR
		       : http_is_field_char(c) ? S_EXT_QUOTED
					       : -CHUNKED_ERR_EXT;
	default: /* S_EXT_QUOTED_PAIR */
		return http_is_field_char(c) ? S_EXT_QUOTED : -CHUNKED_ERR_EXT;
	}
}

/* One byte of the trailer section. New state, or -error. */
static int trailer_byte(struct chunked *ck, unsigned char c)
{
	if (++ck->trailer > ck->lim.max_trailer)
		return -CHUNKED_ERR_TRAILER_TOO_LARGE;
	if (c == '\n' && ck->state != S_TRAILER_LF && ck->state != S_END_LF)
		return -CHUNKED_ERR_BARE_LF;
	switch (ck->state) {
	case S_TRAILER_START:
		if (c == '\r')
			return S_END_LF;
		return http_is_tchar(c) ? S_TRAILER_NAME
					: -CHUNKED_ERR_TRAILER; /* SP/HT: obs-fold */
	case S_TRAILER_NAME:
		return http_is_tchar(c) ? S_TRAILER_NAME
		       : c == ':'	? S_TRAILER_VALUE
					: -CHUNKED_ERR_TRAILER;
	case S_TRAILER_VALUE:
		if (c == '\r')
			return S_TRAILER_LF;
		return http_is_field_char(c) ? S_TRAILER_VALUE : -CHUNKED_ERR_TRAILER;
	case S_TRAILER_LF:
		return c == '\n' ? S_TRAILER_START : -CHUNKED_ERR_BARE_CR;
	default: /* S_END_LF */
		return c == '\n' ? S_DONE : -CHUNKED_ERR_BARE_CR;
	}
}

long chunked_parse(struct chunked *ck, const char *in, size_t len, const char **data,
		   size_t *data_len)
{
	size_t i = 0;

	*data = NULL;
	*data_len = 0;
	while (i < len && ck->state != S_DONE) {
		unsigned char c = (unsigned char)in[i];
		int next;

		switch (ck->state) {
		case S_DATA: {
			size_t n = len - i < ck->remaining ? len - i : (size_t)ck->remaining;

			*data = in + i;
			*data_len = n;
			ck->remaining -= n;
			if (!ck->remaining)
				ck->state = S_DATA_CR;
			return (long)(i + n);
		}
		case S_SIZE_LF:
			if (c != '\n')
				return -CHUNKED_ERR_BARE_CR;
			next = ck->remaining ? S_DATA : S_TRAILER_START;
			break;
		case S_DATA_CR:
			if (c != '\r')
				return c == '\n' ? -CHUNKED_ERR_BARE_LF : -CHUNKED_ERR_DATA_END;
			next = S_DATA_LF;
			break;
		case S_DATA_LF:
			if (c != '\n')
				return -CHUNKED_ERR_BARE_CR;
			ck->digits = 0;
			next = S_SIZE_FIRST;
			break;
		case S_TRAILER_START:
		case S_TRAILER_NAME:
		case S_TRAILER_VALUE:
		case S_TRAILER_LF:
		case S_END_LF:
			next = trailer_byte(ck, c);
			break;
		default:
			next = size_line_byte(ck, c);
			break;
		}
		if (next < 0)
			return next;
		ck->state = next;
		i++;
	}
	return (long)i;
}
