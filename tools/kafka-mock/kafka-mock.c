// SPDX-License-Identifier: MIT
/* kafka-mock.c -- a librdkafka mock cluster as a process, with fault commands
 *
 *	kafka-mock --brokers 3 --topics sluice.critical,sluice.normal,sluice.low \
 *		   --partitions 6 --rf 3 [--control PATH]
 *
 * There is no Kafka broker on the machines Sluice is tested on, so tests and `make run` run
 * librdkafka's mock cluster (real Kafka protocol on loopback TCP ports) in this process.
 * The mock cannot create topics on request the way a real cluster's admin API does, so the
 * topics are created here at start. Prints one line, `bootstrap=HOST:PORT,...`, then takes
 * one command per line on stdin and on the unix socket --control PATH (any number of
 * clients), answering `ok` or `err WHY` to each:
 *
 *	down N | down all	broker N stops taking connections (drops the ones it has)
 *	up N | up all		takes connections again
 *	rtt N MS		broker N answers every request MS later
 *	leader TOPIC PART N	broker N leads TOPIC/PART (the mock never moves leaders itself)
 *	error TOPIC|* APIKEY CODE COUNT
 *				*: the next COUNT requests of APIKEY (number or name such as
 *				Produce) fail with CODE (number or name such as
 *				NOT_LEADER_FOR_PARTITION, _TRANSPORT disconnects);
 *				TOPIC: APIKEY must be Metadata, the topic reports CODE until
 *				`error TOPIC Metadata 0 0`
 *	quit			exit 0
 *
 * The mock does not replicate: each partition has one log whichever broker leads it, and
 * RF only shapes metadata (replicas, ISR). Tests that move leaders prove the clients'
 * retries and idempotence, not replication. EOF on stdin ends the process unless
 * --control is given (then only quit, SIGTERM or SIGINT do).
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS  16
#define LINE_MAX_LEN 1024

struct client {
	int fd; /* -1: free */
	char buf[LINE_MAX_LEN];
	size_t have;
};

struct mock {
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	int brokers;
	char topics[1024]; /* ",t1,t2,": the topics created (leader refuses others) */
	int listen_fd;	   /* --control, -1 without */
	struct client stdin_c;
	struct client clients[MAX_CLIENTS];
	bool quit;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: kafka-mock [--brokers N] [--topics T1,T2,...] [--partitions P] [--rf R]\n"
		"                  [--control PATH]\n"
		"A librdkafka mock cluster. Prints bootstrap=HOST:PORT,... then reads commands on\n"
		"stdin and on the unix socket PATH: down N|all, up N|all, rtt N MS,\n"
		"leader TOPIC PARTITION BROKER, error TOPIC|* APIKEY CODE COUNT, quit.\n"
		"Defaults: --brokers 3 --topics sluice.critical,sluice.normal,sluice.low\n"
		"          --partitions 6 --rf 3\n");
}

static const struct {
	const char *name;
	int16_t key;
} apikeys[] = {{"Produce", 0},		{"Fetch", 1},
	       {"ListOffsets", 2},	{"Metadata", 3},
	       {"OffsetCommit", 8},	{"OffsetFetch", 9},
	       {"FindCoordinator", 10}, {"JoinGroup", 11},
	       {"Heartbeat", 12},	{"LeaveGroup", 13},
	       {"SyncGroup", 14},	{"ApiVersions", 18},
	       {"InitProducerId", 22},	{"AddPartitionsToTxn", 24},
	       {"EndTxn", 26}};

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return errno || end == s || *end || *out < lo || *out > hi ? -EINVAL : 0;
}

static int parse_apikey(const char *s, int16_t *key)
{
	long v;

	for (size_t i = 0; i < sizeof(apikeys) / sizeof(apikeys[0]); i++)
		if (!strcasecmp(s, apikeys[i].name)) {
			*key = apikeys[i].key;
			return 0;
		}
	if (parse_long(s, 0, 100, &v))
		return -EINVAL;
	*key = (int16_t)v;
	return 0;
}

/* An error code by number or by name (with or without the ERR_ prefix, any case). */
static int parse_errcode(const char *s, rd_kafka_resp_err_t *err)
{
	const struct rd_kafka_err_desc *d;
	size_t n;
	long v;

	if (!parse_long(s, -200, 200, &v)) {
		*err = (rd_kafka_resp_err_t)v;
		return 0;
	}
	if (!strncasecmp(s, "ERR_", 4))
		s += 4;
	rd_kafka_get_err_descs(&d, &n);
	for (size_t i = 0; i < n; i++)
		if (d[i].name && !strcasecmp(d[i].name, s)) {
			*err = d[i].code;
			return 0;
		}
	return -EINVAL;
}

/* A broker id, or "all" (-1). */
static int parse_broker(const struct mock *m, const char *s, int32_t *id)
{
	long v;

	if (!strcmp(s, "all")) {
		*id = -1;
		return 0;
	}
	if (parse_long(s, 1, m->brokers, &v))
		return -EINVAL;
	*id = (int32_t)v;
	return 0;
}

