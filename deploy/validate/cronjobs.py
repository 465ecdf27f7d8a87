"""CronJobs (the reconciler): the containers' rules as for a job, its own ServiceAccount, a NetworkPolicy both ways,
no overlapping runs and a deadline."""

from __future__ import annotations

from deploy.validate.model import Obj, Problem
from deploy.validate.objects import Index, _dict, _list, labels_of, namespace_of, ref, selector_matches
from deploy.validate.workloads import check_container


def cronjob_pod(cronjob: Obj) -> Obj:
    """The pod template of a CronJob (spec.jobTemplate.spec.template)."""
    return _dict(_dict(_dict(_dict(cronjob.get("spec")).get("jobTemplate")).get("spec")).get("template"))


def check_cronjob(cronjob: Obj, index: Index) -> list[str]:
    """Problems of one CronJob: the containers' rules (as for an init container: a job has no probes), its own
    ServiceAccount without a token, a NetworkPolicy restricting both directions, no overlapping runs, and a
    deadline so a stuck run cannot hold the schedule forever."""
    found: list[str] = []
    spec, template = _dict(cronjob.get("spec")), cronjob_pod(cronjob)
    job = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    pod = _dict(template.get("spec"))
    if spec.get("concurrencyPolicy") != "Forbid":
        found.append("may run twice at once: set concurrencyPolicy: Forbid")
    if not isinstance(job.get("activeDeadlineSeconds"), int):
        found.append("has no jobTemplate.spec.activeDeadlineSeconds: a stuck run would block every later one")
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        found.append("pod restartPolicy must be Never or OnFailure")
    security = _dict(pod.get("securityContext"))
    for container in _list(pod.get("containers")):
        found += check_container(cronjob, _dict(container), init=True, pod_security=security, ports={})
    account_name = pod.get("serviceAccountName")
    if not account_name or account_name == "default":
        found.append("runs under the namespace's default ServiceAccount: give it its own")
    elif index.find("ServiceAccount", namespace_of(cronjob), str(account_name)) is None:
        found.append(f"uses ServiceAccount '{account_name}', which is not in the output")
    if pod.get("automountServiceAccountToken") is not False:
        found.append("mounts a ServiceAccount token: set automountServiceAccountToken: false")
    labels, types = labels_of(template), set()
    for policy in index.kind("NetworkPolicy", namespace_of(cronjob)):
        policy_spec = _dict(policy.get("spec"))
        if selector_matches(policy_spec.get("podSelector"), labels):
            types.update(str(t) for t in _list(policy_spec.get("policyTypes")) or ["Ingress"])
    missing = {"Ingress", "Egress"} - types
    if missing:
        found.append(f"no NetworkPolicy restricts its {' and '.join(sorted(missing)).lower()} traffic")
    return found


def check_cronjobs(index: Index) -> list[Problem]:
    return [
        Problem(ref(cronjob), message) for cronjob in index.kind("CronJob") for message in check_cronjob(cronjob, index)
    ]
