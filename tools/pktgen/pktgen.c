// SPDX-License-Identifier: MIT
/* pktgen.c -- raw packet sender for XDP tests and benchmarks: TCP SYN, TCP data, UDP
 *
 *	pktgen --iface IF --dst-mac MAC --dst ADDR --src LIST|A-B|CIDR [--type syn|data|udp]
 *	       [--dport 8080] [--rate PPS] [--count N | --duration 5s] [--json]
 *
 * Frames are written through an AF_PACKET socket bound to the interface, in batches with
 * sendmmsg(2) and PACKET_QDISC_BYPASS (straight to the driver, as trafgen does), so one
 * core pushes hundreds of thousands of packets per second into a veth. It is run inside
 * the sender's network namespace (nsenter --net=...). Sources rotate per packet through
 * the given list, range or prefix (a prefix contributes at most 65536 addresses); the
 * source port rotates too, so every SYN looks like a new connection. Pacing is against
 * the absolute schedule start + n / rate, so sleeping late never lowers the average rate.
 * Frames come from the packet builder the XDP tests use (tools/lib/pkt: valid IPv4 and
 * TCP/UDP checksums, one implementation), and the flags from a lib/confparse table (the
 * --help text too); neither needs a library. The report gives packets sent (taken
 * by the device), packets refused (dropped by the device: with the qdisc bypassed nothing
 * is queued or retried), the measured send time (first to last sendmmsg), the rate at
 * which frames were handed to the device, and the process's CPU time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/confparse.h"
#include "pkt.h"

#define MAX_SRCS  65536
#define MAX_BATCH 256

enum gen_type { GEN_SYN, GEN_DATA, GEN_UDP };

struct gen {
	char iface[IF_NAMESIZE];
	unsigned char dst_mac[6], src_mac[6];
	bool have_smac;
	char dst_text[64], src_text[4096];
	int v6;
	unsigned char dst[16]; /* IPv4 mapped, as the packet builder takes it */
	unsigned char (*srcs)[16];
	unsigned nsrcs;
	int type; /* enum gen_type */
	unsigned dport, sport_base, payload;
	double rate;		  /* 0: as fast as possible */
	unsigned long long count; /* 0: until duration */
	double duration;	  /* s, 0: until count */
	unsigned batch;
	bool json;
	struct pkt_spec spec; /* what every frame shares; build_frame sets the rest */
};

static void die_arg(const char *opt, const char *val, const char *valid)
{
	fprintf(stderr, "pktgen: %s %s: %s\n", opt, val, valid);
	exit(2);
}

static unsigned long long parse_num(const char *opt, const char *s, long long min, long long max)
{
	const struct confparse_opt o = {opt,
					NULL,
					NULL,
					CONFPARSE_INT,
					.size = sizeof(long long),
					.min = (double)min,
					.max = (double)max};
	char why[96];
	long long v;

	if (confparse_apply(&o, &v, s, why, sizeof(why)))
		die_arg(opt, s, why);
	return (unsigned long long)v;
}

/* --duration: 500ms, 5s (or 5), 1m into seconds. */
static int set_seconds(void *obj, const char *s, char *why, size_t whylen)
{
	char *end;
	double v = strtod(s, &end), *out = obj;

	if (end != s && v > 0 &&
	    (!*end || !strcmp(end, "s") || !strcmp(end, "ms") || !strcmp(end, "m"))) {
		*out = !strcmp(end, "ms") ? v / 1e3 : !strcmp(end, "m") ? v * 60 : v;
		return 0;
	}
	snprintf(why, whylen, "expected a positive duration such as 500ms, 5s or 1m");
	return -EINVAL;
}

static int set_mac(void *obj, const char *s, char *why, size_t whylen)
{
	unsigned char m[6];
	char extra;

	if (sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
		   &extra) == 6) {
		memcpy(obj, m, sizeof(m));
		return 0;
	}
	snprintf(why, whylen, "expected a MAC address such as 02:00:00:00:00:01");
	return -EINVAL;
}

/* Address into 16 bytes (IPv4 mapped, ::ffff:a.b.c.d); returns 1 for IPv6, 0 for IPv4. */
static int parse_ip(const char *opt, const char *s, unsigned char a[16])
{
	memset(a, 0, 16);
	if (inet_pton(AF_INET, s, a + 12) == 1) {
		a[10] = a[11] = 0xff;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a) == 1)
		return 1;
	die_arg(opt, s, "expected an IPv4 or IPv6 address");
	return -1;
}

