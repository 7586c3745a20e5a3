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
 * Every packet has valid IPv4 and TCP/UDP checksums. The report gives packets sent (taken
 * by the device), packets refused (dropped by the device: with the qdisc bypassed nothing
 * is queued or retried), the measured send time (first to last sendmmsg), the rate at
 * which frames were handed to the device, and the process's CPU time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
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

#define MAX_SRCS  65536
#define MAX_BATCH 256
#define FRAME_MAX 1514
#define ETH_HLEN_ 14

enum pkt_type { PKT_SYN, PKT_DATA, PKT_UDP };

struct gen {
	const char *iface;
	unsigned char dst_mac[6], src_mac[6];
	int v6;
	unsigned char dst[16];
	unsigned char (*srcs)[16];
	unsigned nsrcs;
	enum pkt_type type;
	unsigned dport, sport_base, payload;
	double rate;		  /* 0: as fast as possible */
	unsigned long long count; /* 0: until duration */
	double duration;	  /* s, 0: until count */
	unsigned batch;
	bool json;
};

static void die_arg(const char *opt, const char *val, const char *valid)
{
	fprintf(stderr, "pktgen: %s %s: %s\n", opt, val, valid);
	exit(2);
}

static unsigned long long parse_num(const char *opt, const char *s, unsigned long long min,
				    unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || v < min || v > max) {
		char valid[96];

		snprintf(valid, sizeof(valid), "expected a whole number from %llu to %llu", min,
			 max);
		die_arg(opt, s, valid);
	}
	return v;
}

static double parse_seconds(const char *opt, const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v <= 0)
		die_arg(opt, s, "expected a positive duration such as 500ms, 5s or 1m");
	if (!strcmp(end, "ms"))
		return v / 1e3;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!*end || !strcmp(end, "s"))
		return v;
	die_arg(opt, s, "expected a positive duration such as 500ms, 5s or 1m");
	return 0;
}

static void parse_mac(const char *opt, const char *s, unsigned char mac[6])
{
	if (sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
		   &mac[5]) != 6)
		die_arg(opt, s, "expected a MAC address such as 02:00:00:00:00:01");
}

/* Address into 16 bytes (IPv4 in the last 4); returns 1 for IPv6, 0 for IPv4. */
static int parse_ip(const char *opt, const char *s, unsigned char a[16])
{
	memset(a, 0, 16);
	if (inet_pton(AF_INET, s, a + 12) == 1)
		return 0;
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

static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 1) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* Build frame number seq from source src into f; returns its length. */
/* Header fields sit at odd offsets in the frame: store them byte-wise (no unaligned
 * access, which UBSan rightly reports). Values are already in network order. */
static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static size_t build_frame(const struct gen *g, const unsigned char *src, unsigned long long seq,
			  unsigned char *f)
{
	size_t l4len = (g->type == PKT_UDP ? 8 : 20) + g->payload, l3len = g->v6 ? 40 : 20;
	unsigned char *ip = f + ETH_HLEN_, *l4 = ip + l3len;
	uint16_t sport = (uint16_t)(g->sport_base + seq % (65536 - g->sport_base));
	uint32_t sum;

	memcpy(f, g->dst_mac, 6);
	memcpy(f + 6, g->src_mac, 6);
	f[12] = g->v6 ? 0x86 : 0x08;
	f[13] = g->v6 ? 0xdd : 0x00;
	memset(ip, 0, l3len + l4len);
	if (g->v6) {
		ip[0] = 0x60;
		ip[4] = (uint8_t)(l4len >> 8);
		ip[5] = (uint8_t)l4len;
		ip[6] = g->type == PKT_UDP ? IPPROTO_UDP : IPPROTO_TCP;
		ip[7] = 64;
		memcpy(ip + 8, src, 16);
		memcpy(ip + 24, g->dst, 16);
		sum = csum_add(0, ip + 8, 32);
	} else {
		ip[0] = 0x45;
		ip[2] = (uint8_t)((l3len + l4len) >> 8);
		ip[3] = (uint8_t)(l3len + l4len);
		ip[4] = (uint8_t)(seq >> 8);
		ip[5] = (uint8_t)seq;
		ip[6] = 0x40; /* DF */
		ip[8] = 64;
		ip[9] = g->type == PKT_UDP ? IPPROTO_UDP : IPPROTO_TCP;
		memcpy(ip + 12, src + 12, 4);
		memcpy(ip + 16, g->dst + 12, 4);
		put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
		sum = csum_add(0, ip + 12, 8);
	}
	sum += (g->type == PKT_UDP ? IPPROTO_UDP : IPPROTO_TCP) + (uint32_t)l4len;
	l4[0] = (uint8_t)(sport >> 8);
	l4[1] = (uint8_t)sport;
	l4[2] = (uint8_t)(g->dport >> 8);
	l4[3] = (uint8_t)g->dport;
	if (g->type == PKT_UDP) {
		l4[4] = (uint8_t)(l4len >> 8);
		l4[5] = (uint8_t)l4len;
		put16(l4 + 6, csum_fold(csum_add(sum, l4, l4len)));
		return ETH_HLEN_ + l3len + l4len;
	}
	put32(l4 + 4, htonl((uint32_t)(seq * 7919u + 1))); /* seq */
	if (g->type == PKT_DATA)
		put32(l4 + 8, htonl(1)); /* ack */
	l4[12] = 5 << 4;
	l4[13] = g->type == PKT_SYN ? 0x02 : 0x18; /* SYN : PSH|ACK */
	l4[14] = 0xff;
	l4[15] = 0xff;
	put16(l4 + 16, csum_fold(csum_add(sum, l4, l4len)));
	return ETH_HLEN_ + l3len + l4len;
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
		       unsigned char (*frames)[FRAME_MAX], struct result *r)
{
	struct mmsghdr msg[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	unsigned i, done = 0;

	memset(msg, 0, sizeof(msg[0]) * n);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = frames[i];
		iov[i].iov_len = build_frame(g, g->srcs[(seq + i) % g->nsrcs], seq + i, frames[i]);
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
	static unsigned char frames[MAX_BATCH][FRAME_MAX];
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

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pktgen --iface IF --dst-mac MAC --dst ADDR --src SOURCES [options]\n"
		"  --src SOURCES     a,b,c | A-B | ADDR/LEN (IPv4 or IPv6, same family as --dst)\n"
		"  --src-mac MAC     default: the interface's\n"
		"  --type T          syn (default), data (TCP PSH|ACK) or udp\n"
		"  --dport N         destination port (default 8080)\n"
		"  --sport N         first source port, rotating up to 65535 (default 1024)\n"
		"  --payload N       payload bytes (default 0)\n"
		"  --rate PPS        packets per second (default: as fast as possible)\n"
		"  --count N         packets to send (default 1000 unless --duration)\n"
		"  --duration D      send for D (500ms, 5s, 1m)\n"
		"  --batch N         frames per sendmmsg (default 64, max %d)\n"
		"  --json            one JSON object: sent, refused, elapsed_s, rate_pps, ...\n",
		MAX_BATCH);
}

