#!/usr/bin/python3
"""
differential.py: replay one random sequence of chatpersist calls against two
servers, the oracle (the last 1.x build, test/oracle.sh) and the build under
test, and compare what each returns.

Usage: differential.py --oracle DSN --subject DSN [--count N] [--seed S]

Both databases must have chatpersist created and be empty of chat rows.
Each call runs on the oracle, then on the subject, in a transaction of its
own.  Compared, call by call:
  - the outcome: the same SQLSTATE on both sides, or success on both;
  - a write's save_result: status, version, checksum, message_count,
    conflicts;
  - after every write, the stored conversation (title, metadata, messages,
    version, checksum, message_count, deleted, created_at set or not) and
    its history (version, title, metadata, messages, checksum,
    message_count, deleted, replaced_by, discarded), read from the tables:
    on a 1.x server the messages columns of conversations and history; on
    2.0 the message rows of chatpersist.messages that are not removed, in
    pos order, and each archived version's array as conversation_history
    rebuilds it (for every head in chatpersist.history);
  - reads (load_conversations, changes_since without its cursor values,
    merge_messages, checksum) by their results.
Timestamps and cursors are left out: they differ between two servers by
nature.

Where 2.0 decides by rules that 1.x did not have, the call is run on both
but not compared (counted as "2.0's own rules"), and the conversation is
retired: later calls on that key go to a fresh conversation id.  Those
rules (CONTRACT.md, Merge) are:
  - a stale save or append whose expected version the oracle's history no
    longer holds: 1.x merged without a base (a union), 2.0 takes the base
    from the message rows' stamps;
  - a save (not forced, not for the current version) or an append, to a
    conversation that is not deleted, that sends a copy of a message the
    conversation held once but does not hold now: 2.0 treats it as a
    replay, which changes nothing.
Everything else must be identical.  The generator keeps per conversation the versions it has seen, so
that saves come with current, stale, very old, missing and future expected
versions, and messages reuse a small pool of ids with edits, tombstones,
timestamps and repeated ids.

--break-subject is the self-test: the subject keeps 2 versions of history
instead of 10, which the comparison must report.

Prints one line per difference (the first 20 in full) and ends with
    differential: N passed, M failed
where each call counts once.  Exit status 1 if anything differed.
"""

import argparse
import json
import random
import sys

import psycopg2

USERS = ["0d1ff000-0000-4000-8000-00000000000%d" % i for i in range(1, 4)]
CONVS = ["c1", "c2", "c3", "trip"]
WORDS = ["hi", "where", "Lisbon", "ok", "é", "🙂", "a\nb", "\"q\"", "1.50", ""]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.seen = {}          # (user, conv) -> versions a device has seen
        self.clock = 1733300000000
        self.alias = {}         # (user, conv) -> the conversation id now used for it
        self.retired = 0
        self.diverged = set()   # retired (user, conv) whose contents may differ
        self.tracked = {}       # (user, conv) -> the oracle's conversation, see track()

    def key(self):
        u, c = self.r.choice(USERS), self.r.choice(CONVS)
        return u, self.alias.get((u, c), c)

    def retire(self, k):
        """Later calls on k's key go to a fresh conversation"""
        u, c = k
        base = c.split("~")[0]
        self.retired += 1
        self.alias[(u, base)] = "%s~%d" % (base, self.retired)

    def message(self):
        r = self.r
        m = {"id": "m%d" % r.randint(1, 12)}
        if r.random() < 0.8:
            m["role"] = r.choice(["user", "assistant"])
            m["content"] = " ".join(r.choice(WORDS) for _ in range(r.randint(1, 4)))
        if r.random() < 0.6:
            self.clock += r.randint(0, 5000)
            m["created_at"] = self.clock if r.random() < 0.8 else "2024-12-04T10:00:%02dZ" % r.randint(0, 59)
        if r.random() < 0.3:
            m["updated_at"] = self.clock + r.randint(-3000, 3000)
        if r.random() < 0.1:
            m["deleted"] = True
        if r.random() < 0.1:
            m["extra"] = {"n": r.choice([1, 1.0, 2.50, -0.0]), "t": r.choice([True, None, "x"])}
        return m

    def messages(self, lo=0, hi=5):
        msgs = [self.message() for _ in range(self.r.randint(lo, hi))]
        if self.r.random() < 0.05 and msgs:
            msgs.append(dict(msgs[0]))          # a repeated id: 22023 on both
        return msgs

    def expected(self, k):
        seen = self.seen.get(k, [])
        c = self.r.random()
        if not seen or c < 0.25:
            return None
        if c < 0.6:
            return seen[-1]
        if c < 0.85:
            return self.r.choice(seen)
        if c < 0.95:
            return max(1, seen[-1] - self.r.randint(1, 15))
        return seen[-1] + self.r.randint(1, 3)

    def call(self):
        r = self.r
        u, c = self.key()
        k = (u, c)
        op = r.choices(["save", "append", "delete", "restore", "merge2", "merge3",
                        "checksum", "load_all", "changes"],
                       [34, 26, 6, 6, 6, 6, 4, 6, 6])[0]
        if op == "save":
            args = [u, c, r.choice(["T", "Trip", None]), json.dumps(self.messages()),
                    r.random() < 0.1, self.expected(k),
                    json.dumps({"pin": r.random() < 0.5}) if r.random() < 0.3 else None]
            return k, op, ("SELECT row_to_json(s)::text FROM chatpersist.save_conversation("
                           "%s, %s, %s, %s::jsonb, p_force_overwrite => %s, "
                           "p_expected_version => %s, p_metadata => %s::jsonb) s"), args
        if op == "append":
            args = [u, c, json.dumps(self.messages(1, 3)), self.expected(k) if r.random() < 0.5 else None]
            return k, op, ("SELECT row_to_json(s)::text FROM chatpersist.append_messages("
                           "%s, %s, %s::jsonb, %s) s"), args
        if op == "delete":
            args = [u, c, self.expected(k) if r.random() < 0.5 else None]
            return k, op, "SELECT row_to_json(s)::text FROM chatpersist.delete_conversation(%s, %s, %s) s", args
        if op == "restore":
            seen = self.seen.get(k, [1])
            args = [u, c, r.choice(seen + [0, 99])]
            return k, op, "SELECT row_to_json(s)::text FROM chatpersist.restore_version(%s, %s, %s) s", args
        if op == "merge2":
            return None, op, "SELECT chatpersist.merge_messages(%s::jsonb, %s::jsonb)::text", \
                [json.dumps(self.messages()), json.dumps(self.messages())]
        if op == "merge3":
            return None, op, "SELECT chatpersist.merge_messages(%s::jsonb, %s::jsonb, %s::jsonb)::text", \
                [json.dumps(self.messages()), json.dumps(self.messages()), json.dumps(self.messages())]
        if op == "checksum":
            return None, op, "SELECT chatpersist.checksum(%s::jsonb)", [json.dumps(self.messages())]
        if op == "load_all":
            return None, op, ("SELECT coalesce(json_agg(json_build_array(id, version, checksum, title, "
                              "messages, metadata) ORDER BY id), '[]')::text "
                              "FROM chatpersist.load_conversations(%s)"), [u]
        return None, op, ("SELECT coalesce(json_agg(json_build_array(conversation_id, version, "
                          "checksum, deleted) ORDER BY conversation_id, version), '[]')::text "
                          "FROM chatpersist.changes_since(%s, 0)"), [u]


