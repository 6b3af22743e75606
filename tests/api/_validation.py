"""Default then validate, as the API server does: the causes as (field, reason, message)."""

from __future__ import annotations

import copy
from typing import Any

from pyk8s.api.catalog import by_kind
from pyk8s.api.defaults import apply_defaults
from pyk8s.api.validation import validate

Obj = dict[str, Any]


def check_in(group: str, kind: str, obj: Obj, old: Obj | None = None) -> list[tuple[str, str, str]]:
    info = by_kind(group, kind)
    assert info is not None
    obj = copy.deepcopy(obj)
    apply_defaults(info, obj)
    if old is not None:
        old = copy.deepcopy(old)
        apply_defaults(info, old)
    return [(c.field, c.type, c.message) for c in validate(info, obj, old)]


def fields_in(group: str, kind: str, obj: Obj, old: Obj | None = None) -> list[str]:
    return [c[0] for c in check_in(group, kind, obj, old)]