/* Option values that are not fields of struct gen. */
struct opt_strs {
	const char *src, *dst;
	bool have_dmac, have_smac;
};

static enum pkt_type parse_type(const char *s)
{
	if (!strcmp(s, "syn"))
		return PKT_SYN;
	if (!strcmp(s, "data"))
		return PKT_DATA;
	if (strcmp(s, "udp"))
		die_arg("--type", s, "expected syn, data or udp");
	return PKT_UDP;
}

/* Apply option o (its getopt code) with optarg; false for one that is not a value. */
static bool apply_opt(struct gen *g, struct opt_strs *a, int o)
{
	switch (o) {
	case 'i':
		g->iface = optarg;
		break;
	case 'M':
		parse_mac("--dst-mac", optarg, g->dst_mac), a->have_dmac = true;
		break;
	case 'm':
		parse_mac("--src-mac", optarg, g->src_mac), a->have_smac = true;
		break;
	case 'd':
		a->dst = optarg;
		break;
	case 's':
		a->src = optarg;
		break;
	case 't':
		g->type = parse_type(optarg);
		break;
	case 'p':
		g->dport = (unsigned)parse_num("--dport", optarg, 1, 65535);
		break;
	case 'P':
		g->sport_base = (unsigned)parse_num("--sport", optarg, 1, 65535);
		break;
	case 'l':
		g->payload = (unsigned)parse_num("--payload", optarg, 0, 1400);
		break;
	case 'r':
		g->rate = (double)parse_num("--rate", optarg, 1, 100000000);
		break;
	case 'c':
		g->count = parse_num("--count", optarg, 1, 1ULL << 40);
		break;
	case 'D':
		g->duration = parse_seconds("--duration", optarg);
		break;
	case 'b':
		g->batch = (unsigned)parse_num("--batch", optarg, 1, MAX_BATCH);
		break;
	case 'j':
		g->json = true;
		break;
	default:
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"iface", 1, 0, 'i'},   {"dst-mac", 1, 0, 'M'},
	    {"src-mac", 1, 0, 'm'}, {"dst", 1, 0, 'd'},
	    {"src", 1, 0, 's'},	    {"type", 1, 0, 't'},
	    {"dport", 1, 0, 'p'},   {"sport", 1, 0, 'P'},
	    {"payload", 1, 0, 'l'}, {"rate", 1, 0, 'r'},
	    {"count", 1, 0, 'c'},   {"duration", 1, 0, 'D'},
	    {"batch", 1, 0, 'b'},   {"json", 0, 0, 'j'},
	    {"help", 0, 0, 'h'},    {0},
	};
	struct gen g = {.dport = 8080, .sport_base = 1024, .batch = 64};
	struct opt_strs a = {0};
	struct result r = {};
	int o, fd;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (apply_opt(&g, &a, o))
			continue;
		usage(o == 'h' ? stdout : stderr);
		return o == 'h' ? 0 : 2;
	}
	if (optind < argc)
		die_arg("argument", argv[optind], "unexpected (pktgen --help lists the options)");
	if (!g.iface || !a.have_dmac || !a.dst || !a.src) {
		fprintf(stderr, "pktgen: --iface, --dst-mac, --dst and --src are required\n");
		usage(stderr);
		return 2;
	}
	g.v6 = parse_ip("--dst", a.dst, g.dst);
	g.srcs = calloc(MAX_SRCS, 16);
	if (!g.srcs)
		return 1;
	parse_srcs(&g, a.src);
	if (!g.count && !g.duration)
		g.count = 1000;
	fd = open_socket(&g, g.src_mac, a.have_smac);
	run(&g, fd, &r);
	report(&g, &r);
	close(fd);
	free(g.srcs);
	return 0;
}
