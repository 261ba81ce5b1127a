#!/usr/bin/env python3
"""The manual pages, generated from the sources they describe so that they
cannot drift from them (scdoc turns the output into roff):

    man.py lib  include/persistent_mem.h      OUT.scd   persistent_mem(3)
    man.py tool tools/persistent-mem.c        OUT.scd   persistent-mem(1)
    man.py check HEADER PAGE3 TOOL_C PAGE1    every public name and command
                                              is in its page (the test)

persistent_mem(3) is the header read as a document: its opening comment is
the description, each banner comment (/* --- */ then a title) a section,
and under it every declaration as code with the comment before it as text.
persistent-mem(1) is the tool's opening comment and its usage text."""
import re
import sys


def esc(text):
    """Text for scdoc: its markup characters taken literally."""
    return re.sub(r"([\\*_])", r"\\\1", text)


def comment_text(lines):
    """The words of a block comment's lines, stars and delimiters removed."""
    out = []
    for ln in lines:
        ln = ln.strip()
        ln = re.sub(r"^/\*+", "", ln)
        ln = re.sub(r"\*+/$", "", ln)
        ln = re.sub(r"^\* ?", "", ln)
        out.append(ln.rstrip())
    if out:
        out[0] = out[0].strip()
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def paragraphs(lines):
    """scdoc text: runs of lines become paragraphs; lines that start with
    '-' or that are indented (lists, tables in the comments) keep their
    breaks."""
    def listy(ln):
        return ln.startswith(("  ", "-"))
    # a list item's continuation lines (indented deeper) join the item
    joined = []
    for ln in lines:
        if (joined and ln.startswith("  ") and not ln.lstrip().startswith("-") and
                joined[-1].lstrip().startswith("-") and
                len(ln) - len(ln.lstrip()) > len(joined[-1]) - len(joined[-1].lstrip())):
            joined[-1] += " " + ln.strip()
        else:
            joined.append(ln)
    lines = joined
    res = []
    for i, ln in enumerate(lines):
        if not ln.strip():
            res.append("")
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        brk = nxt.strip() and (listy(ln) or listy(nxt))
        t = esc(ln.strip())
        if t[0] in "[|]":
            t = "\\" + t                 # not a table
        res.append(t + ("++" if brk else ""))
    return "\n".join(res)


def blocks(src):
    """The header split into ('comment', lines) and ('code', lines)."""
    lines = src.split("\n")
    i, out = 0, []
    while i < len(lines):
        ln = lines[i]
        s = ln.strip()
        if s.startswith("/*"):
            j = i
            while "*/" not in lines[j]:
                j += 1
            out.append(("comment", lines[i:j + 1]))
            i = j + 1
        elif s:
            j = i
            code = []
            while j < len(lines) and lines[j].strip() and not lines[j].strip().startswith("/*"):
                code.append(lines[j])
                j += 1
            out.append(("code", code))
            i = j
        else:
            out.append(("blank", []))
            i += 1
    return out


SKIP = re.compile(r"^\s*#\s*include\b")


def hidden(code):
    """The include guard and the extern "C" wrapping: not documentation."""
    return any("PERSISTENT_MEM_H" in c or "__cplusplus" in c for c in code)


