// SPDX-License-Identifier: MIT
/* iface.c -- which interface --iface names: a name, or the one holding an address
 *
 * The address is looked up with getifaddrs() in the network namespace sluiced runs in (the
 * host's, for a hostNetwork pod). An address held by two interfaces takes the first one
 * listed; on a node that is a misconfiguration the operator sees in the log line naming
 * the interface chosen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "nic/iface.h"

#define ADDR_PREFIX "addr:"

static bool holds(const struct ifaddrs *i, int family, const void *want)
{
	if (!i->ifa_addr || i->ifa_addr->sa_family != family)
		return false;
	if (family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)i->ifa_addr)->sin_addr, want, 4);
	return !memcmp(&((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, want, 16);
}

int nic_iface_resolve(const char *spec, char *name, size_t len, char *err, size_t errlen)
{
	const char *ip = spec + strlen(ADDR_PREFIX);
	unsigned char want[16];
	struct ifaddrs *all, *i;
	int family, ret = -ENODEV;

	if (strncmp(spec, ADDR_PREFIX, strlen(ADDR_PREFIX))) {
		snprintf(name, len, "%s", spec);
		return 0;
	}
	family = strchr(ip, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(family, ip, want) != 1) {
		snprintf(err, errlen,
			 "%s: not an IPv4 or IPv6 address (addr:10.0.0.5, addr:fd00::5)", spec);
		return -EINVAL;
	}
	if (getifaddrs(&all)) {
		ret = -errno;
		snprintf(err, errlen, "%s: listing interfaces: %s", spec, strerror(errno));
		return ret;
	}
	for (i = all; i; i = i->ifa_next)
		if (holds(i, family, want)) {
			snprintf(name, len, "%s", i->ifa_name);
			ret = 0;
			break;
		}
	freeifaddrs(all);
	if (ret)
		snprintf(err, errlen,
			 "%s: no interface holds this address (ip -brief addr lists them)", spec);
	return ret;
}
