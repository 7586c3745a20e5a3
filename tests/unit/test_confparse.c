// SPDX-License-Identifier: MIT
/* test_confparse.c -- the settings table: every row type, sub-tables, flags, defaults, help
 *
 * One table over a struct with a field of every kind, used the three ways Sluice uses
 * tables: `key = value` (confparse_set), argv (confparse_argv) and defaults + --help. A
 * refused value must leave its field as it was, and every message must name the input.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/confparse.h"
#include "test_progs.h"

struct inner {
	uint32_t depth;
};

struct settings {
	char name[8];
	uint16_t port;
	uint64_t wait_ns;
	long long big;
	bool on;
	double ratio;
	int mode;
	int nitems;
	struct inner in;
};

static int add_item(void *obj, const char *value, char *why, size_t whylen)
{
	struct settings *s = obj;

	if (s->nitems >= 2) {
		snprintf(why, whylen, "too many items (at most 2)");
		return -E2BIG;
	}
	s->nitems++;
	return 0;
}

static int no_x(const char *value, char *why, size_t whylen)
{
	if (!strchr(value, 'x'))
		return 0;
	snprintf(why, whylen, "no x allowed");
	return -EINVAL;
}

static const char *const modes[] = {"fast", "safe", "slow", NULL};

static const struct confparse_opt inner_opts[] = {
    {"depth", NULL, NULL, CONFPARSE_INT, CONFPARSE_FIELD(struct inner, depth), 1, 9},
};
static const struct confparse_table inner_table = CONFPARSE_TABLE_OF(inner_opts);

#define F(f) CONFPARSE_FIELD(struct settings, f)

static const struct confparse_opt opts[] = {
    {"name", "NAME", "a name", CONFPARSE_STR, F(name), 1, .def = "anon", .check = no_x},
    {"port", "PORT", "a port", CONFPARSE_INT, F(port), 1, 65535, .def = "8080"},
    {"wait-ms", "MS", "a wait", CONFPARSE_INT, F(wait_ns), 0, 60000, .def = "5", .scale = 1000000},
    {"big", "N", NULL, CONFPARSE_INT, F(big), -5, 1LL << 40},
    {"on", NULL, "a switch", CONFPARSE_BOOL, F(on), .def = "off"},
    {"ratio", "R", "a share", CONFPARSE_DOUBLE, F(ratio), 0, 1, .def = "0.5"},
    {"mode", "M", "a mode", CONFPARSE_ENUM, F(mode), .def = "safe", .choices = modes},
    {"item", "I", "repeatable", CONFPARSE_FUNC, .set = add_item},
    {"in.", NULL, NULL, CONFPARSE_TABLE, F(in), .sub = &inner_table},
};
static const struct confparse_table table = CONFPARSE_TABLE_OF(opts);

static void subtest_set(void)
{
	struct settings s = {0};
	char err[256] = "";

	ASSERT_OK(confparse_set(&table, &s, "port", "443", err, sizeof(err)), "port");
	ASSERT_EQ(s.port, 443, "uint16 field");
	ASSERT_OK(confparse_set(&table, &s, "wait-ms", "250", err, sizeof(err)), "wait");
	ASSERT_EQ(s.wait_ns, 250000000ULL, "scaled to ns");
	ASSERT_OK(confparse_set(&table, &s, "big", "1099511627776", err, sizeof(err)), "big");
	ASSERT_EQ(s.big, 1LL << 40, "long long field");
	ASSERT_OK(confparse_set(&table, &s, "big", "-5", err, sizeof(err)), "negative min");
	ASSERT_EQ(s.big, -5, "negative stored");
	ASSERT_OK(confparse_set(&table, &s, "on", "yes", err, sizeof(err)), "bool");
	ASSERT_TRUE(s.on, "yes is on");
	ASSERT_OK(confparse_set(&table, &s, "ratio", "0.25", err, sizeof(err)), "double");
	ASSERT_EQ(s.ratio, 0.25, "double stored");
	ASSERT_OK(confparse_set(&table, &s, "mode", "slow", err, sizeof(err)), "enum");
	ASSERT_EQ(s.mode, 2, "enum index");
	ASSERT_OK(confparse_set(&table, &s, "name", "db", err, sizeof(err)), "string");
	ASSERT_STREQ(s.name, "db", "string stored");
	ASSERT_OK(confparse_set(&table, &s, "in.depth", "3", err, sizeof(err)), "sub-table");
	ASSERT_EQ(s.in.depth, 3, "sub-table field");

	ASSERT_EQ(confparse_set(&table, &s, "port", "70000", err, sizeof(err)), -EINVAL, "range");
	ASSERT_STREQ(err, "port = 70000: expected a whole number in 1-65535", "range message");
	ASSERT_EQ(s.port, 443, "unchanged after an error");
	ASSERT_EQ(confparse_set(&table, &s, "port", "80x", err, sizeof(err)), -EINVAL, "junk");
	ASSERT_EQ(confparse_set(&table, &s, "port", "", err, sizeof(err)), -EINVAL, "empty");
	ASSERT_EQ(confparse_set(&table, &s, "big", "99999999999999999999", err, sizeof(err)),
		  -EINVAL, "overflow");
	ASSERT_EQ(confparse_set(&table, &s, "ratio", "nan", err, sizeof(err)), -EINVAL, "nan");
	ASSERT_HAS_STR(err, "ratio = nan: expected a number in 0-1", "double message");
	ASSERT_EQ(confparse_set(&table, &s, "on", "maybe", err, sizeof(err)), -EINVAL, "bool");
	ASSERT_HAS_STR(err, "on = maybe: must be on or off", "bool message");
	ASSERT_EQ(confparse_set(&table, &s, "mode", "quick", err, sizeof(err)), -EINVAL, "enum");
	ASSERT_STREQ(err, "mode = quick: must be fast, safe or slow", "choices listed");
	ASSERT_EQ(s.mode, 2, "enum unchanged");
	ASSERT_EQ(confparse_set(&table, &s, "name", "", err, sizeof(err)), -EINVAL, "empty str");
	ASSERT_HAS_STR(err, "must not be empty", "empty message");
	ASSERT_EQ(confparse_set(&table, &s, "name", "12345678", err, sizeof(err)), -EINVAL,
		  "too long");
	ASSERT_HAS_STR(err, "too long (at most 7 characters)", "length message");
	ASSERT_EQ(confparse_set(&table, &s, "name", "box", err, sizeof(err)), -EINVAL, "check");
	ASSERT_STREQ(err, "name = box: no x allowed", "check message");
	ASSERT_STREQ(s.name, "db", "string unchanged");
	ASSERT_EQ(confparse_set(&table, &s, "in.depth", "10", err, sizeof(err)), -EINVAL, "sub");
	ASSERT_HAS_STR(err, "in.depth = 10: expected a whole number in 1-9", "key as written");
	ASSERT_EQ(confparse_set(&table, &s, "in", "1", err, sizeof(err)), -ENOENT, "prefix alone");

	ASSERT_OK(confparse_set(&table, &s, "item", "a", err, sizeof(err)), "item 1");
	ASSERT_OK(confparse_set(&table, &s, "item", "b", err, sizeof(err)), "item 2");
	ASSERT_EQ(confparse_set(&table, &s, "item", "c", err, sizeof(err)), -E2BIG, "item 3");
	ASSERT_STREQ(err, "item = c: too many items (at most 2)", "setter message");

	ASSERT_EQ(confparse_set(&table, &s, "colour", "red", err, sizeof(err)), -ENOENT, "unknown");
	ASSERT_HAS_STR(err, "colour: unknown key (valid: name, port, wait-ms", "lists the keys");
	ASSERT_HAS_STR(err, "in.*)", "and the sub-tables");
}

static void subtest_defaults_and_help(void)
{
	struct settings s = {.big = 7};
	char err[256] = "", *text = NULL;
	size_t len = 0;
	FILE *out;

	ASSERT_OK(confparse_defaults(&table, &s, err, sizeof(err)), "defaults");
	ASSERT_STREQ(s.name, "anon", "str default");
	ASSERT_EQ(s.port, 8080, "int default");
	ASSERT_EQ(s.wait_ns, 5000000ULL, "default scaled too");
	ASSERT_EQ(s.big, 7, "no default: left alone");
	ASSERT_EQ(s.ratio, 0.5, "double default");
	ASSERT_EQ(s.mode, 1, "enum default");

	out = open_memstream(&text, &len);
	if (!ASSERT_OK_PTR(out, "memstream"))
		return;
	confparse_usage(out, &table);
	fclose(out);
	ASSERT_HAS_STR(text, "  --port PORT                    a port (default 8080)\n", "row");
	ASSERT_HAS_STR(text, "  --on                           a switch\n", "flag, no default");
	ASSERT_FALSE(strstr(text, "--big"), "a row without help is not listed");
	free(text);
}

static int argv_parse(struct settings *s, bool *seen, char *err, size_t errlen, int argc, ...)
{
	char *argv[16] = {"prog"};
	va_list ap;

	va_start(ap, argc);
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return confparse_argv(&table, s, argc, argv, "prog", seen, err, errlen);
}

static void subtest_argv(void)
{
	bool seen[ARRAY_SIZE(opts)] = {false};
	struct settings s = {0};
	char err[256] = "";

	ASSERT_OK(argv_parse(&s, seen, err, sizeof(err), 6, "--port", "9000", "--on", "--item=x",
			     "--ratio=1"),
		  "flags");
	ASSERT_EQ(s.port, 9000, "--port VALUE");
	ASSERT_TRUE(s.on, "a flag without value is on");
	ASSERT_EQ(s.nitems, 1, "--name=VALUE");
	ASSERT_EQ(s.ratio, 1.0, "--ratio=1");
	ASSERT_TRUE(seen[1] && seen[4] && seen[5] && seen[7], "seen marks what was given");
	ASSERT_FALSE(seen[0] || seen[2], "and nothing else");
	ASSERT_OK(argv_parse(&s, NULL, err, sizeof(err), 2, "--on=false"), "--flag=false");
	ASSERT_FALSE(s.on, "turned off");

	ASSERT_EQ(argv_parse(&s, NULL, err, sizeof(err), 3, "--port", "0"), -EINVAL, "range");
	ASSERT_STREQ(err, "prog: --port 0: expected a whole number in 1-65535", "flag message");
	ASSERT_EQ(argv_parse(&s, NULL, err, sizeof(err), 2, "--frobnicate"), -EINVAL, "unknown");
	ASSERT_STREQ(err, "prog: --frobnicate: unknown option (see prog --help)", "unknown msg");
	ASSERT_EQ(argv_parse(&s, NULL, err, sizeof(err), 2, "--port"), -EINVAL, "no value");
	ASSERT_HAS_STR(err, "--port: needs a value", "needs a value");
	ASSERT_EQ(argv_parse(&s, NULL, err, sizeof(err), 2, "stray"), -EINVAL, "positional");
	ASSERT_HAS_STR(err, "stray: unexpected argument", "stray msg");
	ASSERT_EQ(
	    argv_parse(&s, NULL, err, sizeof(err), 3, "--name",
		       "a-name-of-well-over-sixty-characters-that-would-crowd-out-the-reason"),
	    -EINVAL, "long value");
	ASSERT_HAS_STR(err, "crowd-out-th...: too long (at most 7 characters)",
		       "value abbreviated");
	ASSERT_EQ(argv_parse(&s, NULL, err, sizeof(err), 4, "--port", "1", "--help"), 1, "help");
	ASSERT_EQ(argv_parse(&s, NULL, err, sizeof(err), 2, "-h"), 1, "-h");
}

void test_confparse(void)
{
	if (test__start_subtest("set"))
		subtest_set();
	if (test__start_subtest("defaults_and_help"))
		subtest_defaults_and_help();
	if (test__start_subtest("argv"))
		subtest_argv();
}
