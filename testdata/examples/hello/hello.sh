#!/bin/sh
# Greets whoever is named on the command line, then says where it runs.
set -eu
name=${1:-world}
printf '%s, %s!\n' "${GREETING:-Hello}" "$name"
printf 'uid %s, working directory %s, kernel %s\n' "$(id -u)" "$(pwd)" "$(uname -r)"
