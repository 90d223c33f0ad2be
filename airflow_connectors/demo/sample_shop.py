"""The demo's source database: a small shop with what makes CDC hard (partitions, TOAST, enums, jsonb, arrays)."""

from __future__ import annotations

from typing import Any

import psycopg

SCHEMA = "shop"
TABLES = ("shop.customers", "shop.products", "shop.orders")

DDL = """
CREATE SCHEMA shop;
CREATE TYPE shop.order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');
CREATE TABLE shop.customers (
    id         bigint PRIMARY KEY,
    name       text NOT NULL,
    email      text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    profile    jsonb
);
CREATE TABLE shop.products (
    id          integer PRIMARY KEY,
    title       text NOT NULL,
    description text,            -- several kB: stored out of line (TOAST)
    price       numeric(10, 2) NOT NULL,
    tags        text[]
);
CREATE TABLE shop.orders (
    id          bigint NOT NULL,
    ordered_at  date NOT NULL,
    customer_id bigint NOT NULL,
    status      shop.order_status NOT NULL DEFAULT 'new',
    total       numeric(12, 2) NOT NULL,
    PRIMARY KEY (id, ordered_at)
) PARTITION BY RANGE (ordered_at);
CREATE TABLE shop.orders_2026_h1 PARTITION OF shop.orders FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE shop.orders_2026_h2 PARTITION OF shop.orders FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
"""

ROWS = """
INSERT INTO shop.customers (id, name, email, profile)
SELECT i, 'Customer ' || i, 'customer' || i || '@example.com',
       jsonb_build_object('tier', (ARRAY['bronze', 'silver', 'gold'])[1 + i %% 3], 'visits', i %% 17)
FROM generate_series(1, %(customers)s) AS i;

INSERT INTO shop.products (id, title, description, price, tags)
SELECT i, 'Product ' || i,
       (SELECT string_agg(md5(i::text || '-' || j::text), ' ') FROM generate_series(1, 120) AS j),
       (i %% 500) + 0.99, ARRAY['tag' || (i %% 7), 'tag' || (i %% 11)]
FROM generate_series(1, %(products)s) AS i;

INSERT INTO shop.orders (id, ordered_at, customer_id, status, total)
SELECT i, date '2026-01-01' + (i %% 360), 1 + i %% %(customers)s,
       (ARRAY['new', 'paid', 'shipped', 'cancelled']::shop.order_status[])[1 + i %% 4], (i %% 1000) + 0.5
FROM generate_series(1, %(orders)s) AS i;
"""

# What happens in the shop between the demo's two runs.
CHANGES = """
INSERT INTO shop.orders (id, ordered_at, customer_id, status, total)
SELECT 1000000 + i, date '2026-11-24', i, 'new', 42.00 FROM generate_series(1, 150) AS i;
UPDATE shop.orders SET status = 'shipped' WHERE status = 'paid' AND id % 10 = 0;
DELETE FROM shop.orders WHERE id % 97 = 0 AND id < 1000000;
UPDATE shop.customers SET profile = profile || '{"vip": true}' WHERE id % 50 = 0;
UPDATE shop.products SET price = price + 1 WHERE id % 5 = 0;   -- description unchanged: arrives as TOAST 'unchanged'
INSERT INTO shop.customers (id, name, email) VALUES (999999, 'Ada O''Brien', 'ada@example.com');
"""


def create(conninfo: str, *, customers: int = 3000, products: int = 300, orders: int = 6000) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(DDL)
        params: dict[str, Any] = {"customers": customers, "products": products, "orders": orders}
        for statement in filter(str.strip, ROWS.split(";")):  # parameters need one statement per call
            conn.execute(statement, params)


def change(conninfo: str) -> None:
    with psycopg.connect(conninfo) as conn:
        conn.execute(CHANGES)


def table_fingerprints(
    conninfo: str, tables: tuple[str, ...], schema_map: dict[str, str] | None = None
) -> dict[str, tuple[int, str]]:
    """(row count, md5 of all rows as text in a stable order) per table: equal on both sides means equal data."""
    result = {}
    with psycopg.connect(conninfo) as conn:
        for table in tables:
            target = (schema_map or {}).get(table, table)
            schema, name = target.split(".", 1)
            row = conn.execute(
                psycopg.sql.SQL(
                    "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {} AS t"
                ).format(psycopg.sql.Identifier(schema, name))
            ).fetchone()
            assert row is not None
            result[table] = (int(row[0]), str(row[1]))
    return result
