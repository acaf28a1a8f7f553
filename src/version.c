/* SPDX-License-Identifier: MIT */
/*
 * cbm_version: the version of cbm.h this library was built with, so that a
 * program can tell the library it runs with from the header it was
 * compiled against.
 */
#include "cbm.h"

#define CBM_STR_(x) #x
#define CBM_STR(x) CBM_STR_(x)

const char *
cbm_version(void)
{
	return CBM_STR(CBM_VERSION_MAJOR) "." CBM_STR(
		CBM_VERSION_MINOR) "." CBM_STR(CBM_VERSION_PATCH);
}
