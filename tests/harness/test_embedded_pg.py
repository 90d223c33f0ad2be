"""The harness itself: a logical-replication-capable server and isolated databases."""

import psycopg


def test_each_test_gets_its_own_empty_database(pg_dsn: str, make_database) -> None:
    other = make_database("other")
    with psycopg.connect(pg_dsn) as a, psycopg.connect(other) as b:
        a.execute("CREATE TABLE only_here (id int)")
        a.commit()
        assert b.execute("SELECT to_regclass('only_here')").fetchone() == (None,)
        assert a.execute("SELECT current_database()").fetchone() != b.execute("SELECT current_database()").fetchone()


def test_server_accepts_replication_connections(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn + " replication=database", autocommit=True) as conn:
        system_id, timeline, xlogpos, dbname = conn.execute("IDENTIFY_SYSTEM").fetchone()
    assert timeline >= 1 and "/" in xlogpos and dbname.startswith("t_")


def test_wrong_password_is_refused(pg_server) -> None:
    import pytest

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            f"host={pg_server.host} port={pg_server.port} user={pg_server.user} password=wrong dbname=postgres"
        )