STATE_SQL = (
    "SELECT json_build_object("
    " 'row', (SELECT row_to_json(x) FROM (SELECT title, metadata, messages, version, checksum,"
    "         message_count, deleted, created_at IS NOT NULL AS has_created"
    "         FROM chatpersist.conversations WHERE user_id = %s AND id = %s) x),"
    " 'history', (SELECT coalesce(json_agg(x ORDER BY x.version), '[]') FROM ("
    "         SELECT version, title, metadata, messages, checksum, message_count, deleted,"
    "                replaced_by, discarded"
    "         FROM chatpersist.history WHERE user_id = %s AND conversation_id = %s) x))::text")

# The same state from 2.0's tables (chatpersist.messages, the heads in
# chatpersist.history): the array is the message rows that are not removed,
# in pos order, and an archived version's array is the one
# conversation_history rebuilds from chatpersist.history_messages.  The
# columns and their order are the 1.x rows', so that the two texts compare.
STATE_SQL_2 = (
    "SELECT json_build_object("
    " 'row', (SELECT row_to_json(x) FROM (SELECT title, metadata,"
    "         (SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]') FROM chatpersist.messages m"
    "           WHERE m.user_id = c.user_id AND m.conversation_id = c.id AND NOT m.removed) AS messages,"
    "         version, checksum, message_count, deleted, created_at IS NOT NULL AS has_created"
    "         FROM chatpersist.conversations c WHERE user_id = %s AND id = %s) x),"
    " 'history', (SELECT coalesce(json_agg(x ORDER BY x.version), '[]') FROM ("
    "         SELECT h.version, h.title, h.metadata, a.messages, h.checksum, h.message_count, h.deleted,"
    "                h.replaced_by, h.discarded"
    "         FROM chatpersist.history h"
    "         LEFT JOIN chatpersist.conversation_history(%s, %s) a ON a.version = h.version"
    "         WHERE h.user_id = %s AND h.conversation_id = %s) x))::text")


def run(conn, sql, args):
    """One call in a transaction of its own: ('ok', text) or ('error', sqlstate)."""
    with conn.cursor() as cur:
        try:
            cur.execute(sql, args)
            row = cur.fetchone()
            conn.commit()
            return ("ok", row[0] if row else None)
        except psycopg2.Error as e:
            conn.rollback()
            return ("error", e.pgcode)


MESSAGE_ROWS = {}      # id(connection) -> has_message_rows


