#!/usr/bin/env python3
"""PostgreSQL's own CPU and WAL per refresh-token rotation for three ways of storing a
family's tokens (README, "Where the rest of the time goes"). Each shape rotates 32 hot
families in batches of 14, one statement per batch as `rotation::REFRESH_BATCH` does,
on one connection, and reports the backend's CPU (/proc/PID/stat) and the WAL written
per rotation:

- current: today's statement: the family's head advanced, the parent token marked
  rotated and the child token inserted (with its key to the family checked);
- nomark: the same without marking the parent (its rotation time read from the child);
- famonly: the family row alone holds its head token's hash and lifetimes, and a
  rotation is one update of it.

The tables keep today's columns, keys and indexes (grants and accounts left out: every
shape reads them alike). Needs psycopg 3 (`pip install "psycopg[binary]"`) and a
PostgreSQL server on the same machine where it may create and drop a database.

    scripts/rotation-shapes.py [postgres://postgres@127.0.0.1:5432/postgres] [batches]
"""
import hashlib
import os
import random
import sys
import time

import psycopg

BATCH = 14
HOT = 32

SCHEMA = """
CREATE TABLE fam (family_id text PRIMARY KEY, grant_id text NOT NULL, app_id text NOT NULL,
  account_id text NOT NULL, scopes text NOT NULL, credential_generation bigint NOT NULL,
  created_at bigint NOT NULL, absolute_expires_at bigint NOT NULL,
  head_generation bigint NOT NULL DEFAULT 0, revoked_at bigint, revoke_reason text,
  audience text, head_hash bytea, head_issued_at bigint, head_expires_at bigint);
CREATE INDEX fam_grant_idx ON fam (grant_id);
CREATE INDEX fam_abs_idx ON fam USING brin (absolute_expires_at);
CREATE INDEX fam_revoked_idx ON fam (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE rt (token_hash bytea NOT NULL CHECK (octet_length(token_hash) = 32),
  family_id text NOT NULL REFERENCES fam (family_id) ON DELETE CASCADE,
  generation bigint NOT NULL, issued_at bigint NOT NULL,
  inactivity_expires_at bigint NOT NULL, rotated_at bigint, legacy_hash bytea,
  PRIMARY KEY (family_id, generation));
CREATE INDEX rt_inactivity_idx ON rt USING brin (inactivity_expires_at);
CREATE UNIQUE INDEX rt_legacy_idx ON rt (legacy_hash) WHERE legacy_hash IS NOT NULL;
INSERT INTO fam (family_id, grant_id, app_id, account_id, scopes, credential_generation,
  created_at, absolute_expires_at, head_hash, head_issued_at, head_expires_at)
  SELECT gen_random_uuid()::text, gen_random_uuid()::text, 'app', gen_random_uuid()::text,
         'read:jira-work write:jira-work offline_access', 1, 0, 9000000000000,
         sha256(i::text::bytea), 0, 9000000000000
    FROM generate_series(1, 2000) i;
INSERT INTO rt SELECT head_hash, family_id, 0, 0, 9000000000000, NULL, NULL FROM fam;
"""

INPUT = """r AS (SELECT * FROM unnest(%s::text[], %s::int8[], %s::bytea[], %s::int8[],
  %s::bytea[], %s::int8[]) WITH ORDINALITY
  AS r(family_id, generation, presented, at, child_hash, child_expires, idx))"""
FAMILY = """f.family_id, f.grant_id, f.app_id, f.account_id, f.scopes,
  f.credential_generation, f.created_at, f.absolute_expires_at, f.head_generation,
  f.revoked_at, f.revoke_reason, f.audience"""
LIVE = """f.revoked_at IS NULL AND f.absolute_expires_at > s.at"""

