/* SPDX-License-Identifier: MIT */
/* http_chars.h -- byte classes of the HTTP grammar (RFC 9110 §5.6), shared by the head parser
 * and the chunked decoder so both read a token the same way */
#ifndef SLUICE_INGRESS_HTTP_CHARS_H
#define SLUICE_INGRESS_HTTP_CHARS_H

#include <stdbool.h>
#include <string.h>

/* tchar: the bytes of a token (method, field name, transfer coding, extension name) */
static inline bool http_is_tchar(unsigned char c)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr(extra, c));
}

/* OWS/BWS: space or horizontal tab */
static inline bool http_is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* field-vchar, SP and HTAB: a byte of a field value or of a quoted string (obs-text too) */
static inline bool http_is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

#endif /* SLUICE_INGRESS_HTTP_CHARS_H */