static int set_brokers(struct mock *m, int32_t id, bool up)
{
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

	for (int32_t b = id < 0 ? 1 : id; b <= (id < 0 ? m->brokers : id) && !e; b++)
		e = up ? rd_kafka_mock_broker_set_up(m->mc, b)
		       : rd_kafka_mock_broker_set_down(m->mc, b);
	return e ? -EINVAL : 0;
}

static int cmd_error(struct mock *m, char **av, int ac, char *why, size_t len)
{
	rd_kafka_resp_err_t code;
	int16_t key;
	long count;

	if (ac != 5 || parse_apikey(av[2], &key) || parse_errcode(av[3], &code) ||
	    parse_long(av[4], 0, 1000000, &count)) {
		snprintf(why, len,
			 "usage: error TOPIC|* APIKEY CODE COUNT (APIKEY: number or Produce, "
			 "Metadata...; CODE: number or name)");
		return -EINVAL;
	}
	if (strcmp(av[1], "*")) {
		if (key != 3) {
			snprintf(why, len,
				 "error %s: a topic's error is reported in Metadata only (APIKEY "
				 "3); use * for request errors",
				 av[1]);
			return -EINVAL;
		}
		rd_kafka_mock_topic_set_error(m->mc, av[1], code);
		return 0;
	}
	if (!count)
		rd_kafka_mock_clear_request_errors(m->mc, key);
	for (long i = 0; i < count; i++)
		rd_kafka_mock_push_request_errors_array(m->mc, key, 1, &code);
	return 0;
}

/* One command line; 0 with why empty, or -EINVAL with why. */
static int run_command(struct mock *m, char *line, char *why, size_t len)
{
	char *av[8], *save = NULL, *tok;
	int ac = 0;
	int32_t id;
	long v, part;

	why[0] = 0;
	for (tok = strtok_r(line, " \t\r\n", &save); tok && ac < 8;
	     tok = strtok_r(NULL, " \t\r\n", &save))
		av[ac++] = tok;
	if (!ac)
		return snprintf(why, len, "empty command"), -EINVAL;
	if (!strcmp(av[0], "quit")) {
		m->quit = true;
		return 0;
	}
	if (!strcmp(av[0], "down") || !strcmp(av[0], "up")) {
		if (ac != 2 || parse_broker(m, av[1], &id))
			return snprintf(why, len, "usage: %s 1-%d|all", av[0], m->brokers), -EINVAL;
		return set_brokers(m, id, av[0][0] == 'u')
			   ? (snprintf(why, len, "broker %s refused", av[1]), -EINVAL)
			   : 0;
	}
	if (!strcmp(av[0], "rtt")) {
		if (ac != 3 || parse_broker(m, av[1], &id) || parse_long(av[2], 0, 600000, &v))
			return snprintf(why, len, "usage: rtt 1-%d|all MS", m->brokers), -EINVAL;
		for (int32_t b = id < 0 ? 1 : id; b <= (id < 0 ? m->brokers : id); b++)
			rd_kafka_mock_broker_set_rtt(m->mc, b, (int)v);
		return 0;
	}
	if (!strcmp(av[0], "leader")) {
		char needle[260];

		if (ac != 4 || parse_long(av[2], 0, 1000000, &part) ||
		    parse_broker(m, av[3], &id) || id < 0)
			return snprintf(why, len, "usage: leader TOPIC PARTITION 1-%d", m->brokers),
			       -EINVAL;
		/* the mock would create an unknown topic here */
		snprintf(needle, sizeof(needle), ",%s,", av[1]);
		if (!strstr(m->topics, needle))
			return snprintf(why, len, "leader %s: no such topic (%.200s)", av[1],
					m->topics),
			       -EINVAL;
		if (rd_kafka_mock_partition_set_leader(m->mc, av[1], (int32_t)part, id))
			return snprintf(why, len, "leader %s %ld: no such topic or partition",
					av[1], part),
			       -EINVAL;
		return 0;
	}
	if (!strcmp(av[0], "error"))
		return cmd_error(m, av, ac, why, len);
	snprintf(why, len, "unknown command %s (down, up, rtt, leader, error, quit)", av[0]);
	return -EINVAL;
}

/* Run every complete line in c's buffer, answering on out_fd. */
static void client_lines(struct mock *m, struct client *c, int out_fd)
{
	char *nl, why[512], ans[600];
	size_t used;
	int n;

	while ((nl = memchr(c->buf, '\n', c->have))) {
		*nl = 0;
		used = (size_t)(nl - c->buf) + 1;
		if (run_command(m, c->buf, why, sizeof(why)))
			n = snprintf(ans, sizeof(ans), "err %s\n", why);
		else
			n = snprintf(ans, sizeof(ans), "ok\n");
		if (write(out_fd, ans, (size_t)n) != n) {
			/* the asker left; the command still ran */
		}
		memmove(c->buf, c->buf + used, c->have - used);
		c->have -= used;
	}
	if (c->have == sizeof(c->buf)) /* a line longer than any command: drop it */
		c->have = 0;
}

