"""Every filter of the staff queue reads one page through an index, on SQLite and on PostgreSQL (EXPLAIN).

A queue of 40,000 requests (tests/queue_population.py: three years, the last month's mostly open), ANALYZEd as a live
database is, then the statement of each filter the page offers, alone and with a page cursor, is EXPLAINed: no full
scan of the requests and no sort of the open backlog (or of the closed requests). bench/staff_queue.py measures the
same filters at 1,000,000 requests.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session

from portal.backoffice import queue
from portal.db import make_engine, migrate, read_only_engine
from portal.requests import service as requests_service
from tests.conftest import PG_URL, TIMEZONE, _truncate_postgres
from tests.queue_population import Population, populate

REQUESTS = 40_000
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
STAFF_ID = 3


@dataclass(frozen=True)
class Shape:
    query: dict[str, str]
    # The index SQLite walks (PostgreSQL picks by cost among the same ones; its plan is checked for what it avoids).
    index: str
    search: bool = False  # a search sorts the few requests of the customers and references it matched


OPEN_BY_DUE = "ix_privacy_request_open_by_due"
SHAPES = {
    "open": Shape({}, OPEN_BY_DUE),
    "received": Shape({"status": "received"}, "ix_privacy_request_status_effective_due"),
    "in_progress": Shape({"status": "in_progress"}, "ix_privacy_request_status_effective_due"),
    "awaiting_customer": Shape({"status": "awaiting_customer"}, "ix_privacy_request_status_effective_due"),
    "completed": Shape({"status": "completed"}, "ix_privacy_request_status_received"),
    "rejected": Shape({"status": "rejected"}, "ix_privacy_request_status_received"),
    "cancelled": Shape({"status": "cancelled"}, "ix_privacy_request_status_received"),
    "closed": Shape({"status": "closed"}, "ix_privacy_request_received"),
    "all": Shape({"status": "all"}, "ix_privacy_request_received"),
    "type": Shape({"type": "restriction"}, "ix_privacy_request_open_type"),
    "channel": Shape({"channel": "post"}, "ix_privacy_request_open_channel"),
    "store": Shape({"store": "3"}, "ix_privacy_request_open_store"),
    "assignee-me": Shape({"assignee": "me"}, "ix_privacy_request_open_assignee"),
    "assignee-none": Shape({"assignee": "none"}, "ix_privacy_request_open_assignee"),
    "assignee-other": Shape({"assignee": "4"}, "ix_privacy_request_open_assignee"),
    "overdue": Shape({"due": "overdue"}, OPEN_BY_DUE),
    "week": Shape({"due": "week"}, OPEN_BY_DUE),
    "closed-type": Shape({"status": "closed", "type": "other"}, "ix_privacy_request_type_received"),
    "closed-channel": Shape({"status": "closed", "channel": "post"}, "ix_privacy_request_channel_received"),
    "all-store": Shape({"status": "all", "store": "7"}, "ix_privacy_request_store_received"),
    "closed-assignee-me": Shape({"status": "closed", "assignee": "me"}, "ix_privacy_request_assignee_received"),
    # Most completed requests are nobody's now: walking the completed ones newest first finds a page at once.
    "completed-assignee-none": Shape({"status": "completed", "assignee": "none"}, "ix_privacy_request_status_received"),
    "search-reference": Shape({"q": "REFERENCE"}, "sqlite_autoindex_privacy_request_1"),
    "search-reference-start": Shape({"q": "REFERENCE-START"}, "", search=True),
    "search-email": Shape({"q": "customer12"}, "ix_privacy_request_customer", search=True),
    "search-name": Shape({"q": "durand1"}, "ix_privacy_request_customer", search=True),
    "search-all": Shape({"q": "martin2", "status": "all"}, "ix_privacy_request_customer", search=True),
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def big_queue(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Population]]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("plans") / "queue.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        if not PG_URL:
            pytest.skip("PORTAL_TEST_DATABASE_URL is not set")
        url = request.getfixturevalue("postgres_schema")
        _truncate_postgres(url)
    population = populate(url, count=REQUESTS, now=NOW)
    engine = make_engine(url)
    yield engine, population
    engine.dispose()
    if request.param == "postgresql":
        _truncate_postgres(url)
    else:
        Path(path).unlink()


def _query(shape: Shape, population: Population) -> dict[str, str]:
    q = shape.query.get("q")
    if q == "REFERENCE":
        return {**shape.query, "q": population.sample_reference}
    if q == "REFERENCE-START":
        return {**shape.query, "q": population.sample_reference[2:6]}
    return shape.query


def _statement_sql(connection: Connection, shape: Shape, population: Population, after: str | None) -> str:
    filters, errors = queue.parse_filters(_query(shape, population))
    assert not errors, errors
    customers: list[int] = []
    if filters.q:
        customers, _capped = queue.matching_customers(Session(bind=connection), filters.q)
    statement = queue.page_statement(
        filters, staff_id=STAFF_ID, now=NOW, after=after, timezone=TIMEZONE, customers=customers
    )
    # Values written in: EXPLAIN takes no parameters on PostgreSQL, and the plan depends on the shape, not the values.
    return str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))


def _cursor(shape: Shape) -> str:
    """A cursor in the middle of the data: received or due around the open backlog."""
    moment = int(datetime(2026, 11, 30, tzinfo=UTC).timestamp() * 1_000_000)
    return f"{moment}.{REQUESTS // 2}"


def _sqlite_plan(connection: Connection, sql: str) -> str:
    return " / ".join(row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


def _postgres_plan(connection: Connection, sql: str) -> dict[str, Any]:
    raw = connection.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def _describe(plan: dict[str, Any], depth: int = 0) -> str:
    """The plan as indented lines (node, relation, index, estimated rows), for the assertion messages."""
    where = " ".join(str(plan[k]) for k in ("Relation Name", "Index Name") if k in plan)
    line = f"{'  ' * depth}{plan['Node Type']} {where} rows={plan.get('Plan Rows')}"
    return "\n".join([line, *(_describe(child, depth + 1) for child in plan.get("Plans", []))])


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize("after", [False, True], ids=["first-page", "next-page"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_every_filter_reads_one_page_through_an_index(
    big_queue: tuple[Engine, Population], name: str, after: bool
) -> None:
    engine, population = big_queue
    shape = SHAPES[name]
    with engine.connect() as connection:
        sql = _statement_sql(connection, shape, population, _cursor(shape) if after else None)
        if connection.dialect.name == "sqlite":
            plan = _sqlite_plan(connection, sql)
            walks = [step for step in plan.split(" / ") if "privacy_request" in step]
            assert walks and all(" USING " in step for step in walks), plan  # never a bare SCAN of the table
            if shape.index:
                assert f"INDEX {shape.index}" in plan, plan
            if shape.search:  # the sort is of the few requests of the customers and references found
                assert all(step.startswith("SEARCH") for step in walks), plan
            else:
                assert "TEMP B-TREE" not in plan, plan
        else:
            plan_tree = _postgres_plan(connection, sql)
            described = _describe(plan_tree)
            nodes = list(_nodes(plan_tree))
            scans = [n for n in nodes if n.get("Relation Name") == "privacy_request"]
            assert scans, described
            assert not [n for n in scans if n["Node Type"] == "Seq Scan"], described
            sorts = [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort")]
            # A sort, if the planner wants one, is of a few rows it fetched by an index, never of the backlog (a
            # search's rows are those of at most SEARCH_CUSTOMERS customers and of a reference's first characters).
            backlog = population.open if shape.query.get("status", "open") == "open" else REQUESTS
            assert all(n["Plans"][0]["Plan Rows"] < backlog / 10 for n in sorts), described


def _customer_statement_sql(connection: Connection, customer_id: int) -> str:
    statement = requests_service.OPEN_OF_CUSTOMER.params(customer_id=customer_id)
    return str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))


def test_a_customer_filing_reads_only_their_own_open_requests(big_queue: tuple[Engine, Population]) -> None:
    """Filing a request reads the customer's open ones by the customer's index, never the queue's type index (which
    walked every request of the type: filing slowed as the queue grew)."""
    engine, _population = big_queue
    with engine.connect() as connection:
        sql = _customer_statement_sql(connection, 12)
        if connection.dialect.name == "sqlite":
            plan = _sqlite_plan(connection, sql)
            assert "INDEX ix_privacy_request_customer (customer_id=?)" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        else:
            plan_tree = _postgres_plan(connection, sql)
            nodes = list(_nodes(plan_tree))
            indexes = {n["Index Name"] for n in nodes if "Index Name" in n}
            assert indexes == {"ix_privacy_request_customer"}, _describe(plan_tree)
            assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], _describe(plan_tree)


def test_a_customer_filing_uses_their_index_before_any_analyze(tmp_path: Path) -> None:
    """A new SQLite database has no statistics: the planner's rule of thumb must still pick the customer's index."""
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            plan = _sqlite_plan(connection, _customer_statement_sql(connection, 12))
        assert "INDEX ix_privacy_request_customer (customer_id=?)" in plan, plan
    finally:
        engine.dispose()


def test_postgresql_plans_a_page_once_not_on_every_request(big_queue: tuple[Engine, Population]) -> None:
    """psycopg prepares a statement run five times on a connection; PostgreSQL then plans it once (a generic plan)
    only if that plan is not dearer than the ones made for each run. With a bound LIMIT it always was, so the queue's
    statement was planned anew on every page: 1-3 ms at 1,000,000 requests, longer than running it."""
    engine, _population = big_queue
    if engine.dialect.name != "postgresql":
        pytest.skip("prepared statements and their plans are PostgreSQL's")
    reads = read_only_engine(engine)
    try:
        with Session(reads) as session:
            for _ in range(15):
                queue.queue_page(session, filters=queue.QueueFilters(), staff_id=STAFF_ID, now=NOW, timezone=TIMEZONE)
            plans = (
                session.connection()
                .execute(
                    text(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                        " WHERE statement LIKE '%FROM privacy_request%'"
                    )
                )
                .all()
            )
    finally:
        reads.dispose()
    assert plans, "the queue's statement was never prepared"
    assert all(generic > 0 for generic, _custom in plans), plans
