/* SPDX-License-Identifier: MIT */
/* Listening sockets (listen.h). */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
listen_on(const char *addr, uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(*port)};
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "--addr %s: not an IPv4 address\n", addr);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) {
		perror("setsockopt SO_REUSEPORT");
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "bind %s:%u: %s\n", addr, (unsigned)*port,
			strerror(errno));
		goto fail;
	}
	if (listen(fd, SOMAXCONN)) {
		perror("listen");
		goto fail;
	}
	if (*port == 0) {
		if (getsockname(fd, (struct sockaddr *)&sa, &len)) {
			perror("getsockname");
			goto fail;
		}
		*port = ntohs(sa.sin_port);
	}
	return fd;
fail:
	close(fd);
	return -1;
}