/* Add n to the address's low 64 bits (big endian). */
static void addr_add(unsigned char a[16], unsigned long long n)
{
	int i;

	for (i = 15; i >= 8 && n; i--) {
		unsigned long long s = a[i] + (n & 0xff);

		a[i] = s & 0xff;
		n = (n >> 8) + (s >> 8);
	}
}

static int addr_cmp(const unsigned char *a, const unsigned char *b)
{
	return memcmp(a, b, 16);
}

static void add_src(struct gen *g, const unsigned char a[16])
{
	if (g->nsrcs >= MAX_SRCS)
		die_arg("--src", "...", "at most 65536 source addresses");
	memcpy(g->srcs[g->nsrcs++], a, 16);
}

/* "a,b,c", "A-B" or "ADDR/LEN"; all of one family, the family of --dst. */
static void parse_srcs(struct gen *g, const char *s)
{
	char buf[4096], *tok, *save = NULL, *sep;
	unsigned char a[16], b[16];

	if (strlen(s) >= sizeof(buf))
		die_arg("--src", "...", "list too long");
	snprintf(buf, sizeof(buf), "%s", s);
	if ((sep = strchr(buf, '/'))) {
		unsigned long long len, host_bits, n, i;

		*sep = 0;
		if (parse_ip("--src", buf, a) != g->v6)
			die_arg("--src", s, "must be of the same family as --dst");
		len = parse_num("--src prefix length", sep + 1, 0, g->v6 ? 128 : 32);
		host_bits = (g->v6 ? 128 : 32) - len;
		n = host_bits >= 16 ? MAX_SRCS : 1ULL << host_bits;
		if (!g->v6 && host_bits >= 2)
			n -= 2, addr_add(a, 1); /* skip network and broadcast */
		for (i = 0; i < n; i++, addr_add(a, 1))
			add_src(g, a);
		return;
	}
	if ((sep = strchr(buf, '-'))) {
		*sep = 0;
		if (parse_ip("--src", buf, a) != g->v6 || parse_ip("--src", sep + 1, b) != g->v6)
			die_arg("--src", s, "must be of the same family as --dst");
		if (addr_cmp(a, b) > 0)
			die_arg("--src", s, "range must go from low to high");
		for (; addr_cmp(a, b) <= 0; addr_add(a, 1))
			add_src(g, a);
		return;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (parse_ip("--src", tok, a) != g->v6)
			die_arg("--src", tok, "must be of the same family as --dst");
		add_src(g, a);
	}
}

/* Frame number seq from source src into f: the shared spec plus what rotates per frame (source
 * address and port, IP ID, TCP sequence number). */
static void build_frame(const struct gen *g, const unsigned char *src, unsigned long long seq,
			struct pkt *f)
{
	struct pkt_spec s = g->spec;

	s.src_raw = src;
	s.sport = (__u16)(g->sport_base + seq % (65536 - g->sport_base));
	s.ip_id = (__u16)seq;
	s.tcp_seq = (__u32)(seq * 7919u + 1);
	pkt_build(f, &s); /* main built frame 0 of this spec, so it cannot fail */
}

/* The fields every frame shares. */
static void frame_spec(struct gen *g)
{
	struct pkt_spec *s = &g->spec;

	memset(s, 0, sizeof(*s));
	s->l3 = g->v6 ? PKT_L3_IPV6 : PKT_L3_IPV4;
	s->proto = g->type == GEN_UDP ? IPPROTO_UDP : IPPROTO_TCP;
	s->dst_raw = g->dst;
	s->mac_src = g->src_mac;
	s->mac_dst = g->dst_mac;
	s->dport = (__u16)g->dport;
	s->dont_frag = true;
	s->tcp_flags = g->type == GEN_SYN ? PKT_SYN : PKT_PSH | PKT_ACK;
	s->tcp_ack = 1;
	s->payload_len = g->payload;
}