SHAPES = {
    "current": f"""WITH {INPUT},
 s AS (SELECT r.idx, r.at, r.child_hash, r.child_expires, st.* FROM r CROSS JOIN LATERAL (
   SELECT t.token_hash, t.generation, t.issued_at, t.inactivity_expires_at, t.rotated_at,
          {FAMILY}
     FROM rt t JOIN fam f ON f.family_id = t.family_id
    WHERE t.family_id = r.family_id AND t.generation = r.generation
      AND t.token_hash = r.presented LIMIT 1) st),
 advanced AS (UPDATE fam f SET head_generation = s.generation + 1 FROM s
   WHERE f.family_id = s.family_id AND f.head_generation = s.generation AND {LIVE}
     AND s.inactivity_expires_at > s.at RETURNING s.idx),
 marked AS (UPDATE rt t SET rotated_at = s.at FROM advanced a JOIN s ON s.idx = a.idx
   WHERE t.family_id = s.family_id AND t.generation = s.generation
     AND t.rotated_at IS NULL RETURNING a.idx),
 inserted AS (INSERT INTO rt (token_hash, family_id, generation, issued_at,
                              inactivity_expires_at, rotated_at)
   SELECT s.child_hash, s.family_id, s.generation + 1, s.at, s.child_expires, NULL
     FROM marked m JOIN s ON s.idx = m.idx RETURNING token_hash)
 SELECT s.*, EXISTS (SELECT 1 FROM inserted i WHERE i.token_hash = s.child_hash) FROM s""",
    "nomark": f"""WITH {INPUT},
 s AS (SELECT r.idx, r.at, r.child_hash, r.child_expires, st.* FROM r CROSS JOIN LATERAL (
   SELECT t.token_hash, t.generation, t.issued_at, t.inactivity_expires_at,
          c.issued_at AS rotated_at, {FAMILY}
     FROM rt t JOIN fam f ON f.family_id = t.family_id
     LEFT JOIN rt c ON c.family_id = t.family_id AND c.generation = t.generation + 1
    WHERE t.family_id = r.family_id AND t.generation = r.generation
      AND t.token_hash = r.presented LIMIT 1) st),
 advanced AS (UPDATE fam f SET head_generation = s.generation + 1 FROM s
   WHERE f.family_id = s.family_id AND f.head_generation = s.generation AND {LIVE}
     AND s.inactivity_expires_at > s.at
   RETURNING s.idx, s.family_id, s.generation, s.at, s.child_hash, s.child_expires),
 inserted AS (INSERT INTO rt (token_hash, family_id, generation, issued_at,
                              inactivity_expires_at, rotated_at)
   SELECT a.child_hash, a.family_id, a.generation + 1, a.at, a.child_expires, NULL
     FROM advanced a RETURNING token_hash)
 SELECT s.*, EXISTS (SELECT 1 FROM inserted i WHERE i.token_hash = s.child_hash) FROM s""",
    "famonly": f"""WITH {INPUT},
 s AS (SELECT r.idx, r.at, r.child_hash, r.child_expires, r.presented,
              r.generation AS presented_generation, st.*
         FROM r CROSS JOIN LATERAL (
   SELECT f.head_hash, f.head_issued_at, f.head_expires_at, {FAMILY}
     FROM fam f WHERE f.family_id = r.family_id LIMIT 1) st),
 advanced AS (UPDATE fam f SET head_generation = s.head_generation + 1,
     head_hash = s.child_hash, head_issued_at = s.at, head_expires_at = s.child_expires
   FROM s
   WHERE f.family_id = s.family_id AND f.head_generation = s.presented_generation
     AND f.head_hash = s.presented AND {LIVE} AND s.head_expires_at > s.at
   RETURNING s.idx)
 SELECT s.*, EXISTS (SELECT 1 FROM advanced a WHERE a.idx = s.idx) FROM s""",
}


def measure(url, shape, batches):
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute(SCHEMA)
        pid = cur.execute("SELECT pg_backend_pid()").fetchone()[0]
        hot = [r[0] for r in cur.execute(f"SELECT family_id FROM fam ORDER BY family_id LIMIT {HOT}")]
        heads = {f: (0, bytes(h)) for f, h in
                 cur.execute("SELECT family_id, head_hash FROM fam WHERE family_id = ANY(%s)", (hot,))}

        def ticks():
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        wal0 = cur.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        cpu0, wall0, rotated = ticks(), time.time(), 0
        for _ in range(batches):
            start = random.randrange(0, HOT - BATCH + 1)
            families = hot[start:start + BATCH]
            generations = [heads[f][0] for f in families]
            presented = [heads[f][1] for f in families]
            children = [hashlib.sha256(p).digest() for p in presented]
            rows = cur.execute(SHAPES[shape], (families, generations, presented,
                                               [1000] * BATCH, children,
                                               [9000000000000] * BATCH)).fetchall()
            rotated += sum(1 for row in rows if row[-1])
            for family, child in zip(families, children):
                heads[family] = (heads[family][0] + 1, child)
        cpu1, wall1 = ticks(), time.time()
        wal = cur.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (wal0,)).fetchone()[0]
        n = batches * BATCH
        assert rotated == n, f"{shape}: {rotated} of {n} rotated"
        hz = os.sysconf("SC_CLK_TCK")
        print(f"{shape:8} backend CPU {(cpu1 - cpu0) / hz * 1e6 / n:5.1f} µs, "
              f"wall {(wall1 - wall0) * 1e6 / n:5.1f} µs, WAL {int(wal) / n:4.0f} B a rotation")


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "postgres://postgres@127.0.0.1:5432/postgres"
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    for shape in ["current", "nomark", "famonly"] * 2:
        name = f"trilo_shapes_{os.getpid()}"
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            measure(base.rsplit("/", 1)[0] + "/" + name, shape, batches)
        finally:
            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE {name}")


if __name__ == "__main__":
    main()
