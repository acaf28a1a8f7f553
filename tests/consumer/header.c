/* SPDX-License-Identifier: MIT */
/*
 * cbm.h in every language standard a consumer may compile it under
 * (header.sh builds this file as C89 to C11 and C++98 to C++17, with
 * -pedantic -Werror). It uses each kind of declaration the header makes.
 * C89: no // comments, declarations first.
 */
#include <cbm.h>

int cbm_header_uses(cbm_pool *pool);

int
cbm_header_uses(cbm_pool *pool)
{
	cbm_pool_config cfg;
	cbm_stats st;
	cbm_error_fn fn = 0;
	enum cbm_error e = CBM_ERR_CORRUPT;
	int v = CBM_VERSION_MAJOR * 10000 + CBM_VERSION_MINOR * 100 +
		CBM_VERSION_PATCH;
	void *buf = cbm_alloc(pool); /* with CBM_INLINE, the inline path */

	cbm_free(pool, buf);
	cfg.flags = CBM_POOL_DEBUG | CBM_POOL_HUGEPAGES;
	cfg.idle_trim_ms = CBM_IDLE_TRIM_OFF;
	cbm_set_error_handler(fn, 0);
	(void)cbm_pool_stats(pool, &st);
	return v + (int)e + (int)cfg.flags + (cbm_version()[0] == '0');
}
