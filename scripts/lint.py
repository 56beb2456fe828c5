#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""House rules: every fd is born close-on-exec, no module includes another module's
internal.h, and every module source includes common/banned.h last."""
import re
import sys

MODULES = ("cmd", "common", "parser", "builder", "image", "registry", "sandbox")
CALL = re.compile(r"(?<![\w.>])(open|openat|socket|socketpair|pipe|pipe2|accept|accept4|dup|"
                  r"dup2|fopen|fdopen|memfd_create|epoll_create1|eventfd|signalfd|"
                  r"timerfd_create|inotify_init1)\s*\(")
COMMENT = re.compile(r"/\*.*?\*/", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\])*"')


def call_args(text, start):
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    return text[start + 1:]


def check_cloexec(path, text):
    problems = []
    code = COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for m in CALL.finditer(code):
        name = m.group(1)
        line = code.count("\n", 0, m.start()) + 1
        before = code[max(0, m.start() - 40):m.start()]
        if re.search(r"(int|void|\*)\s*$", before) and "=" not in before.splitlines()[-1]:
            continue  # a declaration or definition, not a call
        args = call_args(code, m.end() - 1)
        if name in ("pipe", "accept", "dup", "dup2"):
            problems.append(f"{path}:{line}: {name}() cannot set close-on-exec; use "
                            f"{'pipe2' if name == 'pipe' else 'accept4' if name == 'accept' else 'fcntl F_DUPFD_CLOEXEC'}")
        elif name in ("fopen", "fdopen"):
            modes = STRING.findall(args)
            if not modes or "e" not in modes[-1]:
                problems.append(f"{path}:{line}: {name}() without the 'e' mode flag")
        elif name in ("open", "openat", "pipe2", "accept4", "memfd_create", "epoll_create1",
                      "eventfd", "signalfd", "timerfd_create", "inotify_init1"):
            if "CLOEXEC" not in args:
                problems.append(f"{path}:{line}: {name}() without O_CLOEXEC")
        elif name in ("socket", "socketpair"):
            if "SOCK_CLOEXEC" not in args:
                problems.append(f"{path}:{line}: {name}() without SOCK_CLOEXEC")
    return problems


def check_includes(path, text):
    problems = []
    module = path.split("/")[0]
    for m in re.finditer(r'#include\s+"(\w+)/internal\.h"', text):
        # Unit tests link the module libraries to test internals (STYLE.md, Testing).
        if m.group(1) != module and not path.startswith("tests/unit/"):
            line = text.count("\n", 0, m.start()) + 1
            problems.append(f"{path}:{line}: includes {m.group(1)}/internal.h from another module")
    if path.endswith(".c") and module in MODULES:
        includes = re.findall(r'#include\s+[<"]([^>"]+)[>"]', text)
        if not includes or includes[-1] != "common/banned.h":
            problems.append(f"{path}: common/banned.h must be the last include")
    return problems


def main(paths):
    problems = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if path.startswith("tests/") and path.endswith("tap.c"):
            continue
        problems += check_cloexec(path, text)
        problems += check_includes(path, text)
    for p in problems:
        print("lint:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
