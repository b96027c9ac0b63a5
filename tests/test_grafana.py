"""docs/grafana/livepages.json: a dashboard whose every query names a series a real
app's /metrics serves, with every series on some panel."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from livepages import App, Event, Page, Session, Settings, action, on
from livepages.metrics import Metrics
from livepages.testing import Client

DASHBOARD = Path(__file__).parent.parent / "docs" / "grafana" / "livepages.json"

#: A selector: a metric name and its label matchers (``name{a="b", c=~"d"}``).
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}")
#: One label matcher inside a selector.
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"[^"]*"\s*')
#: ``by (a, b)`` and ``without (a)`` clauses of an aggregation.
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
#: Every name of the namespace, whether or not a selector follows it.
NAMESPACED = re.compile(r"\blivepages_[A-Za-z0-9_]*")
#: The sample names each metric type exposes, by suffix.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
#: Values for Grafana's variables, so that a query is PromQL a server would parse.
VARIABLES = {"$__rate_interval": "1m", "$job": ".+", "$instance": ".+"}
#: Grafana's label_values(selector, label): its selector is PromQL.
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\)$")
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}


@dataclass
class Family:
    """A metric family as /metrics serves it."""

    name: str
    type: str
    labels: set[str]

    def sample_names(self) -> set[str]:
        return {self.name + suffix for suffix in SUFFIXES[self.type]}


@dataclass
class Query:
    """One PromQL expression of the dashboard, and where it is."""

    where: str
    expr: str


@dataclass
class Bumped(Event, subject="bumped.counter"):
    pass


@dataclass
class Amount:
    n: int


@contextmanager
def logging_off() -> Iterator[None]:
    """Quiet the error report of the render that fails on purpose."""
    logger = logging.getLogger("livepages")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' collapsed panels included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> list[Query]:
    found = [
        Query(f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append(Query(f"variable {variable['name']}", variable["query"]["query"]))
    return found


async def exposed() -> dict[str, Family]:
    """The families /metrics serves after traffic that gives every labelled series a
    sample (so that its labels are known): a page view, a stream opened and closed,
    actions that publish, a dedup skip, a render that fails, a sign-in and a sign-out."""
    app = App(settings=Settings(secret_key="k"), sessions=True)
    Metrics(app)
    state = {"n": 0, "broken": False}

    @app.page("/counter/{room}")
    @on(Bumped)
    class Counter(Page):
        room: str

        def render(self) -> str:
            if state["broken"]:
                raise RuntimeError("render broke")
            return f"<p>{state['n']}</p>"

        @action
        async def bump(self, amount: Amount) -> None:
            state["n"] += amount.n
            await app.publish(Bumped())

        @action
        async def sign_in(self, session: Session[Any]) -> None:
            await session.sign_in("ann")

        @action
        async def sign_out(self, session: Session[Any]) -> None:
            await session.sign_out()

    async with Client(app) as client:
        page = await client.get("/counter/a")
        async with page.stream() as stream:
            await stream.next_event()
            await page.action("bump", {"n": 1})
            await stream.next_event()
            await page.action("bump", {"n": 0})  # the same HTML: a dedup skip
            state["broken"] = True
            with logging_off():
                await page.action("bump", {"n": 1})
                await stream.next_event()
        state["broken"] = False
        await page.action("sign_in")
        page = await client.get("/counter/a")
        await page.action("sign_out")
        text = (await client.http.get("/metrics")).text
    families = {}
    for family in text_string_to_metric_families(text):
        labels = {name for sample in family.samples for name in sample.labels} - {"le"}
        families[family.name] = Family(family.name, family.type, labels)
    # The text format gives a counter's or histogram's _created samples a gauge family
    # of their own: they belong to the family they time.
    for name in list(families):
        base = families.get(name.removesuffix("_created"))
        if name.endswith("_created") and base and base.type in ("counter", "histogram"):
            del families[name]
    return families


def test_the_traffic_gives_every_labelled_series_a_sample(families: dict[str, Family]) -> None:
    # Else the label checks below would know no label of that series.
    unlabelled = {
        "livepages_http_in_flight_requests",
        "livepages_patches",
        "livepages_event_broker_deliveries_dropped",
        "livepages_csrf_refusals",
        "livepages_internal_errors_recovered",
        "livepages_internal_errors_not_recovered",
    }
    bare = {name for name, family in families.items() if not family.labels}
    assert bare == unlabelled


@pytest.fixture(scope="module")
def families() -> dict[str, Family]:
    return anyio.run(exposed)


def test_it_is_a_dashboard_that_imports_anywhere() -> None:
    dashboard = load()
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["title"]
    assert dashboard["uid"]
    [source] = dashboard["__inputs"]
    assert (source["name"], source["pluginId"]) == ("DS_PROMETHEUS", "prometheus")
    panels = list(all_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        box = panel["gridPos"]
        assert set(box) == {"h", "w", "x", "y"}, panel["title"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        # The input, not a uid of one Grafana: the dashboard imports into any other.
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert variables >= TARGET_LABELS
    assert not overlapping(panels)


def overlapping(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of panels whose boxes share a cell of the grid."""
    cells: dict[tuple[int, int], str] = {}
    clashes = []
    for panel in panels:
        box = panel["gridPos"]
        for x in range(box["x"], box["x"] + box["w"]):
            for y in range(box["y"], box["y"] + box["h"]):
                if (x, y) in cells:
                    clashes.append((cells[x, y], panel["title"]))
                cells[x, y] = panel["title"]
    return clashes


