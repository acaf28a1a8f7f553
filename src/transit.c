/* SPDX-License-Identifier: MIT */
/* Who is moving buffers (transit.h, T4). */
#include "transit.h"

_Thread_local uint32_t cbm_mover = CBM_MOVER_APPLICATION;
