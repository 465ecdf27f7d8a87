"""The reconciler's CronJob: rendered in both overlays, running `recall-pipeline reconcile` from the cli image with the
pipeline's settings, and held to the same rules as the services (plus a CronJob's own)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deploy.validate import OVERLAY_EXPECTATIONS, Obj, find_problems, kind_of, name_of
from pipeline_common.topics import RECONCILER_STATE
from tests.deploy.helpers import find, find_prefixed

pytestmark = pytest.mark.unit


def cronjob_container(objects: list[Obj]) -> Obj:
    cronjob = find(objects, "CronJob", "reconciler")
    container: Obj = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_cronjob_runs_reconcile_with_the_pipelines_settings(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    cronjob = find(objects, "CronJob", "reconciler")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    container = cronjob_container(objects)
    assert container["args"] == ["reconcile"]
    assert container["image"].split("/")[-1].startswith("cli:")
    sources = [ref["configMapRef"]["name"] for ref in container["envFrom"]]
    assert any(name.startswith("pipeline-config") for name in sources)
    assert any(name.startswith("reconciler-config") for name in sources)
    config = find_prefixed(objects, "ConfigMap", "reconciler-config")["data"]
    assert {"RECONCILE_MAX_AGE", "RECONCILE_OVERLAP", "RECONCILE_GRACE"} <= set(config)
    secret = {item["name"]: item["valueFrom"]["secretKeyRef"]["name"] for item in container["env"]}
    kafka = {"KAFKA_SASL_JAAS_CONFIG": "reconciler"} if overlay == "prod" else {}  # its own KafkaUser's Secret
    assert secret == {"RECALL_API_KEY": "recall-credentials", **kafka}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_its_watermark_topic_is_rendered(rendered: dict[str, list[Obj]], overlay: str) -> None:
    topics = {obj["spec"].get("topicName", name_of(obj)) for obj in rendered[overlay] if kind_of(obj) == "KafkaTopic"}
    assert RECONCILER_STATE.name in topics


def test_dev_lets_the_reconciler_reach_the_simulator(rendered: dict[str, list[Obj]]) -> None:
    policy = find(rendered["dev"], "NetworkPolicy", "reconciler")
    targets = [peer for rule in policy["spec"]["egress"] for peer in rule.get("to", [])]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "recall-sim"}}} in targets


def test_a_cronjob_that_may_overlap_or_run_forever_or_as_root_is_refused(fresh: Callable[[str], list[Obj]]) -> None:
    objects = fresh("prod")
    cronjob = find(objects, "CronJob", "reconciler")
    del cronjob["spec"]["concurrencyPolicy"]
    del cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    cronjob_container(objects)["securityContext"]["readOnlyRootFilesystem"] = False
    problems = [str(p) for p in find_problems(objects) if "CronJob" in p.object]
    assert any("concurrencyPolicy" in p for p in problems), problems
    assert any("activeDeadlineSeconds" in p for p in problems), problems
    assert any("writable root filesystem" in p for p in problems), problems


def test_a_cronjob_without_a_network_policy_is_refused(fresh: Callable[[str], list[Obj]]) -> None:
    objects = [obj for obj in fresh("prod") if not (kind_of(obj) == "NetworkPolicy" and name_of(obj) == "reconciler")]
    problems = [str(p) for p in find_problems(objects) if "CronJob" in p.object]
    assert any("no NetworkPolicy restricts its egress and ingress traffic" in p for p in problems), problems


def test_prod_refuses_a_reconciler_without_its_own_kafka_identity(fresh: Callable[[str], list[Obj]]) -> None:
    """The CronJob is a Kafka client like the services: in prod it must connect as its own KafkaUser over TLS."""
    objects = fresh("prod")
    container = cronjob_container(objects)
    container["env"] = [v for v in container.get("env", []) if v["name"] != "KAFKA_SASL_JAAS_CONFIG"]
    problems = [str(p) for p in find_problems(objects, OVERLAY_EXPECTATIONS["prod"])]
    assert any(
        p.startswith("CronJob recall-pipeline/reconciler: container 'reconciler' KAFKA_SASL_USERNAME=None names no "
                     "KafkaUser of reconciler") for p in problems
    ), problems  # fmt: skip


def test_prod_refuses_a_reconciler_borrowing_a_services_kafka_user(fresh: Callable[[str], list[Obj]]) -> None:
    objects = fresh("prod")
    container = cronjob_container(objects)
    container["env"] = [v for v in container.get("env", []) if v["name"] != "KAFKA_SASL_JAAS_CONFIG"]
    borrowed = {"secretKeyRef": {"name": "fetcher", "key": "sasl.jaas.config"}}
    container["env"].append({"name": "KAFKA_SASL_JAAS_CONFIG", "valueFrom": borrowed})
    problems = [str(p) for p in find_problems(objects, OVERLAY_EXPECTATIONS["prod"])]
    assert any("CronJob recall-pipeline/reconciler" in p and "own KafkaUser's Secret" in p for p in problems), problems


def test_prod_wires_the_reconciler_like_the_services(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["prod"]
    env = {v["name"]: v for v in cronjob_container(objects)["env"]}
    reference = env["KAFKA_SASL_JAAS_CONFIG"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "reconciler", "key": "sasl.jaas.config"}
    user = find(objects, "KafkaUser", "reconciler")
    assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
    pod = find(objects, "CronJob", "reconciler")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {"name": "kafka-cluster-ca", "secret": {"secretName": "recall-kafka-cluster-ca-cert",
            "items": [{"key": "ca.crt", "path": "ca.crt"}]}} in pod["volumes"]  # fmt: skip
