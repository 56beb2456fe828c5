/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of builder/ only; no other module includes this. */

#include "builder/builder.h"
