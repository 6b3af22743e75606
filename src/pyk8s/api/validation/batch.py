"""batch/v1: jobs and cronjobs, with the cron schedule syntax of robfig/cron's standard parser."""

from __future__ import annotations

import re
from typing import Any

from pyk8s.api.errors import Cause
from pyk8s.api.validation import _field as f
from pyk8s.api.validation import pod
from pyk8s.api.validation._selector import is_empty, matches, validate_label_selector

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
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not f.is_int(deadline) or deadline <= 0):
        causes.append(f.invalid(f"{path}.activeDeadlineSeconds", deadline, "must be greater than 0"))
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


def validate_job(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = f.as_dict(obj.get("spec"))
    causes = validate_job_spec(spec, "spec", require_selector=True)
    if old is not None:
        old_spec = f.as_dict(old.get("spec"))
        causes += f.immutable("spec.selector", spec.get("selector"), old_spec.get("selector"))
        causes += f.immutable(
            "spec.completionMode", spec.get("completionMode"), old_spec.get("completionMode")
        )
        if spec.get("template") != old_spec.get("template") and not _suspended_update(spec, old_spec):
            causes.append(f.invalid("spec.template", spec.get("template"), f.IMMUTABLE))
        if spec.get("completions") != old_spec.get("completions") and not (
            spec.get("completionMode") == "Indexed" and spec.get("completions") == spec.get("parallelism")
        ):
            causes.append(f.invalid("spec.completions", spec.get("completions"), f.IMMUTABLE))
    return causes


def _suspended_update(spec: Obj, old_spec: Obj) -> bool:
    """A suspended job that never started may change its template's scheduling directives only."""
    if old_spec.get("suspend") is not True:
        return False
    new_t, old_t = f.as_dict(spec.get("template")), f.as_dict(old_spec.get("template"))
    mutable = ("nodeSelector", "tolerations", "affinity", "schedulingGates")

    def strip(template: Obj) -> Obj:
        return {k: v for k, v in f.as_dict(template.get("spec")).items() if k not in mutable}

    return strip(new_t) == strip(old_t)


def validate_cron_job(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    name = f.as_dict(obj.get("metadata")).get("name") or ""
    if len(name) > _CRONJOB_NAME_MAX:
        causes.append(f.invalid("metadata.name", name, f.max_len_error(_CRONJOB_NAME_MAX)))
    spec = f.as_dict(obj.get("spec"))
    schedule = spec.get("schedule")
    if not schedule:
        causes.append(f.required("spec.schedule", ""))
    else:
        schedule = str(schedule)
        if "TZ" in schedule:
            causes.append(
                f.invalid(
                    "spec.schedule",
                    schedule,
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                )
            )
        else:
            err = schedule_error(schedule)
            if err:
                causes.append(f.invalid("spec.schedule", schedule, err))
    tz = spec.get("timeZone")
    if tz is not None and (not tz or " " in str(tz) or str(tz).startswith(("/", "."))):
        causes.append(f.invalid("spec.timeZone", tz, "unknown time zone " + str(tz)))
    causes += f.one_of(
        "spec.concurrencyPolicy", spec.get("concurrencyPolicy"), ("Allow", "Forbid", "Replace")
    )
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes += f.non_negative(f"spec.{key}", spec.get(key))
    job_template = spec.get("jobTemplate")
    if job_template is None:
        causes.append(f.required("spec.jobTemplate", ""))
    else:
        jt = f.as_dict(job_template)
        causes += f.validate_labels(
            f.as_dict(jt.get("metadata")).get("labels"), "spec.jobTemplate.metadata.labels"
        )
        causes += validate_job_spec(
            f.as_dict(jt.get("spec")), "spec.jobTemplate.spec", require_selector=False
        )
    return causes