def has_message_rows(conn):
    """Does this server keep one row per message (2.0: chatpersist.messages)?"""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('chatpersist.messages') IS NOT NULL")
        rows = cur.fetchone()[0]
    conn.commit()
    return rows


def state(conn, k):
    with conn.cursor() as cur:
        if MESSAGE_ROWS[id(conn)]:
            cur.execute(STATE_SQL_2, [k[0], k[1], k[0], k[1], k[0], k[1]])
        else:
            cur.execute(STATE_SQL, [k[0], k[1], k[0], k[1]])
        s = cur.fetchone()[0]
    conn.commit()
    return s


COPIES_SQL = ("SELECT m->>'id', m::text FROM chatpersist.conversations c, "
              "jsonb_array_elements(c.messages) m WHERE c.user_id = %s AND c.id = %s")


def track(oracle, g, k, ws):
    """Keep what own_rules needs of the oracle's conversation k after a
    call: its version, deletion, history versions, current copies (id ->
    canonical text) and every copy it ever held"""
    st = json.loads(ws)
    t = g.tracked.setdefault(k, {"copies": {}})
    t["row"] = st["row"]
    t["history"] = set(h["version"] for h in st["history"])
    with oracle.cursor() as cur:
        cur.execute(COPIES_SQL, list(k))
        t["current"] = dict(cur.fetchall())
    oracle.commit()
    for mid, text in t["current"].items():
        t["copies"].setdefault(mid, set()).add(text)


def canonical(oracle, msgs_json):
    """[(id, canonical text)] of a message array, or None if it is not one"""
    try:
        with oracle.cursor() as cur:
            cur.execute("SELECT e->>'id', e::text FROM jsonb_array_elements(%s::jsonb) e", [msgs_json])
            rows = cur.fetchall()
        oracle.commit()
        return rows
    except psycopg2.Error:
        oracle.rollback()
        return None


def without_diverged(g, u, result):
    """A per-user read without the conversations retired by own_rules"""
    if result[0] != "ok" or result[1] is None:
        return result
    return ("ok", [e for e in json.loads(result[1]) if (u, e[0]) not in g.diverged])


def own_rules(oracle, g, k, op, args):
    """Does 2.0 decide this call by rules 1.x did not have?  See the top"""
    t = g.tracked.get(k)
    if op not in ("save", "append") or t is None or t["row"] is None or t["row"]["deleted"]:
        return False
    version = t["row"]["version"]
    if op == "save":
        msgs_json, force, e = args[3], args[4], args[5]
        if force or e == version:
            return False
    else:
        msgs_json, e = args[2], args[3]
    if e is not None and 1 <= e < version and e not in t["history"]:
        return True
    for mid, text in canonical(oracle, msgs_json) or []:
        if text in t["copies"].get(mid, ()) and text != t["current"].get(mid):
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--subject", required=True)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--break-subject", action="store_true",
                    help="self-test: keep less history on the subject, which must be reported")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randint(1, 2**31)
    print("differential: seed %d, %d calls" % (seed, a.count))
    oracle = psycopg2.connect(a.oracle)
    subject = psycopg2.connect(a.subject)
    for conn in (oracle, subject):
        MESSAGE_ROWS[id(conn)] = has_message_rows(conn)
    if a.break_subject:
        with subject.cursor() as cur:
            cur.execute("SET chatpersist.history_depth = 2")
        subject.commit()
    g = Gen(seed)
    passed = failed = own_count = 0
    by_op = {}
    for n in range(a.count):
        k, op, sql, args = g.call()
        own = k is not None and own_rules(oracle, g, k, op, args)
        want = run(oracle, sql, args)
        got = run(subject, sql, args)
        by_op[op] = by_op.get(op, 0) + 1
        if own and want[0] == "ok" and got[0] == "ok":
            own_count += 1
            g.diverged.add(k)
            g.retire(k)
            continue
        problems = []
        if op in ("load_all", "changes"):
            want, got = without_diverged(g, args[0], want), without_diverged(g, args[0], got)
        if want != got:
            problems.append("result: oracle %r, subject %r" % (want, got))
        if k is not None:
            ws, gs = state(oracle, k), state(subject, k)
            track(oracle, g, k, ws)
            if ws != gs:
                problems.append("state of %s/%s: oracle %s, subject %s" % (k[0], k[1], ws, gs))
            if want[0] == "ok" and want[1]:
                v = json.loads(want[1]).get("version")
                if v is not None and v not in g.seen.setdefault(k, []):
                    g.seen[k].append(v)
        if problems:
            failed += 1
            if failed <= 20:
                print("FAIL call %d (%s): %s %s" % (n, op, sql % tuple(repr(x) for x in args), problems))
        else:
            passed += 1
    print("differential: calls by function: %s" % ", ".join("%s %d" % kv for kv in sorted(by_op.items())))
    print("differential: %d calls decided by 2.0's own rules (stamps, replays), not compared; "
          "their conversations retired" % own_count)
    print("differential: reproduce with --seed %d --count %d" % (seed, a.count))
    print("differential: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
