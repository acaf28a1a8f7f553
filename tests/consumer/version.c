/* SPDX-License-Identifier: MIT */
/*
 * cbm.h's CBM_VERSION_* and the library's cbm_version() both say
 * meson.build's project version, which the build passes in as
 * MESON_PROJECT_VERSION: a release that bumps one and not the others fails.
 */
#include <cbm.h>

#include <stdio.h>
#include <string.h>

int
main(void)
{
	char header[64];

	snprintf(header, sizeof(header), "%d.%d.%d", CBM_VERSION_MAJOR,
		 CBM_VERSION_MINOR, CBM_VERSION_PATCH);
	if (strcmp(header, MESON_PROJECT_VERSION) != 0) {
		fprintf(stderr, "version: cbm.h says %s, meson.build %s\n",
			header, MESON_PROJECT_VERSION);
		return 1;
	}
	if (strcmp(cbm_version(), MESON_PROJECT_VERSION) != 0) {
		fprintf(stderr,
			"version: cbm_version() says %s, meson.build %s\n",
			cbm_version(), MESON_PROJECT_VERSION);
		return 1;
	}
	printf("version: %s in meson.build, cbm.h and cbm_version()\n",
	       cbm_version());
	return 0;
}
