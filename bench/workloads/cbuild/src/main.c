/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "greet.h"

int main(void)
{
        puts(greeting());
        return 0;
}
