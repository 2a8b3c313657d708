-- schema.sql — the layout of one p4p results file (one SQLite database per simulation run).
--
-- This file is the single source of truth for the schema: the build embeds it into the binary
-- as the C string `schema_sql` (tools/embed.sh), and results/res.c runs it on every new file.
-- results/SCHEMA.md documents each table and column, with units and example queries.
--
-- Conventions: times are integer nanoseconds (`_ns`) of the run's clock (simulated time in
-- 'sim' mode, a monotonic clock from the start of the run in 'live' mode); node numbers are
-- the simulator's node indices (0-based); identifiers (public keys, message ids) are lowercase
-- hexadecimal text; a REAL that was NaN when written is stored as NULL.
--
-- Changing anything below that a reader depends on means bumping user_version (and
-- RES_SCHEMA_VERSION in results/res.h) and teaching res_check() about the new version.

PRAGMA application_id = 0x50345031; -- 'P4P1': marks the file as p4p results (see res_check)
PRAGMA user_version = 1;            -- schema version

-- The run itself: exactly one row (id = 1).
CREATE TABLE run (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    mode            TEXT    NOT NULL CHECK (mode IN ('sim', 'live')),
    seed            TEXT    NOT NULL CHECK (seed <> '' AND seed NOT GLOB '*[^0-9]*'),
    scenario_path   TEXT,
    scenario_sha256 TEXT,
    config_json     TEXT,
    tool_version    TEXT,
    git_commit      TEXT,
    status          TEXT    NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    message         TEXT,
    sim_end_ns      INTEGER
);

-- The resolved configuration, flattened to dotted keys ('radio.lora.sf' = '7').
CREATE TABLE parameter (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per node.
CREATE TABLE node (
    node    INTEGER PRIMARY KEY CHECK (node >= 0),
    peer_id TEXT,
    degree  INTEGER NOT NULL CHECK (degree >= 0),
    x       REAL,
    y       REAL
);

-- Named end-of-run numbers, per node or (node = -1) for the whole network.
CREATE TABLE scalar (
    node  INTEGER NOT NULL CHECK (node >= -1),
    name  TEXT    NOT NULL,
    value REAL,
    PRIMARY KEY (node, name)
) WITHOUT ROWID;

-- Summaries of distributions (nearest-rank percentiles, population standard deviation).
CREATE TABLE statistic (
    name   TEXT    NOT NULL PRIMARY KEY,
    count  INTEGER NOT NULL CHECK (count >= 0),
    mean   REAL,
    stddev REAL,
    min    REAL,
    p50    REAL,
    p90    REAL,
    p99    REAL,
    max    REAL
) WITHOUT ROWID;

-- Time series: one value per (name, time).
CREATE TABLE series (
    name  TEXT    NOT NULL,
    t_ns  INTEGER NOT NULL CHECK (t_ns >= 0),
    value REAL,
    PRIMARY KEY (name, t_ns)
) WITHOUT ROWID;

-- Every update (message) published during the run.
CREATE TABLE updates (
    update_id  INTEGER PRIMARY KEY CHECK (update_id >= 0),
    msg_id     TEXT    NOT NULL,
    origin     INTEGER NOT NULL CHECK (origin >= 0),
    created_ns INTEGER NOT NULL CHECK (created_ns >= 0),
    size       INTEGER NOT NULL CHECK (size >= 0)
);

-- The first arrival of an update at a node (the analogue of ns-3's FlowMonitor records).
CREATE TABLE delivery (
    update_id    INTEGER NOT NULL,
    node         INTEGER NOT NULL,
    delivered_ns INTEGER NOT NULL,
    hops         INTEGER NOT NULL,
    PRIMARY KEY (update_id, node)
) WITHOUT ROWID;

-- Wall-clock figures (run time, speed, memory). Kept apart so the simulated results can be
-- hashed: nothing in this table enters res_hash().
CREATE TABLE wall (
    name  TEXT NOT NULL PRIMARY KEY,
    value REAL
) WITHOUT ROWID;

-- Convenience: one row per delivery with its latency; not stored, computed when read.
CREATE VIEW delivery_latency AS
SELECT d.update_id AS update_id,
       u.origin AS origin,
       d.node AS node,
       d.delivered_ns - u.created_ns AS latency_ns,
       d.hops AS hops
FROM delivery AS d
JOIN updates AS u ON u.update_id = d.update_id;
