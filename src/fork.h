/* SPDX-License-Identifier: MIT */
/* Fork safety (fork.c). */
#ifndef CBM_FORK_H
#define CBM_FORK_H

/* Install the fork handlers once per process. */
void cbm_fork_handlers_install(void);

#endif /* CBM_FORK_H */
