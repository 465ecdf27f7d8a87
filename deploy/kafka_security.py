"""Offline checks of the Kafka security of rendered manifests (called by ``deploy.validate.find_problems``).

* **KafkaUsers**: each belongs to a cluster, authenticates (SCRAM-SHA-512 or TLS), uses ``simple`` authorization,
  and a service's user carries exactly the ACLs ``pipeline_common.acls`` derives from the topic registry: no
  wildcard, no prefix, nothing the registry does not grant;
* **clients** (overlays that promise ``kafka_tls``): every service, and every CronJob with a Kafka identity (the
  reconciler), connects with SSL or SASL_SSL and
  ``KAFKA_CREATE_TOPICS=false``; a SASL client takes KAFKA_SASL_JAAS_CONFIG from the Secret of its own KafkaUser
  (key ``sasl.jaas.config``; or KAFKA_SASL_USERNAME naming that user and KAFKA_SASL_PASSWORD from its ``password``);
  KAFKA_SSL_CAFILE lies in a volume mounted from
  the cluster CA Secret ``<cluster>-cluster-ca-cert`` (key ``ca.crt``); a client certificate likewise from the user's
  Secret (``user.crt``/``user.key``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

# Public names of deploy.validate only (they stay importable from it however it is laid out).
from deploy.validate import (
    SERVICES,
    STRIMZI_CLUSTER_LABEL,
    Expectations,
    Index,
    Obj,
    Problem,
    containers_of,
    cronjob_pod,
    labels_of,
    name_of,
    namespace_of,
    pod_spec,
    ref,
    workload_app,
)
from pipeline_common.acls import USERS, grouped, service_acls
from pipeline_common.topics import TopicSpec

#: The label naming the service a KafkaUser belongs to (deploy/users.py): a name prefix never changes it.
SERVICE_LABEL: Final = "recall-pipeline.io/service"
AUTHENTICATION_TYPES: Final = frozenset({"scram-sha-512", "tls", "tls-external"})
TLS_PROTOCOLS: Final = frozenset({"SSL", "SASL_SSL"})


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def check_kafka_security(
    index: Index, registry: Iterable[TopicSpec], expectations: Expectations | None
) -> list[Problem]:
    """Every Kafka security problem: the KafkaUsers always, the clients where the overlay promises ``kafka_tls``."""
    problems = check_kafka_users(index, registry)
    if expectations is not None and getattr(expectations, "kafka_tls", False):
        problems += check_kafka_clients(index)
    return problems


def _acl_set(acls: Any) -> set[tuple[str, str, str, tuple[str, ...]]]:
    found = set()
    for acl in _list(acls):
        resource = _dict(_dict(acl).get("resource"))
        operations = _list(_dict(acl).get("operations")) or [_dict(acl).get("operation")]
        found.add(
            (
                str(resource.get("type")),
                str(resource.get("name")),
                str(resource.get("patternType", "literal")),
                tuple(sorted(str(op) for op in operations)),
            )
        )
    return found


def check_kafka_users(index: Index, registry: Iterable[TopicSpec]) -> list[Problem]:
    problems: list[Problem] = []
    specs = tuple(registry)
    for user in index.kind("KafkaUser"):
        where, spec = ref(user), _dict(user.get("spec"))
        if not labels_of(user).get(STRIMZI_CLUSTER_LABEL):
            problems.append(Problem(where, f"has no {STRIMZI_CLUSTER_LABEL} label: no User Operator would manage it"))
        authentication = _dict(spec.get("authentication")).get("type")
        if authentication not in AUTHENTICATION_TYPES:
            problems.append(Problem(where, f"spec.authentication.type must be one of {sorted(AUTHENTICATION_TYPES)}"))
        authorization = _dict(spec.get("authorization"))
        if authorization.get("type") != "simple":
            problems.append(Problem(where, "spec.authorization.type must be simple (ACLs)"))
            continue
        acls = _acl_set(authorization.get("acls"))
        for kind, name, pattern, _ in sorted(acls):
            if name == "*" or pattern != "literal":
                problems.append(Problem(where, f"grants {kind} {name!r} ({pattern}): only literal names are allowed"))
        service = labels_of(user).get(SERVICE_LABEL, name_of(user))
        if service in USERS:
            wanted = set(grouped(service_acls(service, specs)))
            if acls != wanted:
                extra = sorted(f"{k} {n} {','.join(o)}" for k, n, _, o in acls - wanted)
                missing = sorted(f"{k} {n} {','.join(o)}" for k, n, _, o in wanted - acls)
                problems.append(
                    Problem(
                        where,
                        f"ACLs differ from the topic registry's (run `make kube-users`): extra {extra or 'none'}, "
                        f"missing {missing or 'none'}",
                    )
                )
    return problems


def _environment(index: Index, workload: Obj, container: Obj) -> dict[str, Any]:
    """The container's variables: ConfigMap entries (envFrom), then ``env`` (literal strings or valueFrom dicts)."""
    variables: dict[str, Any] = {}
    for source in _list(container.get("envFrom")):
        name = _dict(_dict(source).get("configMapRef")).get("name")
        config_map = index.find("ConfigMap", namespace_of(workload), str(name)) if name else None
        if config_map is not None:
            variables.update(_dict(config_map.get("data")))
    for variable in _list(container.get("env")):
        variable = _dict(variable)
        variables[str(variable.get("name"))] = variable.get("value", variable.get("valueFrom"))
    return variables


def _pod_spec(workload: Obj) -> dict[str, Any]:
    """The pod spec of a Deployment-like workload or of a CronJob (spec.jobTemplate.spec.template.spec)."""
    if workload.get("kind") == "CronJob":
        return _dict(cronjob_pod(workload).get("spec"))
    return pod_spec(workload)


