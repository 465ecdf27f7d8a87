"""The monitoring component: the PrometheusRule passes promtool's checks and its unit tests, every alert has a test
and a runbook section, and the Grafana dashboard is provisioned and sound.

promtool comes from ``make promtool`` (``scripts/install-promtool``: Debian's ``prometheus`` package), which
``make test`` runs before pytest. Without it these tests fail (they never skip: a rule that was not tested is not
known to work).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from deploy import monitoring
from deploy.kustomize import ROOT
from deploy.validate import Obj, find_problems, kind_of
from fetcher.metrics import FetcherMetrics
from ingest.metrics import IngestMetrics
from tests.deploy.helpers import find
from tests.support.prometheus import promtool_path
from transcriber.metrics import TranscriberMetrics

pytestmark = pytest.mark.unit

MONITORING = ROOT / "deploy" / "components" / "monitoring"
DASHBOARD = MONITORING / "dashboards" / "recall-pipeline.json"
RUNBOOK = ROOT / "docs" / "runbook.md"
#: Registered by pipeline_common.streaming.add_operational_pages (ready_gauge=...) in the workers' app.py.
READINESS_GAUGES = {"transcriber_worker_ready", "fetcher_worker_ready"}
#: Not the services': Prometheus' own, and the Kafka exporter's (docs/runbook.md says which exporter).
EXTERNAL_METRICS = {
    "up",
    "ALERTS",
    "kafka_consumergroup_lag",
    "kafka_topic_partition_current_offset",
    "kafka_topic_partition_oldest_offset",
}


@pytest.fixture(scope="session")
def promtool() -> str:
    return promtool_path()


def rule_spec(objects: list[Obj]) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "PrometheusRule", "recall-pipeline")["spec"]
    return spec


def alerts(objects: list[Obj]) -> list[dict[str, Any]]:
    return [rule for group in rule_spec(objects)["groups"] for rule in group["rules"] if "alert" in rule]


def runbook_base(objects: list[Obj]) -> str:
    urls = {str(rule["annotations"]["runbook_url"]).split("#", 1)[0] for rule in alerts(objects)}
    assert len(urls) == 1, urls
    return urls.pop()


def write_rule_tests(objects: list[Obj], directory: Path) -> Path:
    """The rendered rules as a plain Prometheus rule file, and the unit tests beside it, ready for promtool."""
    (directory / "rules.rendered.yaml").write_text(yaml.safe_dump(rule_spec(objects), sort_keys=False))
    tests = yaml.safe_load((MONITORING / "rules.test.yaml").read_text())
    tests.pop("descriptions")  # anchors only; promtool refuses unknown fields
    text = yaml.safe_dump(tests, sort_keys=False, width=1000).replace("RUNBOOK_BASE_URL", runbook_base(objects))
    path = directory / "rules.test.yaml"
    path.write_text(text)
    return path


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_rules_render_and_pass_promtool_check(
    rendered: dict[str, list[Obj]], promtool: str, overlay: str, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_spec(rendered[overlay])))
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts(rendered[overlay]))} rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say(
    rendered: dict[str, list[Obj]], promtool: str, tmp_path: Path
) -> None:
    result = run([promtool, "test", "rules", str(write_rule_tests(rendered["prod"], tmp_path))])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_wrong_expectation_fails_the_unit_tests(
    rendered: dict[str, list[Obj]], promtool: str, tmp_path: Path
) -> None:
    """The harness can fail: break one rule's threshold and promtool must report it."""
    objects = [dict(obj) for obj in rendered["prod"]]
    spec = yaml.safe_load(yaml.safe_dump(rule_spec(objects)))
    for rule in spec["groups"][0]["rules"]:
        if rule["alert"] == "RecallIngestFailing":
            rule["expr"] = rule["expr"].replace("> 0.05", "> 0.5")
    path = write_rule_tests(objects, tmp_path)
    (tmp_path / "rules.rendered.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = run([promtool, "test", "rules", str(path)])
    assert result.returncode != 0
    assert "RecallIngestFailing" in result.stdout + result.stderr


def test_every_alert_has_a_test_that_fires_it(rendered: dict[str, list[Obj]]) -> None:
    tests = yaml.safe_load((MONITORING / "rules.test.yaml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert {rule["alert"] for rule in alerts(rendered["prod"])} == fired


def runbook_sections() -> dict[str, str]:
    """``## Heading`` -> its text, keyed by the anchor GitHub gives the heading."""
    sections: dict[str, str] = {}
    for block in re.split(r"^## ", RUNBOOK.read_text(), flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        anchor = re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        sections[anchor] = body
    return sections


def test_every_alert_links_to_its_runbook_section_which_says_how_to_confirm_and_fix(
    rendered: dict[str, list[Obj]],
) -> None:
    sections = runbook_sections()
    for rule in alerts(rendered["prod"]):
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        anchor = annotations["runbook_url"].split("#", 1)[1]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in sections, f"docs/runbook.md has no section for {rule['alert']}"
        body = sections[anchor]
        for part in ("**Meaning**", "**Confirm**", "**Fix**"):
            assert part in body, f"runbook section {rule['alert']} lacks {part}"
        assert "recall-pipeline " in body, f"runbook section {rule['alert']} shows no recall-pipeline command"


def test_the_runbook_address_is_set_once_and_kustomize_keeps_the_settings_out_of_the_cluster(
    rendered: dict[str, list[Obj]],
) -> None:
    settings = yaml.safe_load((MONITORING / "settings.yaml").read_text())
    for objects in rendered.values():
        assert runbook_base(objects) == settings["data"]["RUNBOOK_BASE_URL"]
        assert not [o for o in objects if kind_of(o) == "ConfigMap" and "monitoring-settings" in str(o["metadata"])]


# --------------------------------------------------------------------------------------------------------- dashboard


def dashboard_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_dashboard_is_provisioned_for_grafanas_sidecar(rendered: dict[str, list[Obj]], overlay: str) -> None:
    config_map = find(rendered[overlay], "ConfigMap", "recall-pipeline-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["recall-pipeline.json"]) == dashboard_json()


def test_the_dashboard_fits_grafanas_schema_the_grid_and_its_variables() -> None:
    assert monitoring.dashboard_problems(dashboard_json()) == []


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda d: d["panels"][1].update(gridPoss=d["panels"][1]["gridPos"]), "/panels[1]/gridPoss: not a field"),
        (lambda d: d["panels"][8]["options"]["legend"].update(placment="bottom"), "placment: not a field"),
        (lambda d: d["panels"][8]["targets"][0].update(exprr="up"), "exprr: not a field"),
        (lambda d: d["panels"][8].update(type="timeserie"), "unknown panel type 'timeserie'"),
        (lambda d: d["panels"][9]["gridPos"].update(x=0), "overlaps"),
        (lambda d: d["panels"][10]["gridPos"].update(x=16), "not inside the 24-column grid"),
        (lambda d: d["panels"][2].update(id=1), "id used twice"),
        (lambda d: d["panels"][8]["targets"][0].update(datasource={"uid": "prom"}), "not on the $datasource"),
        (lambda d: d["panels"][8]["targets"][0].update(expr="up{namespace=~'$nmespace'}"), "undefined $nmespace"),
        (lambda d: d["templating"]["list"][1].update(includAll=True), "/templating/list[1]/includAll: not a field"),
    ],
)
def test_the_dashboard_check_catches_what_grafana_would_not_show(break_it: Any, expected: str) -> None:
    broken = copy.deepcopy(dashboard_json())
    break_it(broken)
    problems = monitoring.dashboard_problems(broken)
    assert any(expected in problem for problem in problems), problems


# ----------------------------------------------------------------------------------------- metrics that exist


def exposed_names() -> set[str]:
    """Every sample name the services can expose (counters' _total, histograms' _bucket/_sum/_count)."""
    ingest, transcriber, fetcher = IngestMetrics(), TranscriberMetrics(), FetcherMetrics()
    transcriber.watch_table(list, deadline_seconds=60)
    fetcher.watch_table(list, deadline_seconds=60)
    names = set(READINESS_GAUGES)
    registry: CollectorRegistry
    for registry in (ingest.registry, transcriber.registry, fetcher.registry):
        for family in registry.collect():
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
            names |= {family.name + suffix for suffix in suffixes}
    return names


def dashboard_exprs() -> list[str]:
    return [str(t["expr"]) for panel in dashboard_json()["panels"] for t in panel.get("targets", [])]


def test_every_metric_the_rules_and_the_dashboard_read_is_exposed(rendered: dict[str, list[Obj]]) -> None:
    known = exposed_names() | EXTERNAL_METRICS
    rule_exprs = [str(rule["expr"]) for rule in alerts(rendered["prod"])]
    for expr in rule_exprs + dashboard_exprs():
        names = monitoring.promql_metric_names(expr)
        assert names, expr
        assert names <= known, f"{sorted(names - known)} in {expr}"


def test_the_metric_name_extraction_sees_through_promql() -> None:
    expr = (
        'sum by (namespace) (rate(a_total{code=~"5..", x="y"}[5m])) / on (namespace) group_left b_seconds_bucket'
        ' and histogram_quantile(0.9, c_bucket{le="+Inf"}) > 6 * 3600'
    )
    assert monitoring.promql_metric_names(expr) == {"a_total", "b_seconds_bucket", "c_bucket"}


def test_the_runbook_names_only_panels_the_dashboard_has() -> None:
    titles = {panel["title"] for panel in dashboard_json()["panels"]} | {dashboard_json()["title"]}
    text = " ".join(RUNBOOK.read_text().split())
    named = set(re.findall(r'[Dd]ashboard:? "([^"]+)"(?: and "([^"]+)")?', text))
    named |= set(re.findall(r'[Dd]ashboard: "[^"]+", "([^"]+)", "([^"]+)"', text))
    quoted = {title for pair in named for title in pair if title}
    assert quoted, "the runbook names no dashboard panel"
    assert quoted <= titles, sorted(quoted - titles)


def test_the_validator_names_an_alert_without_runbook_or_severity(fresh: Any) -> None:
    objects = fresh("prod")
    rule = find(objects, "PrometheusRule", "recall-pipeline")
    first = rule["spec"]["groups"][0]["rules"][0]
    del first["annotations"]["runbook_url"]
    first["labels"]["severity"] = "page-me"
    rule["spec"]["groups"][0]["rules"].append({"alert": "Broken"})
    problems = [str(p) for p in find_problems(objects)]
    where = "PrometheusRule recall-pipeline/recall-pipeline"
    assert f"{where}: alert {first['alert']} has no runbook_url annotation" in problems
    assert f"{where}: alert {first['alert']} has no severity label (critical, info, warning)" in problems
    assert f"{where}: rule Broken has no expr" in problems


def test_the_validator_names_a_dashboard_configmap_that_is_not_json(fresh: Any) -> None:
    objects = fresh("dev")
    find(objects, "ConfigMap", "recall-pipeline-dashboard")["data"]["recall-pipeline.json"] = "{not json"
    problems = [str(p) for p in find_problems(objects)]
    assert (
        "ConfigMap recall-pipeline-dev/recall-pipeline-dashboard: recall-pipeline.json is not a JSON object" in problems
    )