/* Read from c; false on EOF or error. */
static bool client_read(struct mock *m, struct client *c, int out_fd)
{
	ssize_t r = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);

	if (r <= 0)
		return false;
	c->have += (size_t)r;
	client_lines(m, c, out_fd);
	return true;
}

static int open_control(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "kafka-mock: --control %s: path too long\n", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 8)) {
		fprintf(stderr, "kafka-mock: --control %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int create_cluster(struct mock *m, const char *topics, long partitions, long rf)
{
	char errstr[512], list[1024], *save = NULL;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	/* the handle only owns the cluster; it never connects anywhere */
	rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!m->rk) {
		fprintf(stderr, "kafka-mock: %s\n", errstr);
		return -1;
	}
	m->mc = rd_kafka_mock_cluster_new(m->rk, m->brokers);
	if (!m->mc) {
		fprintf(stderr, "kafka-mock: cannot create a cluster of %d brokers\n", m->brokers);
		return -1;
	}
	snprintf(list, sizeof(list), "%s", topics);
	snprintf(m->topics, sizeof(m->topics), ",%s,", topics);
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		rd_kafka_resp_err_t e =
		    rd_kafka_mock_topic_create(m->mc, t, (int)partitions, (int)rf);

		if (e) {
			fprintf(stderr, "kafka-mock: --topics %s: %s\n", t, rd_kafka_err2str(e));
			return -1;
		}
	}
	return 0;
}

static void serve(struct mock *m, const char *control)
{
	struct pollfd pf[MAX_CLIENTS + 2];

	while (!stop && !m->quit) {
		int n = 0, stdin_i = -1, listen_i = -1;

		if (m->stdin_c.fd >= 0) {
			stdin_i = n;
			pf[n++] = (struct pollfd){.fd = m->stdin_c.fd, .events = POLLIN};
		}
		if (m->listen_fd >= 0) {
			listen_i = n;
			pf[n++] = (struct pollfd){.fd = m->listen_fd, .events = POLLIN};
		}
		for (int i = 0; i < MAX_CLIENTS; i++)
			pf[n++] = (struct pollfd){.fd = m->clients[i].fd, .events = POLLIN};
		if (poll(pf, (nfds_t)n, 500) <= 0)
			continue;
		if (stdin_i >= 0 && pf[stdin_i].revents &&
		    !client_read(m, &m->stdin_c, STDOUT_FILENO)) {
			m->stdin_c.fd = -1;
			if (!control)
				break;
		}
		if (listen_i >= 0 && (pf[listen_i].revents & POLLIN)) {
			int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			for (int i = 0; fd >= 0 && i < MAX_CLIENTS; i++)
				if (m->clients[i].fd < 0) {
					m->clients[i] = (struct client){.fd = fd};
					fd = -1;
				}
			if (fd >= 0)
				close(fd); /* full */
		}
		for (int i = 0, base = n - MAX_CLIENTS; i < MAX_CLIENTS; i++) {
			struct client *c = &m->clients[i];

			if (c->fd >= 0 && pf[base + i].revents && !client_read(m, c, c->fd)) {
				close(c->fd);
				c->fd = -1;
			}
		}
	}
}

int main(int argc, char **argv)
{
	static struct mock m = {.brokers = 3, .listen_fd = -1};
	const char *topics = "sluice.critical,sluice.normal,sluice.low", *control = NULL;
	long partitions = 6, rf = 3, v;
	struct sigaction sa = {.sa_handler = on_signal};
	int ret = 1;

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!val) {
			fprintf(stderr, "kafka-mock: %s: needs a value (see --help)\n", o);
			return 2;
		}
		i++;
		if (!strcmp(o, "--brokers") && !parse_long(val, 1, 64, &v))
			m.brokers = (int)v;
		else if (!strcmp(o, "--partitions") && !parse_long(val, 1, 1024, &v))
			partitions = v;
		else if (!strcmp(o, "--rf") && !parse_long(val, 1, 64, &v))
			rf = v;
		else if (!strcmp(o, "--topics") && *val)
			topics = val;
		else if (!strcmp(o, "--control") && *val)
			control = val;
		else {
			fprintf(stderr,
				"kafka-mock: %s %s: unknown option or bad value (see --help)\n", o,
				val);
			return 2;
		}
	}
	if (rf > m.brokers) {
		fprintf(stderr, "kafka-mock: --rf %ld: more than --brokers %d\n", rf, m.brokers);
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < MAX_CLIENTS; i++)
		m.clients[i].fd = -1;
	m.stdin_c.fd = STDIN_FILENO;
	if (control && (m.listen_fd = open_control(control)) < 0)
		return 2;
	if (create_cluster(&m, topics, partitions, rf))
		goto out;
	printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(m.mc));
	fflush(stdout);
	serve(&m, control);
	ret = 0;
out:
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (m.clients[i].fd >= 0)
			close(m.clients[i].fd);
	if (m.listen_fd >= 0) {
		close(m.listen_fd);
		unlink(control);
	}
	if (m.mc)
		rd_kafka_mock_cluster_destroy(m.mc);
	if (m.rk)
		rd_kafka_destroy(m.rk);
	return ret;
}
