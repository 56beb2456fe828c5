/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Calls with no bounds or no thread safety; included last in every .c file. */
#undef strcpy
#define strcpy(...) banned_function_strcpy
#undef strcat
#define strcat(...) banned_function_strcat
#undef sprintf
#define sprintf(...) banned_function_sprintf
#undef vsprintf
#define vsprintf(...) banned_function_vsprintf
#undef strtok
#define strtok(...) banned_function_strtok
#undef mktemp
#define mktemp(...) banned_function_mktemp
#undef gets
#define gets(...) banned_function_gets
