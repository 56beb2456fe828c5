/* SPDX-License-Identifier: Apache-2.0 */
#include "tap.h"

TEST(placeholder)
{
        SKIP("not written yet");
}