def lib(header):
    src = open(header).read()
    bl = blocks(src)
    out = ["persistent_mem(3)", "", "# NAME", "",
           "persistent_mem - a lock-free persistent memory allocator in a memory-mapped file",
           "", "# SYNOPSIS", "",
           "*#include <persistent_mem/persistent_mem.h>*", "",
           "Link with *-lpersistent_mem* (*pkg-config --cflags --libs persistent_mem*).", "",
           "# DESCRIPTION", ""]
    first = True
    pending = []                        # comment lines waiting for their code
    k = 0
    while k < len(bl):
        kind, lines = bl[k]
        if kind == "comment":
            text = comment_text(lines)
            if first:
                out.append(paragraphs(text[1:] if text and text[0].startswith("persistent_mem:") else text))
                out.append("")
                first = False
            elif text and re.fullmatch(r"-+", text[0].strip()):
                # a banner: the next comment is the section's title
                k += 1
                while bl[k][0] == "blank":
                    k += 1
                title = comment_text(bl[k][1])
                out.append("# " + esc(title[0].strip().upper()))
                out.append("")
                if len(title) > 1:
                    out.append(paragraphs(title[1:]))
                    out.append("")
                pending = []
            else:
                if pending:                 # one that stands alone
                    out.append(paragraphs(pending))
                    out.append("")
                pending = text
        elif kind == "blank":
            if pending:                     # a comment with no code under it
                out.append(paragraphs(pending))
                out.append("")
                pending = []
        elif kind == "code":
            code = [] if hidden(lines) else [c for c in lines if not SKIP.match(c)]
            if code:
                if pending:
                    out.append(paragraphs(pending))
                    out.append("")
                out.append("```")
                out.extend(code)
                out.append("```")
                out.append("")
            elif pending:
                out.append(paragraphs(pending))
                out.append("")
            pending = []
        k += 1
    out += ["# SEE ALSO", "", "*persistent-mem*(1)", ""]
    return "\n".join(out)


def tool(c_file):
    src = open(c_file).read()
    top = comment_text(src[:src.index("*/") + 2].split("\n"))
    usage = re.search(r'fprintf\(stderr,\s*\n((?:\s*"(?:[^"\\]|\\.)*"\s*\n)+)', src)
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', usage.group(1)))
    text = text.replace("\\n", "\n").replace('\\"', '"')
    paras = "\n".join(top)
    desc, _, status = paras.partition("Exit status")
    out = ["persistent-mem(1)", "", "# NAME", "",
           "persistent-mem - inspect, check, copy and recover persistent_mem spaces", "",
           "# SYNOPSIS", "", "*persistent-mem* _command_ [*--json*] _args_", "",
           "# DESCRIPTION", "", paragraphs(desc.split("\n")[1:]), "",
           "# COMMANDS", "", "```", text.rstrip("\n"), "```", "",
           "# EXIT STATUS", "", paragraphs(("Exit status" + status).split("\n")), "",
           "# JSON", "",
           "The schema of *--json* output is in docs/inspector.md of the source tree "
           "(installed under the package's documentation directory).", "",
           "# SEE ALSO", "", "*persistent_mem*(3)", ""]
    return "\n".join(out)


def check(header, page3, tool_c, page1):
    bad = 0
    h = open(header).read()
    code = "\n".join(ln for ln in h.split("\n")
                     if not ln.lstrip().startswith(("/*", "*")) and "*/" not in ln)
    names = set(re.findall(r"^\S[^\n;{]*?\b([a-z_][a-z0-9_]*)\s*\(", code, re.M))
    names |= set(re.findall(r"^#define\s+([A-Za-z_][A-Za-z0-9_]*)", code, re.M))
    names -= {"PERSISTENT_MEM_H"}
    man3 = open(page3).read().replace("\\-", "-").replace("\\(", "(").replace("\\e", "\\")
    plain3 = re.sub(r"\\f[BIRP]", "", man3).replace("\\", "")
    for n in sorted(names):
        if n not in plain3:
            print("persistent_mem(3) lacks", n)
            bad += 1
    t = open(tool_c).read()
    cmds = set(re.findall(r'strcmp\(command, "([a-z]+)"\)', t))
    plain1 = re.sub(r"\\f[BIRP]", "", open(page1).read()).replace("\\", "")
    for c in sorted(cmds):
        if not re.search(r"\b%s\b" % c, plain1):
            print("persistent-mem(1) lacks the command", c)
            bad += 1
    print("%d public names, %d commands; %d missing" % (len(names), len(cmds), bad))
    return 1 if bad or len(names) < 50 else 0


if __name__ == "__main__":
    if sys.argv[1] == "lib":
        open(sys.argv[3], "w").write(lib(sys.argv[2]))
    elif sys.argv[1] == "tool":
        open(sys.argv[3], "w").write(tool(sys.argv[2]))
    elif sys.argv[1] == "check":
        sys.exit(check(*sys.argv[2:6]))
    else:
        sys.exit(2)