static void sleep_until(double t)
{
	struct timespec ts = clock_ts((uint64_t)(t * 1e9));

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int open_socket(const struct gen *g, unsigned char mac_out[6], bool have_mac)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET};
	struct ifreq ifr = {};
	int fd = socket(AF_PACKET, SOCK_RAW, 0), one = 1;

	if (fd < 0) {
		fprintf(stderr, "pktgen: AF_PACKET socket: %s (needs CAP_NET_RAW)\n",
			strerror(errno));
		exit(1);
	}
	sll.sll_ifindex = (int)if_nametoindex(g->iface);
	if (!sll.sll_ifindex)
		die_arg("--iface", g->iface, "no such interface in this network namespace");
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		fprintf(stderr, "pktgen: bind to %s: %s\n", g->iface, strerror(errno));
		exit(1);
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)))
		fprintf(stderr, "pktgen: PACKET_QDISC_BYPASS: %s (sending through the qdisc)\n",
			strerror(errno));
	if (!have_mac) {
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", g->iface);
		if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
			fprintf(stderr, "pktgen: MAC of %s: %s\n", g->iface, strerror(errno));
			exit(1);
		}
		memcpy(mac_out, ifr.ifr_hwaddr.sa_data, 6);
	}
	return fd;
}

/* Frames handed to the device, and how many of those it refused (dropped). */
struct result {
	unsigned long long handed, refused;
	double first, last;
};

/* Send one batch of n frames starting at frame number seq. With the qdisc bypassed, a
 * frame the driver does not take (ENOBUFS: the veth peer dropped it, or its queue was
 * full) is gone, not queued; it is counted as refused and the batch goes on with the next
 * one, so a device that drops everything still lets the run end on time. */
