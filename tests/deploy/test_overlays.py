"""Both overlays render offline and pass every rule; each delivers what its environment promises."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import certifi
import pytest

from deploy import kustomize
from deploy.topics import resource_name
from deploy.validate import (
    KUBERNETES_VERSIONS,
    OVERLAY_EXPECTATIONS,
    Obj,
    Problem,
    find_problems,
    kind_of,
    main,
    name_of,
    namespace_of,
    validate_manifests,
)
from pipeline_common.settings import KafkaSettings, LoggingSettings, RecallApiSettings, TranscriptStoreSettings
from pipeline_common.topics import REGISTRY, by_name
from tests.deploy.helpers import container, environment, find, find_prefixed

pytestmark = pytest.mark.unit

SERVICES = ("ingest", "transcriber", "fetcher")


def test_the_overlays_are_dev_and_prod() -> None:
    assert kustomize.overlays() == ["dev", "prod"]
    assert set(OVERLAY_EXPECTATIONS) == {"dev", "prod"}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlay_passes_every_rule(rendered: dict[str, list[Obj]], overlay: str) -> None:
    validate_manifests(rendered[overlay], OVERLAY_EXPECTATIONS[overlay])


def test_schemas_cover_the_oldest_supported_and_the_newest_known_kubernetes() -> None:
    assert KUBERNETES_VERSIONS[0] == "1.30"
    assert tuple(map(int, KUBERNETES_VERSIONS[-1].split("."))) >= (1, 33)


def test_cli_renders_and_validates_every_overlay(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "overlay dev:" in out
    assert "overlay prod:" in out


def test_dev_runs_the_simulator_and_its_own_single_node_kraft_kafka(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["dev"]
    assert {namespace_of(obj) for obj in objects if kind_of(obj) != "Namespace"} == {"recall-pipeline-dev"}
    kafka = find(objects, "Kafka", "recall-kafka")
    pool = find(objects, "KafkaNodePool", "dual-role")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "recall-kafka"
    assert pool["spec"]["replicas"] == 1
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert "zookeeper" not in kafka["spec"]
    assert kafka["spec"]["entityOperator"]["topicOperator"] is not None
    config, _ = environment(objects, "transcriber")
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "recall-kafka-kafka-bootstrap:9092"
    # The consumers call the simulator; the simulator posts its webhooks to ingest.
    assert config["RECALL_API_BASE_URL"] == "http://recall-sim:8081"
    find(objects, "Service", "recall-sim")
    sim_config, sim_secrets = environment(objects, "recall-sim")
    assert sim_config["RECALL_SIM_WEBHOOK_URL"] == "http://ingest:8080/webhooks/recall"
    assert sim_config["RECALL_SIM_HOST"] == "0.0.0.0"
    _, ingest_secrets = environment(objects, "ingest")
    assert sim_secrets["RECALL_SIM_WEBHOOK_SECRET"] == ingest_secrets["RECALL_WEBHOOK_SECRET"]
    for topic in (obj for obj in objects if kind_of(obj) == "KafkaTopic"):
        assert topic["spec"]["replicas"] == 1


def test_dev_network_policies_let_the_simulator_and_kafka_in_the_namespace_through(
    rendered: dict[str, list[Obj]],
) -> None:
    objects = rendered["dev"]
    for service in SERVICES:
        kafka_rule = find(objects, "NetworkPolicy", service)["spec"]["egress"][0]
        assert kafka_rule["to"] == [
            {"podSelector": {"matchLabels": {"strimzi.io/cluster": "recall-kafka", "strimzi.io/kind": "Kafka"}}}
        ]
    for consumer in ("transcriber", "fetcher"):
        egress = find(objects, "NetworkPolicy", consumer)["spec"]["egress"]
        assert any(
            rule["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "recall-sim"}}}]
            for rule in egress
        )
    ingress = find(objects, "NetworkPolicy", "ingest")["spec"]["ingress"]
    assert any(
        rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "recall-sim"}}}] for rule in ingress
    )
    assert not [obj for obj in objects if kind_of(obj) == "Ingress"]


def test_prod_has_no_simulator_and_replicated_topics_in_the_kafka_namespace(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["prod"]
    assert not [obj for obj in objects if "recall-sim" in name_of(obj)]
    topics = [obj for obj in objects if kind_of(obj) == "KafkaTopic"]
    assert len(topics) == len(REGISTRY)
    for topic in topics:
        assert namespace_of(topic) == "kafka"
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == "2"
    others = {namespace_of(obj) for obj in objects if kind_of(obj) not in ("KafkaTopic", "Namespace")}
    assert others == {"recall-pipeline"}
    config, _ = environment(objects, "fetcher")
    assert config["TRANSCRIPT_STORE_URL"].startswith("s3://")
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "recall-kafka-kafka-bootstrap.kafka.svc:9093"  # the TLS listener
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"


def test_prod_scales_between_two_and_the_partition_count(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["prod"]
    hpa = find(objects, "HorizontalPodAutoscaler", "ingest")
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    for consumer in ("transcriber", "fetcher"):
        scaled = find(objects, "ScaledObject", consumer)
        assert scaled["spec"]["minReplicaCount"] >= 2
        watched = [trigger["metadata"]["topic"] for trigger in scaled["spec"]["triggers"]]
        assert scaled["spec"]["maxReplicaCount"] == max(by_name(topic).partitions for topic in watched)
        assert all(consumer in by_name(topic).consumed_by for topic in watched)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_lag_scalers_read_the_services_kafka_address(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    bootstrap = find_prefixed(objects, "ConfigMap", "pipeline-config")["data"]["KAFKA_BOOTSTRAP_SERVERS"]
    for scaled in (obj for obj in objects if kind_of(obj) == "ScaledObject"):
        assert {t["metadata"]["bootstrapServers"] for t in scaled["spec"]["triggers"]} == {bootstrap}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_secrets_are_referenced_never_shipped(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    assert not [obj for obj in objects if kind_of(obj) == "Secret"]

    # prod: each service also reads its own KafkaUser's Secret, which the Strimzi User Operator creates.
    def kafka(service: str) -> dict[str, tuple[str, str]]:
        return {"KAFKA_SASL_JAAS_CONFIG": (service, "sasl.jaas.config")} if overlay == "prod" else {}

    _, ingest = environment(objects, "ingest")
    assert ingest == {"RECALL_WEBHOOK_SECRET": ("recall-credentials", "RECALL_WEBHOOK_SECRET"), **kafka("ingest")}
    for consumer in ("transcriber", "fetcher"):
        _, secrets = environment(objects, consumer)
        assert secrets == {"RECALL_API_KEY": ("recall-credentials", "RECALL_API_KEY"), **kafka(consumer)}


def test_readme_names_every_secret_key_the_manifests_reference(rendered: dict[str, list[Obj]]) -> None:
    readme = (kustomize.DEPLOY_DIR / "README.md").read_text(encoding="utf-8")
    for overlay, objects in rendered.items():
        for obj in objects:
            if kind_of(obj) != "Deployment":
                continue
            _, secrets = environment(objects, name_of(obj))
            for secret, key in secrets.values():
                assert secret in readme, f"{overlay}: README does not mention Secret {secret}"
                assert key in readme, f"{overlay}: README does not mention key {key} of Secret {secret}"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_services_settings_accept_the_rendered_configuration(
    rendered: dict[str, list[Obj]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shared settings pieces of libs/common parse what the ConfigMaps say (docs/architecture.md,
    # "Configuration"), secrets stubbed.
    for service in SERVICES:
        config, secrets = environment(rendered[overlay], service)
        for variable in list(os.environ):
            if variable.startswith(("KAFKA_", "RECALL_", "LOG_", "TRANSCRI")):
                monkeypatch.delenv(variable)
        for variable, value in config.items():
            monkeypatch.setenv(variable, value)
        stub_secrets_and_files(monkeypatch, config, secrets)
        kafka = KafkaSettings()
        assert kafka.kafka_create_topics is False, "topics belong to the Strimzi Topic Operator in Kubernetes"
        LoggingSettings()
        if service != "ingest":
            RecallApiSettings()
        if service == "fetcher":
            TranscriptStoreSettings()
        if service == "transcriber":
            providers = json.loads(config["TRANSCRIBER_PROVIDERS"])
            assert isinstance(providers, list)
            assert providers
            assert all(isinstance(provider, dict) and len(provider) == 1 for provider in providers)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_writable_paths_are_volumes_on_a_read_only_root(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    for service, paths in {
        "ingest": {"/tmp"},
        "transcriber": {"/tmp", "/var/lib/faust"},
        "fetcher": {"/tmp", "/var/lib/faust", "/var/lib/transcripts"},
    }.items():
        spec = container(objects, service)
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        writable = {mount["mountPath"] for mount in spec["volumeMounts"] if not mount.get("readOnly")}
        assert writable == paths
    config, _ = environment(objects, "transcriber")
    assert config["APP_DATADIR"] == "/var/lib/faust"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_probes_use_the_health_endpoints(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for service in SERVICES:
        spec = container(rendered[overlay], service)
        assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ingest = container(rendered[overlay], "ingest")
    assert ingest["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for consumer in ("transcriber", "fetcher"):
        assert container(rendered[overlay], consumer)["ports"][0]["containerPort"] == 6066


def _prefixed_overlay(tmp_path: Path, renderer: list[str], overlay: str) -> list[Obj]:
    base = os.path.relpath(kustomize.OVERLAYS_DIR / overlay, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "namePrefix: team-a-\n"
        f"resources:\n  - {base}\n",
        encoding="utf-8",
    )
    return kustomize.render(tmp_path, renderer)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_a_name_prefix_renames_scale_targets_but_never_a_kafka_topic(
    tmp_path: Path, renderer: list[str], rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objects = _prefixed_overlay(tmp_path, renderer, overlay)
    deployments = {name_of(obj) for obj in objects if kind_of(obj) == "Deployment"}
    assert {f"team-a-{service}" for service in SERVICES} <= deployments
    targets = {
        obj["spec"]["scaleTargetRef"]["name"]
        for obj in objects
        if kind_of(obj) in ("ScaledObject", "HorizontalPodAutoscaler")
    }
    assert targets == {"team-a-ingest", "team-a-transcriber", "team-a-fetcher"}
    original = sorted(obj["spec"]["topicName"] for obj in rendered[overlay] if kind_of(obj) == "KafkaTopic")
    renamed = sorted(obj["spec"]["topicName"] for obj in objects if kind_of(obj) == "KafkaTopic")
    assert renamed == original


def test_the_prod_overlay_stays_valid_under_a_name_prefix(tmp_path: Path, renderer: list[str]) -> None:
    validate_manifests(_prefixed_overlay(tmp_path, renderer, "prod"), OVERLAY_EXPECTATIONS["prod"])


def test_a_name_prefix_on_dev_would_orphan_its_kafka_and_the_validator_says_so(
    tmp_path: Path, renderer: list[str]
) -> None:
    # The dev overlay's own Kafka cluster is named in labels and addresses kustomize cannot follow: documented as
    # not prefixable (deploy/README.md), and caught rather than deployed broken.
    problems = find_problems(_prefixed_overlay(tmp_path, renderer, "dev"), OVERLAY_EXPECTATIONS["dev"])
    assert (
        Problem(
            "KafkaNodePool recall-pipeline-dev/team-a-dual-role",
            "belongs to Kafka 'recall-kafka', which is not in the output",
        )
        in problems
    )
    assert {p.object for p in problems} <= {
        *(f"KafkaTopic recall-pipeline-dev/{name}" for name in _prefixed_topic_names()),
        "KafkaNodePool recall-pipeline-dev/team-a-dual-role",
        "Kafka recall-pipeline-dev/team-a-recall-kafka",
    }


def _prefixed_topic_names() -> list[str]:
    return [f"team-a-{resource_name(spec.name)}" for spec in REGISTRY]


def test_render_errors_name_the_directory(tmp_path: Path, renderer: list[str]) -> None:
    with pytest.raises(kustomize.RenderError, match=str(tmp_path)):
        kustomize.render(tmp_path, renderer)


def test_renderer_prefers_an_explicit_kustomize(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUSTOMIZE", "/opt/kustomize")
    assert kustomize.renderer() == ["/opt/kustomize", "build"]


def test_renderer_falls_back_to_the_pinned_kustomize_then_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUSTOMIZE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    cached = tmp_path / "kustomize-bin"
    monkeypatch.setattr(kustomize, "CACHED_KUSTOMIZE", cached)
    with pytest.raises(kustomize.KustomizeNotFoundError, match="make kustomize"):
        kustomize.renderer()
    cached.write_text("#!/bin/sh\n")
    cached.chmod(0o755)
    assert kustomize.renderer() == [str(cached), "build"]
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\n")
    kubectl.chmod(0o755)
    assert kustomize.renderer() == [str(kubectl), "kustomize"]


def test_the_install_script_pins_the_same_kustomize_as_the_renderer() -> None:
    script = (kustomize.ROOT / "scripts" / "install-kustomize").read_text(encoding="utf-8")
    assert f'KUSTOMIZE_VERSION="{kustomize.KUSTOMIZE_VERSION}"' in script
    assert "sigs.k8s.io/kustomize/kustomize/v5@" in script


def stub_secrets_and_files(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, str], secrets: dict[str, tuple[str, str]]
) -> None:
    """Stand-ins for what the cluster provides: Secret values, and the CA file mounted from a Secret."""
    jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";'
    for variable in secrets:
        stub = jaas if variable == "KAFKA_SASL_JAAS_CONFIG" else "stub-key"
        monkeypatch.setenv(variable, "whsec_c3R1Yg==" if "WEBHOOK" in variable else stub)
    if "KAFKA_SSL_CAFILE" in config:
        monkeypatch.setenv("KAFKA_SSL_CAFILE", certifi.where())  # any readable CA bundle stands in for ca.crt


def _load_service_settings(
    monkeypatch: pytest.MonkeyPatch, objects: list[Obj], deployment: str, module: str, class_name: str
) -> tuple[Any, dict[str, str]]:
    settings_module = pytest.importorskip(module)
    settings_class = getattr(settings_module, class_name)
    config, secrets = environment(objects, deployment)
    for variable in list(os.environ):
        if variable.startswith(("KAFKA_", "RECALL_", "LOG_", "INGEST_", "TRANSCRI")):
            monkeypatch.delenv(variable)
    for variable, value in config.items():
        monkeypatch.setenv(variable, value)
    stub_secrets_and_files(monkeypatch, config, secrets)
    known = {str(field.validation_alias or name).upper() for name, field in settings_class.model_fields.items()}
    own = {
        key
        for source in container(objects, deployment).get("envFrom", [])
        if "configMapRef" in source and not source["configMapRef"]["name"].startswith("pipeline-config")
        for key in find(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
    } | set(secrets)
    assert own <= known, f"{deployment}: variables its settings do not read: {sorted(own - known)}"
    return settings_class(), config


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_ingest_settings_read_the_rendered_configuration(
    rendered: dict[str, list[Obj]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = rendered[overlay]
    settings, _ = _load_service_settings(monkeypatch, objects, "ingest", "ingest.settings", "IngestSettings")
    assert settings.ingest_port == container(objects, "ingest")["ports"][0]["containerPort"]
    assert settings.ingest_host == "0.0.0.0"


def test_simulator_settings_read_the_rendered_configuration(
    rendered: dict[str, list[Obj]], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = rendered["dev"]
    settings, _ = _load_service_settings(monkeypatch, objects, "recall-sim", "recall_sim.settings", "SimSettings")
    assert settings.recall_sim_port == container(objects, "recall-sim")["ports"][0]["containerPort"]
    assert settings.recall_sim_host == "0.0.0.0"
    assert settings.webhook_url == "http://ingest:8080/webhooks/recall"
