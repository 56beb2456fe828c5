/* SPDX-License-Identifier: Apache-2.0 */
#include "greet.h"

const char *greeting(void)
{
        return "Hello from a two-stage build";
}
