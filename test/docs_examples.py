#!/usr/bin/env python3
"""
docs_examples.py: run every SQL example of README.md and docs/*.md, so the
docs cannot drift from the code.

Conventions (docs/reference.md states them for writers):
  - every fenced block whose info string is exactly "sql" runs, in order,
    per file, in one session on a fresh database where CREATE EXTENSION
    chatpersist has run (unless the file runs it), as a superuser; each
    statement is checked, and an unexpected error fails it;
  - a statement followed by lines "-- → <row>" must print exactly those
    rows in psql's unaligned tuples-only form (columns joined by "|");
  - "-- → ERROR <SQLSTATE>" after a statement means it must fail with that
    SQLSTATE;
  - blocks marked "sql norun" (Citus, Supabase schemas) are not run.

Usage: PGHOST=... PGPORT=... PGUSER=<superuser> test/docs_examples.py [FILE...]
Prints one line per checked file and statement failure, and ends with
    docs_examples: N passed, M failed
where each executed statement counts once (a pinned result or error is
part of its statement's check). Exit status 1 if anything failed.
"""

import glob
import os
import re
import subprocess
import sys

FENCE = re.compile(r"^```(\S*)(?:[ \t]+(\S+))?\s*$")
ARROW = "-- → "


def blocks(path):
    """Yield (first line number, lines) of the runnable sql blocks of a file."""
    inside = None
    start = 0
    body = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            m = FENCE.match(line)
            if inside is None and m and m.group(1):
                inside = (m.group(1), m.group(2))
                start = n + 1
                body = []
            elif inside is not None and line.strip() == "```":
                if inside == ("sql", None):
                    yield start, body
                inside = None
            elif inside is not None:
                body.append(line)


def statements(path):
    """Split a file's runnable blocks into (line, sql, expected rows or None, error or None)."""
    result = []
    for start, body in blocks(path):
        sql = []
        first = None
        i = 0
        while i < len(body):
            line = body[i]
            if not sql and (not line.strip() or (line.lstrip().startswith("--") and not line.startswith(ARROW))):
                i += 1
                continue
            if first is None:
                first = start + i
            sql.append(line)
            i += 1
            if line.rstrip().endswith(";") and not _in_dollar_quote("\n".join(sql)):
                expected = []
                while i < len(body) and body[i].startswith(ARROW):
                    expected.append(body[i][len(ARROW):])
                    i += 1
                error = None
                if len(expected) == 1 and re.fullmatch(r"ERROR [0-9A-Z]{5}", expected[0]):
                    error = expected[0].split()[1]
                    expected = None
                result.append((first, "\n".join(sql), expected if expected else None, error))
                sql = []
                first = None
        if sql:
            # a block must not end inside a statement: psql would glue it
            # to the next one
            result.append((first, "\n".join(sql), None, "UNTERMINATED"))
    return result


def _in_dollar_quote(text):
    """Is the end of text inside a $$ or $tag$ quoted string?"""
    tags = re.findall(r"\$[A-Za-z_]*\$", text)
    open_tag = None
    for t in tags:
        if open_tag is None:
            open_tag = t
        elif t == open_tag:
            open_tag = None
    return open_tag is not None


def run_file(path, dbname, rel):
    """Run one file's statements in one psql session; return (passed, failures)."""
    stmts = statements(path)
    if not stmts:
        return 0, []
    script = ["\\set ON_ERROR_STOP 0", "\\set VERBOSITY sqlstate", "\\pset footer off"]
    for k, (_, sql, _, error) in enumerate(stmts):
        if error == "UNTERMINATED":
            continue
        script.append("\\echo @@ %d" % k)
        script.append(sql)
    script.append("\\echo @@ end")
    # errors go to stderr: fold it into stdout to keep them in order
    proc = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-d", dbname],
        input="\n".join(script) + "\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))
    outputs = {}
    current = None
    for line in proc.stdout.split("\n"):
        m = re.fullmatch(r"@@ (\d+|end)", line)
        if m:
            current = None if m.group(1) == "end" else int(m.group(1))
            if current is not None:
                outputs[current] = []
            continue
        if current is not None:
            outputs[current].append(line)

    passed = 0
    failures = []
    for k, (lineno, sql, expected, error) in enumerate(stmts):
        if error == "UNTERMINATED":
            failures.append("%s:%d: statement does not end with ; at the end of a line (fence it as text if it is not SQL)" % (rel, lineno))
            continue
        out = [l for l in outputs.get(k, []) if l != ""]
        errors = [l for l in out if l.startswith("ERROR:")]
        rows = [l for l in out if not l.startswith(("ERROR:", "psql:", "WARNING:", "NOTICE:"))]
        where = "%s:%d" % (rel, lineno)
        if k not in outputs:
            failures.append("%s: did not run (psql stopped earlier)" % where)
        elif error is not None:
            got = errors[0].split()[1] if errors else None
            if got != error:
                failures.append("%s: expected ERROR %s, got %s" % (where, error, got or "success"))
            else:
                passed += 1
        elif errors:
            failures.append("%s: unexpected %s" % (where, errors[0]))
        elif expected is not None and rows != expected:
            failures.append("%s: expected %r, got %r" % (where, expected, rows))
        else:
            passed += 1
    return passed, failures


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = sys.argv[1:] or [os.path.join(top, "README.md")] + sorted(glob.glob(os.path.join(top, "docs", "*.md")))
    total_pass = 0
    total_fail = 0
    for path in files:
        db = "cp_docs_" + re.sub(r"[^a-z0-9]", "_", os.path.basename(path).lower())
        subprocess.run(["dropdb", "--if-exists", db], check=False, capture_output=True)
        subprocess.run(["createdb", db], check=True)
        # a file that creates the extension itself (the README) gets a bare database
        if not any("CREATE EXTENSION chatpersist" in sql for _, sql, _, _ in statements(path)):
            subprocess.run(["psql", "-X", "-q", "-d", db, "-c", "CREATE EXTENSION chatpersist"], check=True)
        rel = os.path.relpath(path, top)
        try:
            passed, failures = run_file(path, db, rel)
        finally:
            subprocess.run(["dropdb", "--if-exists", db], check=False, capture_output=True)
        for f in failures:
            print("FAIL  " + f)
        print("%-4s  %s: %d statements ran as documented%s" % (
            "ok" if not failures else "FAIL", rel, passed,
            "" if not failures else ", %d did not" % len(failures)))
        total_pass += passed
        total_fail += len(failures)
    print("docs_examples: %d passed, %d failed" % (total_pass, total_fail))
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
