"""batch/v1 defaults: SetDefaults_Job and SetDefaults_CronJob, and the job selector Kubernetes generates
from the job's uid on create."""

from __future__ import annotations

from pyk8s.api.defaults import pod as pod_defaults
from pyk8s.api.defaults._util import Obj, as_dict, child, dicts, set_default

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
_LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
_LEGACY_JOB_NAME_LABEL = "job-name"
_MAX_INT32 = 2147483647


def job_spec(spec: Obj) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    set_default(spec, "parallelism", 1)
    set_default(spec, "backoffLimit", _MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6)
    set_default(spec, "completionMode", "NonIndexed")
    set_default(spec, "suspend", False)
    policy = spec.get("podFailurePolicy")
    set_default(spec, "podReplacementPolicy", "Failed" if policy is not None else "TerminatingOrFailed")
    if isinstance(policy, dict):
        for rule in dicts(policy.get("rules")):
            for condition in dicts(rule.get("onPodConditions")):
                set_default(condition, "status", "True")
    pod_defaults.pod_template(spec.get("template"))


def generate_selector(obj: Obj) -> None:
    """Unless `manualSelector` is true, select the job's pods by its uid and label its template with
    the uid and the job name (the job strategy's generateSelector). Needs metadata.uid; idempotent."""
    meta = as_dict(obj.get("metadata"))
    uid, name = meta.get("uid"), meta.get("name")
    spec = child(obj, "spec")
    if not uid or spec.get("manualSelector") is True:
        return
    template = child(spec, "template")
    labels = child(child(template, "metadata"), "labels")
    for key in (_LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (_LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    child(child(spec, "selector"), "matchLabels").setdefault(CONTROLLER_UID_LABEL, uid)


def job(obj: Obj) -> None:
    spec = child(obj, "spec")
    generate_selector(obj)
    job_spec(spec)
    template_labels = as_dict(as_dict(spec.get("template")).get("metadata")).get("labels")
    meta = child(obj, "metadata")
    if template_labels and not meta.get("labels"):
        meta["labels"] = dict(template_labels)


def cron_job(obj: Obj) -> None:
    spec = child(obj, "spec")
    set_default(spec, "concurrencyPolicy", "Allow")
    set_default(spec, "suspend", False)
    set_default(spec, "successfulJobsHistoryLimit", 3)
    set_default(spec, "failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        pod_defaults.pod_template(child(job_template, "spec").get("template"))
