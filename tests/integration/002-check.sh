#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kiln check: diagnostics in text form, exit codes, the JSON form read back with jq, and the
# check directive.
set -u
. "$(dirname "$0")/../lib.sh"

cd "$T_TMP" || t_bail "cd $T_TMP"

# ---- a clean file ----
cat >Containerfile <<'CF'
# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM $BASE AS build
RUN --mount=type=cache,target=/root/.cache \
    echo building
COPY --chown=1000:1000 --chmod=0644 a.txt /app/
FROM busybox
COPY --from=build /app /app
ENV A=1 B="two words"
HEALTHCHECK --interval=30s --retries=3 CMD ["true"]
CMD ["/app/run"]
CF
t_ok "a clean Containerfile passes" "$KILN" check
t_eq "a clean Containerfile prints nothing" "$(cat "$T_OUT")" ""

t_ok "check --format json exits 0" "$KILN" check --format json
cp "$T_OUT" clean.json
t_ok "the JSON parses" jq -e "type == \"object\"" clean.json
t_eq "JSON: two stages" "$(jq '.stages | length' clean.json)" "2"
t_eq "JSON: global ARG" "$(jq -c '.args[0].pairs[0] | [.key, .value]' clean.json)" '["BASE","busybox"]'
t_eq "JSON: stage name" "$(jq -r '.stages[0].name' clean.json)" "build"
t_eq "JSON: FROM keeps \$BASE unexpanded" "$(jq -r '.stages[0].from.args[0]' clean.json)" '$BASE'
t_eq "JSON: RUN spans two lines" "$(jq -c '.stages[0].instructions[0] | [.line, .end_line]' clean.json)" '[4,5]'
t_eq "JSON: RUN mount parsed" \
        "$(jq -c '.stages[0].instructions[0].mounts[0] | [.type, .target]' clean.json)" \
        '["cache","/root/.cache"]'
t_eq "JSON: COPY flags with positions" \
        "$(jq -c '[.stages[0].instructions[1].flags[] | [.name, .value, .col]]' clean.json)" \
        '[["chown","1000:1000",6],["chmod","0644",24]]'
t_eq "JSON: ENV keeps the quotes" \
        "$(jq -c '[.stages[1].instructions[1].pairs[] | .value]' clean.json)" '["1","\"two words\""]'
t_eq "JSON: HEALTHCHECK settings" \
        "$(jq -c '.stages[1].instructions[2].healthcheck | [.interval_ns, .retries]' clean.json)" \
        '[30000000000,3]'
t_eq "JSON: CMD in exec form" "$(jq -c '.stages[1].instructions[3] | [.form, .args]' clean.json)" \
        '["exec",["/app/run"]]'
t_eq "JSON: directive" "$(jq -c '.directives[0] | [.name, .value]' clean.json)" \
        '["syntax","docker/dockerfile:1"]'
t_eq "JSON: no diagnostics" "$(jq '.diagnostics | length' clean.json)" "0"

# ---- errors and warnings ----
cat >bad.cf <<'CF'
FROM busybox AS one
COPPY a /a
MAINTAINER someone
FROM busybox AS one
CMD echo hi
CF
t_fails "errors exit 1" 1 "$KILN" check -f bad.cf
t_contains "unknown instruction with a hint" \
        "bad.cf:2:1: error: unknown instruction 'COPPY' (did you mean 'COPY'?) [UnknownInstruction]" "$T_OUT"
t_contains "duplicate stage name" \
        "bad.cf:4:1: error: duplicate stage name 'one' (first defined at 1:1) [DuplicateStageName]" "$T_OUT"
t_grep "MAINTAINER warns" '^bad\.cf:3:1: warning: MAINTAINER is deprecated.*\[MaintainerDeprecated\]$' "$T_OUT"
t_grep "shell-form CMD warns" '^bad\.cf:5:1: warning: CMD in shell form .*\[JSONArgsRecommended\]$' "$T_OUT"
t_eq "diagnostics come in line order" "$(cut -d: -f2 "$T_OUT" | tr '\n' ' ')" "2 3 4 5 "

t_fails "errors exit 1 in JSON form too" 1 "$KILN" check -f bad.cf --format json
cp "$T_OUT" bad.json
t_ok "the JSON of a bad file parses" jq -e "type == \"object\"" bad.json
t_eq "JSON lists the diagnostics" "$(jq -c '[.diagnostics[] | .rule]' bad.json)" \
        '["UnknownInstruction","MaintainerDeprecated","DuplicateStageName","JSONArgsRecommended"]'

printf 'FROM busybox\nMAINTAINER x\n' >warn.cf
t_ok "warnings alone exit 0" "$KILN" check -f warn.cf
t_grep "the warning is printed" '^warn\.cf:2:1: warning: ' "$T_OUT"

printf '# check=error=true\nFROM busybox\nMAINTAINER x\n' >strict.cf
t_fails "check=error=true makes warnings fail" 1 "$KILN" check -f strict.cf
t_grep "the warning became an error" '^strict\.cf:3:1: error: MAINTAINER' "$T_OUT"

printf '# check=skip=MaintainerDeprecated\nFROM busybox\nMAINTAINER x\n' >skip.cf
t_ok "check=skip passes" "$KILN" check -f skip.cf
t_eq "check=skip silences the rule" "$(cat "$T_OUT")" ""

# ---- standard input and errors about the input itself ----
t_run "$KILN" check -f - <bad.cf
t_eq "-f - reads standard input" "$T_RC" "1"
t_grep "-f - names <stdin>" '^<stdin>:2:1: error: unknown instruction' "$T_OUT"

printf 'FROM busybox\nRUN <<EOF\necho never ends\n' >heredoc.cf
t_fails "unterminated heredoc exits 1" 1 "$KILN" check -f heredoc.cf
t_contains "unterminated heredoc names where it started" \
        "heredoc.cf:2:1: error: unterminated heredoc 'EOF' started at 2:5 [Syntax]" "$T_OUT"

: >empty.cf
t_fails "an empty file has no FROM" 1 "$KILN" check -f empty.cf
t_contains "no FROM at 1:1" "empty.cf:1:1: error: no FROM instruction [NoFromInstruction]" "$T_OUT"

t_fails "a bad --format is a usage error" 2 "$KILN" check --format yaml
t_grep "the bad format is named" "unknown format 'yaml'" "$T_ERR"
t_fails "two contexts are a usage error" 2 "$KILN" check a b
t_grep "the extra argument is named" "unexpected argument 'b'" "$T_ERR"

t_done
