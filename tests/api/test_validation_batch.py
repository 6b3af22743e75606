"""batch/v1: jobs and cronjobs, including the cron schedule syntax."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest

from pyk8s.api.catalog import by_kind
from pyk8s.api.defaults import apply_defaults
from pyk8s.api.validation.batch import schedule_error
from tests.api._validation import check_in

Obj = dict[str, Any]


check = functools.partial(check_in, "batch")


def pi_job() -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "4f5c0a53-7e0d-4b8e-9a1e-2b9f0e6d1c11"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "pi",
                            "image": "perl:5.34.0",
                            "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"],
                        }
                    ],
                    "restartPolicy": "Never",
                }
            },
            "backoffLimit": 4,
        },
    }


def test_documented_job_is_valid_with_generated_selector() -> None:
    assert check("Job", pi_job()) == []


def test_job_errors() -> None:
    job = pi_job()
    job["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    job["spec"]["parallelism"] = -1
    assert check("Job", job) == [
        ("spec.parallelism", "FieldValueInvalid", "Invalid value: -1: must be greater than or equal to 0"),
        (
            "spec.template.spec.restartPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "Always": supported values: "OnFailure", "Never"',
        ),
    ]
    chosen = pi_job()  # a selector of one's own needs manualSelector: true
    chosen["spec"]["selector"] = {"matchLabels": {"app": "pi"}}
    chosen["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    assert [c[:2] for c in check("Job", chosen)] == [("spec.selector", "FieldValueInvalid")]
    assert check("Job", chosen)[0][2].endswith(": `selector` not auto-generated")
    chosen["spec"]["manualSelector"] = True
    chosen["spec"]["selector"] = {"matchLabels": {"app": "pi"}}
    assert check("Job", chosen) == []
    manual = pi_job()
    manual["spec"]["manualSelector"] = True
    assert check("Job", manual) == [("spec.selector", "FieldValueRequired", "Required value")]


def test_job_template_is_immutable() -> None:
    old = pi_job()
    new = pi_job()
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.36"
    assert [c[:2] for c in check("Job", new, old)] == [("spec.template", "FieldValueInvalid")]
    info = by_kind("batch", "Job")
    assert info is not None
    apply_defaults(info, old)  # as stored
    scaled = copy.deepcopy(old)
    scaled["spec"]["parallelism"] = 3
    assert check("Job", scaled, old) == []
    scaled["spec"]["completions"] = 5
    assert check("Job", scaled, old) == [
        ("spec.completions", "FieldValueInvalid", "Invalid value: 5: field is immutable")
    ]


def test_suspended_job_may_move_its_pods_before_it_starts() -> None:
    info = by_kind("batch", "Job")
    assert info is not None
    old = pi_job()
    old["spec"]["suspend"] = True
    apply_defaults(info, old)
    moved = copy.deepcopy(old)
    moved["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    moved["spec"]["template"]["metadata"]["annotations"] = {"note": "moved"}
    assert check("Job", moved, old) == []
    started = copy.deepcopy(old)
    started["status"] = {"startTime": "2024-01-01T00:00:00Z"}
    assert [c[:2] for c in check("Job", moved, started)] == [("spec.template", "FieldValueInvalid")]
    indexed = pi_job()
    indexed["spec"].update(completionMode="Indexed", completions=3, parallelism=3)
    apply_defaults(info, indexed)
    grown = copy.deepcopy(indexed)
    grown["spec"]["completions"] = 5
    assert check("Job", grown, indexed) == [
        (
            "spec.completions",
            "FieldValueInvalid",
            "Invalid value: 5: can only be modified in tandem with spec.parallelism",
        )
    ]
    grown["spec"]["parallelism"] = 5
    assert check("Job", grown, indexed) == []


def cron(schedule: str) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "hello",
                                    "image": "busybox:1.28",
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": [
                                        "/bin/sh",
                                        "-c",
                                        "date; echo Hello from the Kubernetes cluster",
                                    ],
                                }
                            ],
                            "restartPolicy": "OnFailure",
                        }
                    }
                }
            },
        },
    }


@pytest.mark.parametrize(
    "schedule",
    [
        "* * * * *",
        "*/5 * * * *",
        "0 0 13 * 5",
        "0 9-17 * JAN-MAR mon-fri",
        "30 2 1,15 * *",
        "@hourly",
        "@daily",
        "@every 1h30m",
        "0 0 * * 0",
    ],
)
def test_valid_schedules(schedule: str) -> None:
    assert schedule_error(schedule) == ""
    assert check("CronJob", cron(schedule)) == []


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("61 * * * *", "end of range (61) above maximum (59): 61"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ],
)
def test_invalid_schedules(schedule: str, error: str) -> None:
    assert schedule_error(schedule) == error
    assert check("CronJob", cron(schedule)) == [
        ("spec.schedule", "FieldValueInvalid", f'Invalid value: "{schedule}": {error}')
    ]


def test_cronjob_errors() -> None:
    job = cron("")
    job["metadata"]["name"] = "a" * 53
    job["spec"]["concurrencyPolicy"] = "Sometimes"
    job["spec"]["timeZone"] = "Mars/Olympus_Mons"
    assert check("CronJob", job) == [
        ("spec.schedule", "FieldValueRequired", "Required value"),
        (
            "spec.timeZone",
            "FieldValueInvalid",
            'Invalid value: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons',
        ),
        (
            "spec.concurrencyPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
        ),
        (
            "metadata.name",
            "FieldValueInvalid",
            f'Invalid value: "{"a" * 53}": must be no more than 52 characters',
        ),
    ]
    zoned = cron("0 9 * * *")
    zoned["spec"]["timeZone"] = "Europe/Berlin"
    assert check("CronJob", zoned) == []
    tz = cron("TZ=UTC 0 * * * *")
    assert check("CronJob", tz) == [
        (
            "spec.schedule",
            "FieldValueInvalid",
            'Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',  # noqa: E501
        )
    ]
    always = cron("@daily")
    always["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert [c[0] for c in check("CronJob", always)] == ["spec.jobTemplate.spec.template.spec.restartPolicy"]
