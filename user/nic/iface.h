/* SPDX-License-Identifier: MIT */
/* iface.h -- which interface --iface names: a name, or the one holding an address
 *
 * "addr:IP" lets one manifest serve every node: a DaemonSet passes the node's address
 * (downward API status.hostIP) and each sluiced attaches XDP to whichever interface carries
 * it there, eth0 on one machine, ens5 or bond0 on the next.
 */
#ifndef SLUICE_NIC_IFACE_H
#define SLUICE_NIC_IFACE_H

#include <stddef.h>

/* Resolve spec ("eth0" or "addr:10.0.0.5" / "addr:fd00::5") into an interface name in name.
 * Returns 0, or -EINVAL (unparseable address) / -ENODEV (no interface holds it) / -errno
 * with a message naming the input in err. A plain name is copied as it is (checked later,
 * when attaching). */
int nic_iface_resolve(const char *spec, char *name, size_t len, char *err, size_t errlen);

#endif /* SLUICE_NIC_IFACE_H */
