"""KEDA's Kafka lag scalers in prod: they reach the TLS listener as the read-only KafkaUser `lag-scaler` (SCRAM-SHA-512,
the cluster CA) through a TriggerAuthentication, and the validator refuses a prod lag scaler without one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deploy import kustomize
from deploy.validate import OVERLAY_EXPECTATIONS, Obj, find_problems, kind_of
from pipeline_common.acls import LAG_SCALER, lag_inputs
from tests.deploy.helpers import find

pytestmark = pytest.mark.unit


def _problems(objects: list[Obj]) -> list[str]:
    return [str(p) for p in find_problems(objects, OVERLAY_EXPECTATIONS["prod"])]


def _kafka_triggers(objects: list[Obj]) -> list[tuple[str, Obj]]:
    return [
        (obj["metadata"]["name"], trigger)
        for obj in objects
        if kind_of(obj) == "ScaledObject"
        for trigger in obj["spec"]["triggers"]
        if trigger["type"] == "kafka"
    ]


def test_every_prod_lag_scaler_authenticates_as_the_lag_scaler_user(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["prod"]
    triggers = _kafka_triggers(objects)
    assert len(triggers) == 3
    assert all(trigger["authenticationRef"] == {"name": "kafka-lag-scaler"} for _, trigger in triggers), triggers
    auth = find(objects, "TriggerAuthentication", "kafka-lag-scaler")["spec"]
    secrets = {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["secretTargetRef"]}
    assert secrets == {"password": (LAG_SCALER, "password"), "ca": ("recall-kafka-cluster-ca-cert", "ca.crt")}
    literals = {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["configMapTargetRef"]}
    (config_map,) = {name for name, _ in literals.values()}
    data = find(objects, "ConfigMap", config_map)["data"]
    assert {parameter: data[key] for parameter, (_, key) in literals.items()} == {
        "sasl": "scram_sha512",
        "tls": "enable",
        "username": LAG_SCALER,
    }


def test_the_lag_scaler_user_may_describe_exactly_what_the_scalers_measure(rendered: dict[str, list[Obj]]) -> None:
    measured = {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for _, t in _kafka_triggers(rendered["prod"])}
    assert measured == {(group, topic) for group, topics in lag_inputs().items() for topic in topics}
    acls = find(rendered["prod"], "KafkaUser", LAG_SCALER)["spec"]["authorization"]["acls"]
    assert {op for acl in acls for op in acl["operations"]} == {"Describe"}  # reads no record, joins no group


def test_dev_lag_scalers_stay_plaintext(rendered: dict[str, list[Obj]]) -> None:
    assert not [obj for obj in rendered["dev"] if kind_of(obj) == "TriggerAuthentication"]
    assert all("authenticationRef" not in trigger for _, trigger in _kafka_triggers(rendered["dev"]))


def test_a_prod_lag_scaler_without_authentication_is_refused(fresh: Callable[[str], list[Obj]]) -> None:
    objects = fresh("prod")
    find(objects, "ScaledObject", "fetcher")["spec"]["triggers"][0].pop("authenticationRef", None)
    assert (
        "ScaledObject recall-pipeline/fetcher: kafka trigger on recall.transcript.events has no authenticationRef: "
        "KEDA would connect to the TLS listener unauthenticated" in _problems(objects)
    )


def test_a_trigger_authentication_that_is_not_in_the_output_is_refused(fresh: Callable[[str], list[Obj]]) -> None:
    objects = [obj for obj in fresh("prod") if kind_of(obj) != "TriggerAuthentication"]
    problems = _problems(objects)
    assert any(
        p.startswith("ScaledObject recall-pipeline/transcriber: kafka trigger on recall.recording.events uses "
                     "TriggerAuthentication 'kafka-lag-scaler', which is not in the output") for p in problems
    ), problems  # fmt: skip


@pytest.mark.parametrize(
    ("parameter", "change", "expected"),
    [
        ("sasl", "plaintext", "sasl must be scram_sha512"),
        ("tls", "disable", "tls must be enable"),
        ("username", "fetcher", "username 'fetcher' is not the KafkaUser whose Secret gives the password"),
        ("username", "nobody", "username 'nobody' names no KafkaUser"),
    ],
)
def test_a_trigger_authentication_without_scram_over_tls_is_refused(
    fresh: Callable[[str], list[Obj]], parameter: str, change: str, expected: str
) -> None:
    objects = fresh("prod")
    auth = find(objects, "TriggerAuthentication", "kafka-lag-scaler")["spec"]
    ref = next(r for r in auth["configMapTargetRef"] if r["parameter"] == parameter)
    find(objects, "ConfigMap", ref["name"])["data"][ref["key"]] = change
    problems = _problems(objects)
    assert any("TriggerAuthentication recall-pipeline/kafka-lag-scaler" in p and expected in p for p in problems), (
        problems
    )


def test_a_trigger_authentication_without_the_cluster_ca_is_refused(fresh: Callable[[str], list[Obj]]) -> None:
    objects = fresh("prod")
    auth = find(objects, "TriggerAuthentication", "kafka-lag-scaler")["spec"]
    auth["secretTargetRef"] = [r for r in auth["secretTargetRef"] if r["parameter"] != "ca"]
    problems = _problems(objects)
    assert any("kafka-lag-scaler" in p and "ca must be ca.crt of the Secret recall-kafka-cluster-ca-cert" in p
               for p in problems), problems  # fmt: skip


def test_a_lag_scaler_user_that_cannot_describe_the_group_is_refused(fresh: Callable[[str], list[Obj]]) -> None:
    objects = fresh("prod")
    user = find(objects, "KafkaUser", LAG_SCALER)
    acls = user["spec"]["authorization"]["acls"]
    user["spec"]["authorization"]["acls"] = [a for a in acls if a["resource"]["name"] != "fetcher"]
    problems = _problems(objects)
    assert any(
        p.startswith("ScaledObject recall-pipeline/fetcher: kafka trigger on recall.transcript.events authenticates "
                     "as 'lag-scaler', which may not Describe group fetcher") for p in problems
    ), problems  # fmt: skip


def test_readme_names_every_secret_the_cronjob_and_keda_reference(rendered: dict[str, list[Obj]]) -> None:
    """deploy/README.md tells the operator which Secrets and keys prod needs: the reconciler's and KEDA's too."""
    readme = (kustomize.DEPLOY_DIR / "README.md").read_text(encoding="utf-8")
    references: set[tuple[str, str]] = set()
    for obj in rendered["prod"]:
        if kind_of(obj) == "TriggerAuthentication":
            references |= {(r["name"], r["key"]) for r in obj["spec"].get("secretTargetRef", [])}
        elif kind_of(obj) == "CronJob":
            pod = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            for spec in pod["containers"]:
                for variable in spec.get("env", []):
                    if "secretKeyRef" in variable.get("valueFrom", {}):
                        reference = variable["valueFrom"]["secretKeyRef"]
                        references.add((reference["name"], reference["key"]))
            for volume in pod.get("volumes", []):
                if "secret" in volume:
                    references |= {(volume["secret"]["secretName"], i["key"]) for i in volume["secret"]["items"]}
    assert ("lag-scaler", "password") in references and ("reconciler", "sasl.jaas.config") in references
    for secret, key in sorted(references):
        assert f"`{secret}`" in readme, f"README does not mention Secret {secret}"
        assert f"`{key}`" in readme, f"README does not mention key {key} of Secret {secret}"
