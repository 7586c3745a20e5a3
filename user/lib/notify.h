/* SPDX-License-Identifier: MIT */
/* notify.h -- tell systemd (Type=notify) what sluiced is doing, without libsystemd
 *
 * The protocol is one datagram of "KEY=VALUE\n" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Without the variable
 * (not under systemd, or Type=simple) nothing is sent.
 */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

/* Send state (e.g. "READY=1\nSTATUS=listening") to $NOTIFY_SOCKET. 0 when sent or when there
 * is no socket to send to; -errno when the send failed (the caller logs, nothing else). */
int notify_send(const char *state);

#endif /* SLUICE_NOTIFY_H */
