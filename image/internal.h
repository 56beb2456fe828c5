/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of image/ only; no other module includes this. */

#include "image/image.h"