def test_every_query_names_served_series_with_their_labels(
    families: dict[str, Family],
) -> None:
    samples = {name: family for family in families.values() for name in family.sample_names()}
    for query in queries(load()):
        selected = SELECTOR.findall(query.expr)
        assert selected, f"{query.where}: no metric in {query.expr!r}"
        # Every name of the namespace is a selector's (none hides without one).
        assert set(NAMESPACED.findall(query.expr)) == {name for name, _ in selected}, query
        used: set[str] = set(TARGET_LABELS) | {"le"}
        for name, matchers in selected:
            assert name in samples, f"{query.where}: {name} is not served"
            labels = {match[0] for match in MATCHER.findall(matchers)}
            family = samples[name]
            if query.where.startswith("panel"):
                # Filtered by the dashboard's variables, so one job or instance shows.
                assert labels >= TARGET_LABELS, f"{query.where}: {name} ignores $job/$instance"
            assert labels <= family.labels | TARGET_LABELS, f"{query.where}: {name} {labels}"
            used |= family.labels
        for grouping in GROUPING.findall(query.expr):
            by = {label.strip() for label in grouping.split(",") if label.strip()}
            assert by <= used, f"{query.where}: grouped by {by - used}, not labels of it"


def test_every_served_series_has_a_panel(families: dict[str, Family]) -> None:
    shown = {
        name
        for query in queries(load())
        if query.where.startswith("panel")
        for name, _ in SELECTOR.findall(query.expr)
    }
    missing = [
        family.name
        for family in families.values()
        if family.name.startswith("livepages_") and not family.sample_names() & shown
    ]
    assert not missing, f"series without a panel: {missing}"


def promql(query: Query) -> str:
    """The query with Grafana's variables replaced: plain PromQL."""
    text = query.expr
    for name, value in VARIABLES.items():
        text = text.replace(name, value)
    values = LABEL_VALUES.match(text)
    return values.group(1) if values else text


def selected(tree: promql_parser.Expr) -> set[str]:
    """The metric names of a parsed query's selectors."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(tree, visit)
    return names


def test_every_query_parses_as_promql_and_selects_what_the_pattern_reads() -> None:
    for query in queries(load()):
        try:
            tree = promql_parser.parse(promql(query))
        except ValueError as error:
            pytest.fail(f"{query.where}: {error} in {query.expr!r}")
        # The metric names the checks above read are all the query's selectors.
        assert selected(tree) == {name for name, _ in SELECTOR.findall(query.expr)}, query
