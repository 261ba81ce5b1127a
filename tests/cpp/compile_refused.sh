#!/bin/sh
# Misuse the C++ headers refuse at compile time.  usage:
#   compile_refused.sh FILE COMPILER [ARGS...]
# FILE must compile as it is (the control: a typo must not pass for a
# refusal) and must fail to compile with -DPM_MISUSE.  Run at test time,
# not at setup, so that it sees the headers as they are now.
f=$1
shift
if ! "$@" -fsyntax-only "$f"; then
    echo "$f: the control does not compile" >&2
    exit 1
fi
if "$@" -fsyntax-only -DPM_MISUSE "$f" 2>/dev/null; then
    echo "$f: the misuse compiles" >&2
    exit 1
fi
exit 0
