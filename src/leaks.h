/* SPDX-License-Identifier: MIT */
/* The leak report of cbm_pool_destroy (leaks.c). */
#ifndef CBM_LEAKS_H
#define CBM_LEAKS_H

#include <stddef.h>

struct cbm_pool;

/* Buffers named in a leak report; the rest are counted. */
#define CBM_LEAKS_NAMED 16

/*
 * Report CBM_ERR_LEAK for a pool that destroy found with held buffers
 * still out: how many, and for the first CBM_LEAKS_NAMED of them (by
 * index) the address and index, and in a debug pool where each was
 * allocated. The pool must be quiescent, as destroy's caller guarantees.
 */
void cbm_report_leaks(const struct cbm_pool *pool, size_t held);

#endif /* CBM_LEAKS_H */
