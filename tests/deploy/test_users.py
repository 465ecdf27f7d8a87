"""The KafkaUsers are generated from the topic registry's ACLs, and the validator holds prod to a secured Kafka."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from deploy import users as module
from deploy.validate import OVERLAY_EXPECTATIONS, Obj, Problem, find_problems, kind_of
from pipeline_common.acls import SERVICES, USERS, grouped, service_acls
from tests.deploy.helpers import container, find, find_prefixed

pytestmark = pytest.mark.unit
generator = module.GENERATOR


def test_checked_in_users_are_what_the_registry_generates() -> None:
    stale = generator.stale_files()
    assert not stale, "deploy/users/ drifted from the registry's ACLs; run `make kube-users`:\n" + "\n".join(stale)


def test_each_service_gets_one_scram_user_with_its_derived_acls() -> None:
    files = generator.render_files()
    for service in USERS:
        user = yaml.safe_load(files[f"{service}.yaml"])
        assert (user["kind"], user["metadata"]["name"]) == ("KafkaUser", service)
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        acls = user["spec"]["authorization"]["acls"]
        found = {(a["resource"]["type"], a["resource"]["name"], tuple(a["operations"])) for a in acls}
        assert found == {(kind, name, ops) for kind, name, _, ops in grouped(service_acls(service))}


def test_a_stale_user_file_is_named(tmp_path: Path) -> None:
    generator.write_files(tmp_path)
    ingest = tmp_path / "ingest.yaml"
    ingest.write_text(ingest.read_text().replace("recall.bot.events", "transcripts.ready"))
    assert generator.stale_files(tmp_path) == ["ingest.yaml: differs from the registry's ACLs"]


def test_prod_runs_every_service_as_its_own_user_over_tls(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["prod"]
    assert sorted(o["metadata"]["name"] for o in objects if kind_of(o) == "KafkaUser") == sorted(USERS)
    config = find_prefixed(objects, "ConfigMap", "pipeline-config")["data"]
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and config["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    for service in SERVICES:
        env = {variable["name"]: variable for variable in container(objects, service)["env"]}
        assert env["KAFKA_SASL_JAAS_CONFIG"]["valueFrom"]["secretKeyRef"] == {
            "name": service,
            "key": "sasl.jaas.config",
        }
        volumes = find(objects, "Deployment", service)["spec"]["template"]["spec"]["volumes"]
        assert {"name": "kafka-cluster-ca", "secret": {"secretName": "recall-kafka-cluster-ca-cert",
                "items": [{"key": "ca.crt", "path": "ca.crt"}]}} in volumes  # fmt: skip


def _problems(objects: list[Obj]) -> list[str]:
    return [str(p) for p in find_problems(objects, OVERLAY_EXPECTATIONS["prod"])]


def _break(objects: list[Obj], change: Callable[[list[Obj]], None]) -> list[str]:
    change(objects)
    return _problems(objects)


def test_an_acl_the_registry_does_not_grant_is_caught(fresh: Callable[[str], list[Obj]]) -> None:
    def widen(objects: list[Obj]) -> None:
        user = find(objects, "KafkaUser", "ingest")
        user["spec"]["authorization"]["acls"].append(
            {"resource": {"type": "topic", "name": "transcripts.ready", "patternType": "literal"},
             "operations": ["Write"], "host": "*"}
        )  # fmt: skip

    problems = _break(fresh("prod"), widen)
    assert any("KafkaUser recall-pipeline/ingest: ACLs differ from the topic registry's" in p for p in problems)
    assert any("extra ['topic transcripts.ready Write']" in p for p in problems), problems


def test_a_wildcard_acl_is_caught(fresh: Callable[[str], list[Obj]]) -> None:
    def wildcard(objects: list[Obj]) -> None:
        acl = find(objects, "KafkaUser", "fetcher")["spec"]["authorization"]["acls"][0]
        acl["resource"] = {"type": "topic", "name": "*", "patternType": "literal"}

    problems = _break(fresh("prod"), wildcard)
    assert any("grants topic '*'" in p for p in problems), problems


def test_a_plaintext_client_in_prod_is_caught(fresh: Callable[[str], list[Obj]]) -> None:
    def plaintext(objects: list[Obj]) -> None:
        find_prefixed(objects, "ConfigMap", "pipeline-config")["data"]["KAFKA_SECURITY_PROTOCOL"] = "PLAINTEXT"

    problems = _break(fresh("prod"), plaintext)
    for service in SERVICES:
        assert (
            str(Problem(f"Deployment recall-pipeline/{service}",
                        f"container '{service}' connects to Kafka with KAFKA_SECURITY_PROTOCOL=PLAINTEXT: use "
                        "SASL_SSL or SSL"))
            in problems
        )  # fmt: skip


def test_another_services_credentials_are_caught(fresh: Callable[[str], list[Obj]]) -> None:
    def borrow(objects: list[Obj]) -> None:
        env = container(objects, "ingest")["env"]
        jaas = next(variable for variable in env if variable["name"] == "KAFKA_SASL_JAAS_CONFIG")
        jaas["valueFrom"]["secretKeyRef"]["name"] = "fetcher"

    problems = _break(fresh("prod"), borrow)
    assert any("ingest' KAFKA_SASL_JAAS_CONFIG must be key sasl.jaas.config of its own" in p for p in problems)


def test_a_ca_file_outside_the_cluster_ca_secret_is_caught(fresh: Callable[[str], list[Obj]]) -> None:
    def unmount(objects: list[Obj]) -> None:
        container(objects, "transcriber")["volumeMounts"] = [
            m for m in container(objects, "transcriber")["volumeMounts"] if m["name"] != "kafka-cluster-ca"
        ]

    problems = _break(fresh("prod"), unmount)
    assert any("transcriber' KAFKA_SSL_CAFILE=/etc/kafka/cluster-ca/ca.crt is not ca.crt of a mounted" in p
               for p in problems), problems  # fmt: skip
