"""batch/v1: jobs and cronjobs, with the cron schedule syntax of robfig/cron's standard parser."""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import pod
from pyk8s.api.validation._selector import (
    immutable_selector,
    invalid_selector,
    is_empty,
    matches,
    validate_label_selector,
)

Obj = dict[str, Any]

_CRONJOB_NAME_MAX = 52  # the controller appends an 11-character suffix to name its jobs
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# (min, max, names) for minute, hour, day of month, month, day of week.
_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
            )
        },
    ),
    (0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
_DURATION = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")


def _number(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(
            f"failed to parse int from {text}: strconv.Atoi: parsing {text!r}: invalid syntax".replace(
                "'", '"'
            )
        )
    return int(text)


def _check_field(expr: str, lo: int, hi: int, names: dict[str, int]) -> None:
    for part in expr.split(","):
        range_and_step = part.split("/")
        if len(range_and_step) > 2:
            raise ValueError(f"too many slashes: {part}")
        low_high = range_and_step[0].split("-")
        if low_high[0] in ("*", "?"):
            start, end = lo, hi
        else:
            start = _number(low_high[0], names)
            end = _number(low_high[1], names) if len(low_high) == 2 else start
        if len(low_high) > 2:
            raise ValueError(f"too many hyphens: {part}")
        if len(range_and_step) == 2:
            step = _number(range_and_step[1], {})
            if step == 0:
                raise ValueError(f"step of range should be a positive number: {part}")
        if start < lo:
            raise ValueError(f"beginning of range ({start}) below minimum ({lo}): {part}")
        if end > hi:
            raise ValueError(f"end of range ({end}) above maximum ({hi}): {part}")
        if start > end:
            raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {part}")


def schedule_error(schedule: str) -> str:
    """robfig/cron ParseStandard's complaint about `schedule`, or "" when it parses."""
    spec = schedule.strip()
    if spec.startswith(("TZ=", "CRON_TZ=")):
        spec = spec.split(None, 1)[1] if " " in spec else ""
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return ""
        if spec.startswith("@every "):
            return (
                ""
                if _DURATION.fullmatch(spec[len("@every ") :].strip())
                else (f'failed to parse duration {spec}: time: invalid duration "{spec[len("@every ") :]}"')
            )
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        shown = "[" + " ".join(fields) + "]"
        return f"expected exactly 5 fields, found {len(fields)}: {shown}"
    try:
        for expr, (lo, hi, names) in zip(fields, _FIELDS, strict=True):
            _check_field(expr, lo, hi, names)
    except ValueError as err:
        return str(err)
    return ""


def validate_job_spec(spec: Obj, path: str, *, require_selector: bool) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        causes += f.non_negative(f"{path}.{key}", spec.get(key))
    causes += f.non_negative(f"{path}.activeDeadlineSeconds", spec.get("activeDeadlineSeconds"))
    mode = spec.get("completionMode")
    causes += f.one_of(f"{path}.completionMode", mode, ("NonIndexed", "Indexed"), required_when_empty=False)
    if mode == "Indexed" and spec.get("completions") is None:
        causes.append(f.required(f"{path}.completions", "when completion mode is Indexed"))
    causes += f.one_of(
        f"{path}.podReplacementPolicy",
        spec.get("podReplacementPolicy"),
        ("TerminatingOrFailed", "Failed"),
        required_when_empty=False,
    )
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        if require_selector:
            causes.append(f.required(f"{path}.selector", ""))
    else:
        selector_causes = validate_label_selector(selector, f"{path}.selector")
        causes += selector_causes
        labels = f.as_dict(f.as_dict(f.as_dict(template).get("metadata")).get("labels"))
        usable = not selector_causes and not is_empty(selector) and template is not None
        if usable and not matches(selector, labels):
            causes.append(
                f.invalid(
                    f"{path}.template.metadata.labels", labels, "`selector` does not match template `labels`"
                )
            )
    if template is None:
        causes.append(f.required(f"{path}.template", ""))
        return causes
    causes += pod.validate_pod_template_spec(template, f"{path}.template")
    restart = f.as_dict(f.as_dict(template).get("spec")).get("restartPolicy")
    if restart not in ("OnFailure", "Never") and restart in pod.RESTART_POLICIES:
        causes.append(f.not_supported(f"{path}.template.spec.restartPolicy", restart, ["OnFailure", "Never"]))
    return causes


def _validate_generated_selector(obj: Obj, spec: Obj) -> list[Cause]:
    """ValidateGeneratedSelector: unless `manualSelector`, the selector must be the generated one,
    selecting this job's uid and name."""
    selector = spec.get("selector")
    if spec.get("manualSelector") is True or selector is None:
        return []
    meta = f.as_dict(obj.get("metadata"))
    uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
    if not uid:
        return [f.required("metadata.uid", "")]
    causes: list[Cause] = []
    labels = f.as_dict(f.as_dict(f.as_dict(spec.get("template")).get("metadata")).get("labels"))
    for key, expected in (("controller-uid", uid), ("job-name", name)):
        path = f"spec.template.metadata.labels[{key}]"
        if key not in labels:
            causes.append(f.required(path, expected))
        elif labels[key] != expected:
            causes.append(f.invalid(path, labels, f"must be '{expected}'"))
    if not validate_label_selector(selector, "spec.selector") and not matches(
        selector, {"controller-uid": uid, "job-name": name, "batch.kubernetes.io/controller-uid": uid,
                   "batch.kubernetes.io/job-name": name}
    ):  # fmt: skip
        causes.append(invalid_selector("spec.selector", selector, "`selector` not auto-generated"))
    return causes


def validate_job(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateJob, and on update validateJobSpecUpdate's immutable fields."""
    spec = f.as_dict(obj.get("spec"))
    causes = validate_job_spec(spec, "spec", require_selector=True)
    causes += _validate_generated_selector(obj, spec)
    if old is not None:
        causes += _validate_job_update(spec, old)
    return causes


def _validate_job_update(spec: Obj, old: Obj) -> list[Cause]:
    old_spec = f.as_dict(old.get("spec"))
    causes: list[Cause] = []
    completions = spec.get("completions")
    if completions != old_spec.get("completions"):
        # Indexed jobs are elastic: completions may change together with parallelism.
        if spec.get("completionMode") != "Indexed":
            causes.append(f.invalid("spec.completions", completions, f.IMMUTABLE))
        elif completions is not None and completions != spec.get("parallelism"):
            causes.append(f.invalid("spec.completions", completions,
                                    "can only be modified in tandem with spec.parallelism"))  # fmt: skip
    causes += immutable_selector("spec.selector", spec.get("selector"), old_spec.get("selector"))
    template, old_template = f.as_dict(spec.get("template")), f.as_dict(old_spec.get("template"))
    if _scheduling_directives_mutable(old):
        template, old_template = (
            _without_scheduling_directives(template),
            _without_scheduling_directives(old_template),
        )
    if template != old_template:
        causes.append(f.invalid("spec.template", spec.get("template"), f.IMMUTABLE))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        causes += f.immutable(f"spec.{key}", spec.get(key), old_spec.get(key))
    return causes


def _scheduling_directives_mutable(old: Obj) -> bool:
    """A suspended job that never started may change where its pods will run."""
    return f.as_dict(old.get("spec")).get("suspend") is True and not f.as_dict(old.get("status")).get(
        "startTime"
    )


def _without_scheduling_directives(template: Obj) -> Obj:
    """The template minus what validatePodTemplateUpdate lets a suspended job change: node affinity, node
    selector, tolerations, scheduling gates, labels and annotations."""
    spec = {k: v for k, v in f.as_dict(template.get("spec")).items()
            if k not in ("nodeSelector", "tolerations", "schedulingGates")}  # fmt: skip
    affinity = {k: v for k, v in f.as_dict(spec.pop("affinity", None)).items() if k != "nodeAffinity"}
    if affinity:
        spec["affinity"] = affinity
    meta = {
        k: v for k, v in f.as_dict(template.get("metadata")).items() if k not in ("labels", "annotations")
    }
    return {**template, "metadata": meta, "spec": spec}


_TZ_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


def _time_zone_errors(tz: str) -> list[str]:
    """validateTimeZone: an IANA zone name this machine's tz database knows."""
    if not tz:
        return ["timeZone must be nil or non-empty string"]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.fullmatch(part):
            return [f"unknown time zone {tz}"]
    if tz.lower() == "local":
        return ["timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"]
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [f"unknown time zone {tz}"]
    return []


def validate_cron_job(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateCronJobCreate/Update: the spec, then the 52-character name limit."""
    spec = f.as_dict(obj.get("spec"))
    old_spec = f.as_dict((old or {}).get("spec"))
    causes: list[Cause] = []
    schedule = str(spec.get("schedule") or "")
    if not schedule:
        causes.append(f.required("spec.schedule", ""))
    else:
        err = schedule_error(schedule)
        if err:
            causes.append(f.invalid("spec.schedule", schedule, err))
        # A stored schedule that already had TZ stays allowed on update, as Kubernetes.
        allow_tz = "TZ" in str(old_spec.get("schedule") or "")
        if "TZ" in schedule and not allow_tz:
            detail = "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            causes.append(f.invalid("spec.schedule", schedule, detail))
        elif "TZ" in schedule and spec.get("timeZone") is not None:
            detail = "cannot use both timeZone field and TZ or CRON_TZ in schedule"
            causes.append(f.invalid("spec.schedule", schedule, detail))
    causes += f.non_negative("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds"))
    tz = spec.get("timeZone")
    if tz is not None and (old is None or tz != old_spec.get("timeZone")):
        causes += [f.invalid("spec.timeZone", tz, m) for m in _time_zone_errors(str(tz))]
    causes += f.one_of(
        "spec.concurrencyPolicy", spec.get("concurrencyPolicy"), ("Allow", "Forbid", "Replace")
    )
    job_template = spec.get("jobTemplate")
    if job_template is None:
        causes.append(f.required("spec.jobTemplate", ""))
    else:
        jt = f.as_dict(job_template)
        labels = f.as_dict(jt.get("metadata")).get("labels")
        causes += f.validate_labels(labels, "spec.jobTemplate.metadata.labels")
        causes += validate_job_spec(
            f.as_dict(jt.get("spec")), "spec.jobTemplate.spec", require_selector=False
        )
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes += f.non_negative(f"spec.{key}", spec.get(key))
    name = str(f.as_dict(obj.get("metadata")).get("name") or "")
    if old is None and len(name) > _CRONJOB_NAME_MAX:
        causes.append(f.invalid("metadata.name", name, f.max_len_error(_CRONJOB_NAME_MAX)))
    return causes