def _secret_of_path(workload: Obj, container: Obj, path: str) -> tuple[str, str] | None:
    """(Secret name, key) that the file ``path`` comes from, when it lies in a mounted Secret volume."""
    volumes = {str(_dict(v).get("name")): _dict(v) for v in _list(_pod_spec(workload).get("volumes"))}
    for mount in _list(container.get("volumeMounts")):
        mount = _dict(mount)
        directory = str(mount.get("mountPath", "")).rstrip("/")
        if not path.startswith(directory + "/"):
            continue
        secret = _dict(volumes.get(str(mount.get("name")), {}).get("secret"))
        if not secret:
            return None
        relative = path[len(directory) + 1 :]
        items = {str(_dict(i).get("path")): str(_dict(i).get("key")) for i in _list(secret.get("items"))}
        return str(secret.get("secretName")), items.get(relative, relative) if items else relative
    return None


def _client_problems(index: Index, workload: Obj, container: Obj) -> list[str]:
    env = _environment(index, workload, container)
    found: list[str] = []
    protocol = env.get("KAFKA_SECURITY_PROTOCOL")
    if protocol not in TLS_PROTOCOLS:
        return [f"connects to Kafka with KAFKA_SECURITY_PROTOCOL={protocol or 'PLAINTEXT'}: use SASL_SSL or SSL"]
    if str(env.get("KAFKA_CREATE_TOPICS", "true")).lower() != "false":
        found.append("may create topics: set KAFKA_CREATE_TOPICS=false (the Topic Operator owns them)")
    own = _kafka_identity(workload)
    users = {
        name_of(u): u
        for u in index.kind("KafkaUser", namespace_of(workload))
        if labels_of(u).get(SERVICE_LABEL, name_of(u)) == own
    }
    clusters = {labels_of(u).get(STRIMZI_CLUSTER_LABEL) for u in users.values()}
    cafile = env.get("KAFKA_SSL_CAFILE")
    if not isinstance(cafile, str):
        found.append("has no KAFKA_SSL_CAFILE: mount the cluster CA Secret and point at its ca.crt")
    else:
        source = _secret_of_path(workload, container, cafile)
        cluster_cas = {f"{cluster}-cluster-ca-cert" for cluster in clusters if cluster}
        if source is None or source[1] != "ca.crt" or (cluster_cas and source[0] not in cluster_cas):
            found.append(f"KAFKA_SSL_CAFILE={cafile} is not ca.crt of a mounted <cluster>-cluster-ca-cert Secret")
    if protocol == "SASL_SSL":
        if env.get("KAFKA_SASL_MECHANISM") != "SCRAM-SHA-512":
            found.append("KAFKA_SASL_MECHANISM must be SCRAM-SHA-512 (Strimzi scram-sha-512 users)")
        jaas = _dict(_dict(env.get("KAFKA_SASL_JAAS_CONFIG")).get("secretKeyRef"))
        username = env.get("KAFKA_SASL_USERNAME")
        password = _dict(_dict(env.get("KAFKA_SASL_PASSWORD")).get("secretKeyRef"))
        if jaas:
            if jaas.get("name") not in users or jaas.get("key") != "sasl.jaas.config":
                found.append(
                    f"KAFKA_SASL_JAAS_CONFIG must be key sasl.jaas.config of its own KafkaUser's Secret "
                    f"({', '.join(sorted(users)) or f'no KafkaUser for {own} in its namespace'})"
                )
        elif not isinstance(username, str) or username not in users:
            found.append(f"KAFKA_SASL_USERNAME={username!r} names no KafkaUser of {own} in its namespace")
        elif (password.get("name"), password.get("key")) != (username, "password"):
            found.append(f"KAFKA_SASL_PASSWORD must come from the KafkaUser Secret {username!r}, key `password`")
    else:
        for variable, key in (("KAFKA_SSL_CERTFILE", "user.crt"), ("KAFKA_SSL_KEYFILE", "user.key")):
            path = env.get(variable)
            source = _secret_of_path(workload, container, path) if isinstance(path, str) else None
            if source is None or source[0] not in users or source[1] != key:
                found.append(f"{variable} must be {key} of a mounted KafkaUser Secret")
    return found


def _kafka_identity(workload: Obj) -> str:
    """The Kafka user a workload runs as: a Deployment's app name; a CronJob's from its pod template's name label."""
    if workload.get("kind") == "CronJob":
        return str(labels_of(cronjob_pod(workload)).get("app.kubernetes.io/name", name_of(workload)))
    return workload_app(workload)


def _kafka_cronjobs(index: Index) -> list[tuple[Obj, Obj]]:
    """(CronJob, container) of every CronJob that is a Kafka client with an identity of its own (the reconciler)."""
    found = []
    for cronjob in index.kind("CronJob"):
        if _kafka_identity(cronjob) not in USERS:
            continue
        for container in _list(_dict(cronjob_pod(cronjob).get("spec")).get("containers")):
            found.append((cronjob, _dict(container)))
    return found


def check_kafka_clients(index: Index) -> list[Problem]:
    """Every service's, and every Kafka CronJob's, client connection (for overlays that promise a secured cluster)."""
    problems: list[Problem] = []
    clients: list[tuple[Obj, Obj]] = [
        (workload, container)
        for workload in index.workloads()
        if workload_app(workload) in SERVICES
        for container, init in containers_of(workload)
        if not init
    ]
    for workload, container in clients + _kafka_cronjobs(index):
        for message in _client_problems(index, workload, container):
            problems.append(Problem(ref(workload), f"container '{container.get('name', '?')}' {message}"))
    return problems