static void send_batch(int fd, const struct gen *g, unsigned long long seq, unsigned n,
		       struct pkt *frames, struct result *r)
{
	struct mmsghdr msg[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	unsigned i, done = 0;

	memset(msg, 0, sizeof(msg[0]) * n);
	for (i = 0; i < n; i++) {
		build_frame(g, g->srcs[(seq + i) % g->nsrcs], seq + i, &frames[i]);
		iov[i].iov_base = frames[i].buf;
		iov[i].iov_len = frames[i].len;
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
	}
	while (done < n) {
		int k = sendmmsg(fd, msg + done, n - done, 0);

		if (k >= 0) {
			done += (unsigned)k;
		} else if (errno == ENOBUFS) {
			r->refused++;
			done++;
		} else if (errno != EAGAIN && errno != EINTR) {
			fprintf(stderr, "pktgen: sendmmsg on %s: %s\n", g->iface, strerror(errno));
			exit(1);
		}
	}
	r->handed += n;
}

static void run(const struct gen *g, int fd, struct result *r)
{
	static struct pkt frames[MAX_BATCH];
	unsigned batch = g->batch;
	double start, end;

	if (g->rate > 0 && g->rate / 1000 + 1 < batch)
		batch = (unsigned)(g->rate / 1000) + 1; /* pace at ~1 ms granularity */
	start = clock_mono_s();
	end = g->duration > 0 ? start + g->duration : 0;
	r->first = 0;
	while (!g->count || r->handed < g->count) {
		unsigned n = batch;
		double t;

		if (g->count && g->count - r->handed < n)
			n = (unsigned)(g->count - r->handed);
		if (g->rate > 0)
			sleep_until(start + (double)r->handed / g->rate);
		t = clock_mono_s();
		if (end && t >= end)
			break;
		if (!r->first)
			r->first = t;
		send_batch(fd, g, r->handed, n, frames, r);
		r->last = clock_mono_s();
	}
}

/* "sent" counts frames the device took; rate_pps is frames handed to it per second. */
static void report(const struct gen *g, const struct result *r)
{
	unsigned long long sent = r->handed - r->refused;
	double el = r->handed ? r->last - r->first : 0;
	double pps = el > 0 ? r->handed / el : 0;
	struct rusage ru;
	double us, sy;

	getrusage(RUSAGE_SELF, &ru);
	us = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
	sy = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (g->json)
		printf("{\"sent\": %llu, \"refused\": %llu, \"elapsed_s\": %.6f, "
		       "\"rate_pps\": %.1f, \"first_s\": %.6f, \"last_s\": %.6f, \"sources\": %u, "
		       "\"cpu_user_s\": %.3f, \"cpu_sys_s\": %.3f}\n",
		       sent, r->refused, el, pps, r->first, r->last, g->nsrcs, us, sy);
	else
		printf("sent %llu packets in %.3f s: %.0f packets/s from %u sources; %llu refused "
		       "by the device (cpu %.2fs user %.2fs sys)\n",
		       sent, el, pps, g->nsrcs, r->refused, us, sy);
}

static const char *const types[] = {"syn", "data", "udp", NULL}; /* enum gen_type */

#define F(f) CONFPARSE_FIELD(struct gen, f)

static const struct confparse_opt opts[] = {
    {"iface", "IF", "send through IF (required)", CONFPARSE_STR, F(iface), 1},
    {"dst-mac", "MAC", "destination MAC (required)", CONFPARSE_FUNC, F(dst_mac), .set = set_mac},
    {"dst", "ADDR", "destination address, IPv4 or IPv6 (required)", CONFPARSE_STR, F(dst_text), 1},
    {"src", "SOURCES", "a,b,c | A-B | ADDR/LEN, the family of --dst (required)", CONFPARSE_STR,
     F(src_text), 1},
    {"src-mac", "MAC", "source MAC (default: the interface's)", CONFPARSE_FUNC, F(src_mac),
     .set = set_mac},
    {"type", "T", "syn, data (TCP PSH|ACK) or udp", CONFPARSE_ENUM, F(type), .def = "syn",
     .choices = types},
    {"dport", "N", "destination port", CONFPARSE_INT, F(dport), 1, 65535, "8080"},
    {"sport", "N", "first source port, rotating up to 65535", CONFPARSE_INT, F(sport_base), 1,
     65535, "1024"},
    {"payload", "N", "payload bytes", CONFPARSE_INT, F(payload), 0, 1400, "0"},
    {"rate", "PPS", "packets per second (default: as fast as possible)", CONFPARSE_DOUBLE, F(rate),
     1, 1e8},
    {"count", "N", "packets to send (default 1000 unless --duration)", CONFPARSE_INT, F(count), 1,
     1LL << 40},
    {"duration", "D", "send for D (500ms, 5s, 1m)", CONFPARSE_FUNC, F(duration),
     .set = set_seconds},
    {"batch", "N", "frames per sendmmsg (at most 256)", CONFPARSE_INT, F(batch), 1, MAX_BATCH,
     "64"},
    {"json", NULL, "one JSON object: sent, refused, elapsed_s, rate_pps, ...", CONFPARSE_BOOL,
     F(json)},
};

static const struct confparse_table table = CONFPARSE_TABLE_OF(opts);

static void usage(FILE *f)
{
	fprintf(f, "Usage: pktgen --iface IF --dst-mac MAC --dst ADDR --src SOURCES [options]\n");
	confparse_usage(f, &table);
}

/* Parse argv into g, or exit 2 with the reason (0 after --help). */
static void parse_args(struct gen *g, int argc, char **argv)
{
	static const char *const required[] = {"iface", "dst-mac", "dst", "src"};
	bool seen[ARRAY_SIZE(opts)] = {false};
	char err[512];
	int r = confparse_defaults(&table, g, err, sizeof(err));

	r = r ?: confparse_argv(&table, g, argc, argv, "pktgen", seen, err, sizeof(err));
	if (r == 1) {
		usage(stdout);
		exit(0);
	}
	if (r) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
		if (!seen[confparse_find(&table, required[i], NULL) - opts]) {
			fprintf(stderr,
				"pktgen: --%s is required (pktgen --help lists the options)\n",
				required[i]);
			exit(2);
		}
	}
	g->have_smac = seen[confparse_find(&table, "src-mac", NULL) - opts];
}

int main(int argc, char **argv)
{
	struct gen g = {0};
	struct result r = {};
	struct pkt first;
	int fd;

	parse_args(&g, argc, argv);
	g.v6 = parse_ip("--dst", g.dst_text, g.dst);
	g.srcs = calloc(MAX_SRCS, 16);
	if (!g.srcs)
		return 1;
	parse_srcs(&g, g.src_text);
	if (!g.count && !g.duration)
		g.count = 1000;
	fd = open_socket(&g, g.src_mac, g.have_smac);
	frame_spec(&g);
	g.spec.src_raw = g.srcs[0];
	if (pkt_build(&first, &g.spec)) {
		fprintf(stderr, "pktgen: cannot build a frame from these options\n");
		return 2;
	}
	run(&g, fd, &r);
	report(&g, &r);
	close(fd);
	free(g.srcs);
	return 0;
}
