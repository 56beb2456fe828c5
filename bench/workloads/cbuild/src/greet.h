/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

const char *greeting(void);
