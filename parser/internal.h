/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of parser/ only; no other module includes this. */

#include "parser/parser.h"

void parser_instr_free(struct parser_instr *in);

/* Levenshtein distance between a and b, ignoring ASCII case; saturates at 255. */
unsigned parser_edit_distance(const char *a, const char *b);
