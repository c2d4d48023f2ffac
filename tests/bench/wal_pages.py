#!/usr/bin/env python3
"""Which b-trees the last SQLite transactions wrote, read from the write-ahead log.

usage: python3 tests/bench/wal_pages.py <db file> [transactions, default 3]

Reads <db>-wal (frames of the current WAL generation, grouped by commit frame) and names the
table or index that owns each page through SQLite's `dbstat` table. Run it against the
benchmark's database right after a short load, before a checkpoint resets the log: it shows
how many pages one group commit wrote and where, which is what each commit pays for in
WAL writes, fsync and checkpoint work.
"""
import collections
import sqlite3
import struct
import sys

db = sys.argv[1]
last = int(sys.argv[2]) if len(sys.argv) > 2 else 3
wal = open(db + "-wal", "rb").read()
_, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">IIIIIIII", wal[:32])
transactions, current, offset = [], [], 32
while offset + 24 + page_size <= len(wal):
    page, commit, s1, s2 = struct.unpack(">IIII", wal[offset:offset + 16])
    if (s1, s2) != (salt1, salt2):
        break  # a frame of an earlier generation: the current log ends here
    current.append(page)
    if commit:
        transactions.append(current)
        current = []
    offset += 24 + page_size
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
owner = {page: name for name, page in conn.execute("SELECT name, pageno FROM dbstat")}
print(f"{len(transactions)} transactions in the log, {page_size}-byte pages")
for pages in transactions[-last:]:
    by_tree = collections.Counter(owner.get(p, f"page {p}") for p in pages)
    print(f"{len(pages)} pages:", ", ".join(f"{n} {c}" for n, c in by_tree.most_common()))
