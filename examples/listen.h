/* SPDX-License-Identifier: MIT */
/* The servers' listening sockets: one per worker, all on one port. */
#ifndef EXAMPLES_LISTEN_H
#define EXAMPLES_LISTEN_H

#include <stdint.h>

/*
 * A non-blocking TCP socket listening on the IPv4 address addr, port *port,
 * with SO_REUSEPORT, so that every worker can have its own and the kernel
 * spreads connections among them. When *port is 0 the kernel picks a free
 * port and *port says which: open the first socket so, then the others on
 * that port. Returns the descriptor, or -1 after printing why.
 */
int listen_on(const char *addr, uint16_t *port);

#endif /* EXAMPLES_LISTEN_H */
