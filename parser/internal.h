/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of parser/ only; no other module includes this. */

#include "parser/parser.h"

void parser_instr_free(struct parser_instr *in);
