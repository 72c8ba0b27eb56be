"""Column types of the canonical tables: Arrow schemas (frames, parquet) and the store's DDL."""

from __future__ import annotations

import pyarrow as pa

from recops.columns import Columns

RAW = "raw"  # quarantine column holding the original row as JSON
_DS, _BATCH = Columns.dataset, Columns.batch

EVENTS_SCHEMA = pa.schema(
    [
        (Columns.user, pa.string()),
        (Columns.item, pa.string()),
        (Columns.timestamp, pa.timestamp("ns")),
        (Columns.event_type, pa.string()),
        (Columns.value, pa.float64()),
        (Columns.weight, pa.float64()),
    ]
)
ITEMS_SCHEMA = pa.schema(
    [
        (Columns.item, pa.string()),
        (Columns.title, pa.string()),
        (Columns.category, pa.string()),
        (Columns.brand, pa.string()),
        (Columns.price, pa.float64()),
        (Columns.tags, pa.string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        (Columns.source_row, pa.int64()),
        (Columns.rule, pa.string()),
        (Columns.detail, pa.string()),
        (RAW, pa.string()),
    ]
)

# TIMESTAMP_NS keeps pandas' datetime64[ns] exact, so the anti-join compares what validation
# de-duplicated. No primary keys/indexes: idempotence is an anti-join, and ART indexes over
# 10M rows cost memory and slow bulk inserts.
STORE_DDL = f"""
CREATE SEQUENCE IF NOT EXISTS batch_id_seq START 1;
CREATE TABLE IF NOT EXISTS events (
    {_DS} VARCHAR NOT NULL, {Columns.user} VARCHAR NOT NULL, {Columns.item} VARCHAR NOT NULL,
    {Columns.timestamp} TIMESTAMP_NS NOT NULL, {Columns.event_type} VARCHAR NOT NULL,
    {Columns.value} DOUBLE, {Columns.weight} DOUBLE NOT NULL, {_BATCH} BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    {_DS} VARCHAR NOT NULL, {Columns.item} VARCHAR NOT NULL, {Columns.title} VARCHAR,
    {Columns.category} VARCHAR, {Columns.brand} VARCHAR, {Columns.price} DOUBLE,
    {Columns.tags} VARCHAR, {_BATCH} BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    {_BATCH} BIGINT NOT NULL, {_DS} VARCHAR NOT NULL, origin VARCHAR, content_hash VARCHAR,
    started_at TIMESTAMP, finished_at TIMESTAMP, n_rows BIGINT, n_valid BIGINT,
    n_inserted BIGINT, n_already_present BIGINT, n_quarantined BIGINT, status VARCHAR);
CREATE TABLE IF NOT EXISTS quarantine (
    {_BATCH} BIGINT NOT NULL, {_DS} VARCHAR NOT NULL, {Columns.source_row} BIGINT,
    {Columns.rule} VARCHAR, {Columns.detail} VARCHAR, {RAW} VARCHAR);
"""
