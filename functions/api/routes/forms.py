"""`/v1/forms`: form definitions, prefill, submissions, attachments and exports (docs/forms.md).

Reach (the caller's department and grids come from the user registry, never from the token):

| role        | sees                                         | fills (prefill, submit)        | owns (version, retire, export) |
|-------------|----------------------------------------------|--------------------------------|--------------------------------|
| admin       | every form and submission                    | any form, any assigned grid    | every form                     |
| dispatcher  | every form and submission                    | –                              | –                              |
| department  | its own forms and their submissions          | its own forms                  | its own forms                  |
| grid worker | active forms assigned to its grids/communities; those grids' submissions | those forms, its grids | – |

Anything outside the caller's reach answers 404; a role that sees a form but may not do the
action answers 403.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.errors import ServiceError
from smartzone.domain.facts import (
    FactValue,
    InvalidSubject,
    PersonalData,
    Provenance,
    SourceKind,
    SubjectKey,
    ValueType,
    fact,
    outcome_of,
    within_grids,
)
from smartzone.domain.form_exports import ExportFormat, ExportJob
from smartzone.domain.forms import (
    FORM_ID_PATTERN,
    FieldProblem,
    FormDefinition,
    FormDraft,
    FormStatus,
    Submission,
    validate_values,
)
from smartzone.domain.identity import Caller
from smartzone.domain.masking import MaskDecision, mask_for
from smartzone.domain.statistics import PeriodError, parse_period, stats_day
from smartzone.domain.timeutil import SHANGHAI, TimestampError, now_ms, parse_ts_ms, to_iso
from smartzone.repositories.cursor import decode_cursor, encode_cursor
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.exports import ExportRepository, enqueue
from smartzone.repositories.facts import FactRepository, replaces
from smartzone.repositories.forms import FormConflict, FormRepository
from smartzone.repositories.submissions import (
    DuplicateSubmission,
    StaleFacts,
    SubmissionBusy,
    SubmissionRepository,
)
from smartzone.settings import get_settings

from ..context import caller_of, cursor_secret, department_of, grids_of, users
from ..errors import ConflictError, ForbiddenError, NotFoundError, Unprocessable
from .form_access import audit_unmasked
from .uploads import MAX_UPLOAD_BYTES, ImageType, photo_ticket

router = Router()

SUBMISSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{7,63}$"
PLAN_ATTEMPTS = 3
"""How often a submission is planned again when a fact it replaces changed meanwhile."""
WITHHELD = "***"
"""Shown (masked callers) for a text value whose field is unknown (its form version is gone)."""
_KEY_SAFE = re.compile(r"[^A-Za-z0-9._@+-]")


@cache
def _repos(table: str) -> tuple[FormRepository, FactRepository, SubmissionRepository, DeviceRepository]:
    return FormRepository(table), FactRepository(table), SubmissionRepository(table), DeviceRepository(table)


def forms() -> FormRepository:
    return _repos(get_settings().table_name)[0]


def facts() -> FactRepository:
    return _repos(get_settings().table_name)[1]


def submissions() -> SubmissionRepository:
    return _repos(get_settings().table_name)[2]


def registry() -> DeviceRepository:
    return _repos(get_settings().table_name)[3]


# -- models ----------------------------------------------------------------------------------------------
class FormSummary(BaseModel):
    form_id: str
    version: int
    title_zh: str
    department_id: str
    status: FormStatus
    assigned_grids: list[str]
    assigned_communities: list[str]
    subject_types: list[str]
    fields: int


class FormList(BaseModel):
    items: list[FormSummary]


class FormOut(FormDefinition):
    json_schema_: dict[str, Any] = Field(alias="json_schema")
    subject_types_: list[str] = Field(alias="subject_types")

    model_config = ConfigDict(populate_by_name=True)


class FormCreate(FormDraft):
    form_id: str = Field(pattern=FORM_ID_PATTERN)
    department_id: str | None = Field(
        None, description="admins name the owning department; a department user's own is used otherwise"
    )


class FormVersionIn(FormDraft):
    expected_version: int | None = Field(None, ge=1, description="409 when the form is past this version")


class PrefillSource(BaseModel):
    kind: SourceKind
    form_id: str | None = None
    form_version: int | None = None
    submission_id: str | None = None
    table: str | None = None
    by: str
    at: str
    collected_at: str | None = None
    grid_id: str | None = None
    community: str | None = None


class PrefillField(BaseModel):
    name: str
    fact: str
    label_zh: str
    subject: str | None
    value: Any = None
    masked: bool = False
    """The value is shown masked (personal data, caller's role): confirm it with ``confirmed``."""
    source: PrefillSource | None = None


class PrefillOut(BaseModel):
    form_id: str
    version: int
    subjects: dict[str, str]
    fields: list[PrefillField]
    prefilled: int
    total: int


class SubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_submission_id: str = Field(
        pattern=SUBMISSION_ID_PATTERN, description="chosen by the app (a UUID); retries reuse it"
    )
    grid_id: str = Field(pattern=r"^G[0-9]{2,3}$")
    form_version: int | None = Field(None, ge=1, description="the version filled in (default: current)")
    subjects: dict[str, str] = Field(
        description="subject type → key, e.g. {'household': 'household:H-LJ-0001'}", max_length=5
    )
    values: dict[str, Any] = Field(default_factory=dict)
    confirmed: list[str] = Field(
        default_factory=list,
        max_length=40,
        description="fields whose prefilled value is confirmed unchanged (its stored value is used)",
    )
    collected_at: str | None = Field(None, max_length=40, description="when filled in on the device")


class SubmissionOut(BaseModel):
    submission_id: str
    form_id: str
    form_version: int
    grid_id: str
    community: str | None
    subjects: dict[str, str]
    values: dict[str, Any]
    outcomes: dict[str, str]
    counts: dict[str, int]
    submitted_by: str
    received_at: str
    collected_at: str | None = None


class SubmissionPageOut(BaseModel):
    items: list[SubmissionOut]
    next_cursor: str | None = None


class AttachmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: ImageType
    size_bytes: int = Field(ge=1, le=MAX_UPLOAD_BYTES)


class AttachmentTicket(BaseModel):
    url: str
    fields: dict[str, str]
    key: str
    """Put this key into the attachment field's value."""
    expires_at: str
    max_bytes: int


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_day: str = Field(alias="from", max_length=10, description="first day (YYYY-MM-DD, Beijing time)")
    to_day: str = Field(alias="to", max_length=10, description="last day, inclusive")
    format: ExportFormat = ExportFormat.XLSX


class ExportAccepted(BaseModel):
    export_id: str
    status: str
    masked: bool


# -- reach -------------------------------------------------------------------------------------------------
def _communities_of(grids: frozenset[str]) -> frozenset[str]:
    if not grids:
        return frozenset()
    return frozenset(g.community for g in registry().get_grids(sorted(grids)).values())


def _visible(form: FormDefinition | None, caller: Caller) -> FormDefinition:
    """The form if the caller may see it; 404 otherwise."""
    if form is not None:
        if caller.sees_all_orders:
            return form
        if caller.is_department and department_of(router, caller) == form.department_id:
            return form
        if caller.is_grid_worker and form.status is FormStatus.ACTIVE:
            grids = grids_of(router, caller)
            if set(form.assigned_grids) & grids or set(form.assigned_communities) & _communities_of(grids):
                return form
    raise NotFoundError("no such form", field="form_id")


def _owns(form: FormDefinition, caller: Caller) -> bool:
    return caller.is_admin or (caller.is_department and department_of(router, caller) == form.department_id)


def _require_owner(form: FormDefinition, caller: Caller, action: str) -> None:
    if not _owns(form, caller):
        raise ForbiddenError(f"only the owning department or an admin may {action}")


def _check_fill(form: FormDefinition, caller: Caller, grid_id: str | None) -> str | None:
    """403 unless the caller may fill the form (in ``grid_id``); returns the grid's community."""
    if not (caller.is_admin or caller.is_grid_worker or _owns(form, caller)):
        raise ForbiddenError("this role does not fill in forms")
    if grid_id is None:
        return None
    if caller.is_grid_worker and not _owns(form, caller) and grid_id not in grids_of(router, caller):
        raise ForbiddenError("you do not answer for this grid")
    grid = registry().get_grid(grid_id)
    community = grid.community if grid is not None else None
    if not form.assigned_to(grid_id, community):
        raise Unprocessable(f"form {form.form_id} is not assigned to grid {grid_id}", field="grid_id")
    return community


def _version_of(current: FormDefinition, version: int | None) -> FormDefinition:
    """``version`` of a visible form (default: the current one), with the form's status."""
    if version is None or version == current.version:
        return current
    older = forms().get(current.form_id, version)
    if older is None:
        raise NotFoundError(f"form {current.form_id} has no version {version}", field="form_version")
    return older.model_copy(update={"status": current.status})


def _load(form_id: str, caller: Caller, version: int | None = None) -> FormDefinition:
    return _version_of(_visible(forms().get(form_id), caller), version)


# -- definitions ----------------------------------------------------------------------------------------
def _summary(form: FormDefinition) -> FormSummary:
    return FormSummary(
        form_id=form.form_id,
        version=form.version,
        title_zh=form.title_zh,
        department_id=form.department_id,
        status=form.status,
        assigned_grids=form.assigned_grids,
        assigned_communities=form.assigned_communities,
        subject_types=[t.value for t in form.subject_types],
        fields=len(form.fields),
    )


def _out(form: FormDefinition) -> FormOut:
    data = form.model_dump(by_alias=True)
    data["fields"] = [f.model_dump(by_alias=True) for f in form.ordered_fields]
    return FormOut.model_validate(
        {**data, "json_schema": form.json_schema(), "subject_types": [t.value for t in form.subject_types]}
    )


@router.get("/", summary="The forms the caller may fill or owns", tags=["forms"])
def list_forms() -> FormList:
    caller = caller_of(router)
    if caller.sees_all_orders:
        found = forms().all_forms()
    elif caller.is_department:
        department = department_of(router, caller)
        found = forms().of_department(department) if department else []
    elif caller.is_grid_worker:
        grids = grids_of(router, caller)
        found = [f for f in forms().assigned(grids, _communities_of(grids)) if f.status is FormStatus.ACTIVE]
    else:
        raise ForbiddenError("forms are for grid workers, departments, dispatchers and admins")
    return FormList(items=[_summary(f) for f in found])


@router.get("/<form_id>", summary="One form: fields, display metadata and its JSON Schema", tags=["forms"])
def get_form(
    form_id: Annotated[str, Path(max_length=64)],
    version: Annotated[int | None, Query(ge=1, description="an older version (default: current)")] = None,
) -> FormOut:
    return _out(_load(form_id, caller_of(router), version))


@router.post(
    "/", summary="Create a form (version 1): departments and admins", tags=["forms"], status_code=201
)
def create_form(body: Annotated[FormCreate, Body(embed=False)]) -> Response[FormOut]:
    caller = caller_of(router)
    if caller.is_admin:
        if not body.department_id:
            raise Unprocessable("name the owning department", field="department_id")
        department = body.department_id
    elif caller.is_department:
        department = department_of(router, caller) or ""
        if not department:
            raise ForbiddenError("your account has no department in the registry")
        if body.department_id not in (None, department):
            raise ForbiddenError("departments create forms for themselves only")
    else:
        raise ForbiddenError("only departments and admins create forms")
    draft = FormDraft.model_validate(body.model_dump(by_alias=True, exclude={"form_id", "department_id"}))
    form = FormDefinition(
        **draft.model_dump(by_alias=True),
        form_id=body.form_id,
        version=1,
        department_id=department,
        created_at=to_iso(now_ms()),
        created_by=caller.username,
    )
    try:
        forms().create(form)
    except FormConflict as exc:
        raise ConflictError(str(exc), field="form_id") from None
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=_out(form))


@router.put(
    "/<form_id>", summary="Publish a new version of a form (old submissions keep theirs)", tags=["forms"]
)
def new_version(
    form_id: Annotated[str, Path(max_length=64)], body: Annotated[FormVersionIn, Body(embed=False)]
) -> FormOut:
    caller = caller_of(router)
    current = _visible(forms().get(form_id), caller)
    _require_owner(current, caller, "publish a version")
    if current.status is FormStatus.RETIRED:
        raise ConflictError("a retired form takes no new versions", field="form_id")
    if body.expected_version is not None and body.expected_version != current.version:
        raise ConflictError(f"the form is at version {current.version}", field="expected_version")
    draft = FormDraft.model_validate(body.model_dump(by_alias=True, exclude={"expected_version"}))
    form = FormDefinition(
        **draft.model_dump(by_alias=True),
        form_id=form_id,
        version=current.version + 1,
        department_id=current.department_id,
        created_at=to_iso(now_ms()),
        created_by=caller.username,
    )
    try:
        forms().add_version(form, current)
    except FormConflict as exc:
        raise ConflictError(str(exc), field="expected_version") from None
    return _out(form)


@router.post("/<form_id>/retire", summary="Retire a form: no new submissions", tags=["forms"])
def retire_form(form_id: Annotated[str, Path(max_length=64)]) -> FormOut:
    caller = caller_of(router)
    current = _visible(forms().get(form_id), caller)
    _require_owner(current, caller, "retire it")
    if current.status is FormStatus.RETIRED:
        return _out(current)
    try:
        return _out(forms().retire(current))
    except FormConflict as exc:
        raise ConflictError(str(exc), field="form_id") from None


# -- prefill ---------------------------------------------------------------------------------------------
def _subjects(raw: dict[str, str], form: FormDefinition, *, require_all: bool) -> dict[str, SubjectKey]:
    parsed: dict[str, SubjectKey] = {}
    for kind, text in raw.items():
        try:
            key = SubjectKey.parse(text)
        except InvalidSubject as exc:
            raise Unprocessable(str(exc), field=f"subjects.{kind}") from None
        if key.type.value != kind:
            raise Unprocessable(f"{text!r} is not a {kind}", field=f"subjects.{kind}")
        parsed[kind] = key
    unknown = sorted(set(parsed) - {t.value for t in form.subject_types})
    if unknown:
        raise Unprocessable(
            f"form {form.form_id} asks nothing about a {unknown[0]}", field=f"subjects.{unknown[0]}"
        )
    if require_all:
        for kind in form.subject_types:
            if kind.value not in parsed:
                raise Unprocessable(
                    f"name the {kind.value} this submission is about", field=f"subjects.{kind.value}"
                )
    return parsed


def _shown(value: Any, personal: PersonalData | None, decision: MaskDecision) -> tuple[Any, bool]:
    if personal is None or not isinstance(value, str) or decision.unmasked:
        return value, False
    if personal is PersonalData.ADDRESS:
        shown = decision.address(value)
        return shown, shown != value
    masked = {
        PersonalData.PHONE: decision.phone,
        PersonalData.NAME: decision.name,
        PersonalData.ID_NUMBER: decision.id_number,
    }[personal](value)
    return masked, True


def _in_reach(found: dict[str, FactValue], caller: Caller, form: FormDefinition) -> dict[str, FactValue]:
    """The stored values the caller may be offered: a grid worker only those collected in its own
    grids (the others as if unknown: the worker types them new); everyone else all of them."""
    if caller.sees_all_orders or not caller.is_grid_worker or _owns(form, caller):
        return found
    grids = grids_of(router, caller)
    return {name: value for name, value in found.items() if within_grids(value, grids)}


def _current_facts(form: FormDefinition, subjects: dict[str, SubjectKey]) -> dict[str, FactValue]:
    """Field name → the current value of its fact (fields whose subject is named and known), whoever
    may see it: filter with :func:`_in_reach` before offering, confirming or comparing."""
    pairs = {
        f.name: (str(subjects[f.subject_type.value]), f.fact)
        for f in form.fields
        if f.subject_type.value in subjects
    }
    found = facts().current(pairs.values())
    return {name: found[pair] for name, pair in pairs.items() if pair in found}


@router.get(
    "/<form_id>/prefill",
    summary="Each field's current fact value with its source and date (confirm or correct)",
    tags=["forms"],
)
def prefill(
    form_id: Annotated[str, Path(max_length=64)],
    subject: Annotated[
        str,
        Query(
            max_length=400,
            description="subject keys, comma-separated: household:H-LJ-0001,resident:<key from POST /v1/subjects>",
        ),
    ],
    version: Annotated[int | None, Query(ge=1)] = None,
) -> PrefillOut:
    caller = caller_of(router)
    form = _load(form_id, caller, version)
    _check_fill(form, caller, None)
    raw: dict[str, str] = {}
    for part in (p.strip() for p in subject.split(",") if p.strip()):
        raw[part.partition(":")[0]] = part
    if not raw:
        raise Unprocessable("name at least one subject", field="subject")
    try:
        subjects = _subjects(raw, form, require_all=False)
    except ServiceError as exc:
        raise Unprocessable(exc.message, field="subject") from None
    current = _in_reach(_current_facts(form, subjects), caller, form)
    decision = mask_for(caller)
    out: list[PrefillField] = []
    shown_unmasked: list[str] = []
    for f in form.ordered_fields:
        stored = current.get(f.name)
        personal = fact(f.fact).personal
        value, masked = _shown(stored.value, personal, decision) if stored else (None, False)
        if stored is not None and personal is not None and decision.unmasked:
            shown_unmasked.append(f.name)
        out.append(
            PrefillField(
                name=f.name,
                fact=f.fact,
                label_zh=f.label_zh,
                subject=str(subjects[f.subject_type.value]) if f.subject_type.value in subjects else None,
                value=value,
                masked=masked,
                source=PrefillSource(**stored.source.model_dump()) if stored else None,
            )
        )
    if shown_unmasked:
        audited = {
            str(subjects[f.subject_type.value])
            for f in form.fields
            if f.name in shown_unmasked and f.subject_type.value in subjects
        }
        for key in sorted(audited):
            audit_unmasked(caller, key, f"prefill of form {form.form_id}", shown_unmasked)
    return PrefillOut(
        form_id=form.form_id,
        version=form.version,
        subjects={k: str(v) for k, v in subjects.items()},
        fields=out,
        prefilled=len(current),
        total=len(form.fields),
    )


# -- submissions -----------------------------------------------------------------------------------------
def fingerprint(form_id: str, body: SubmissionIn) -> str:
    data = {"form_id": form_id, **body.model_dump(mode="json", exclude={"client_submission_id"})}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _submission_out(s: Submission, decision: MaskDecision, form: FormDefinition | None) -> SubmissionOut:
    """The submission as the caller may see it; ``form`` is its version (None: not found, so every
    text value is withheld from masked callers: it may be personal data)."""
    values = dict(s.values)
    if not decision.unmasked:
        for name, value in s.values.items():
            f = form.field(name) if form is not None else None
            if f is not None:
                values[name] = _shown(value, fact(f.fact).personal, decision)[0]
            elif isinstance(value, str):
                values[name] = WITHHELD
    return SubmissionOut(
        submission_id=s.submission_id,
        form_id=s.form_id,
        form_version=s.form_version,
        grid_id=s.grid_id,
        community=s.community,
        subjects=s.subjects,
        values=values,
        outcomes=s.outcomes,
        counts=s.outcome_counts(),
        submitted_by=s.submitted_by,
        received_at=s.received_at,
        collected_at=s.collected_at,
    )


class InvalidValues(ServiceError):
    """422 naming every bad field of a submission, each with a Chinese and an English message."""

    status = 422
    code = "invalid_field"

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.details = [
            {
                "field": f"values.{p.field}",
                "message": f"{p.message_zh} ({p.message_en})",
                "message_zh": p.message_zh,
                "message_en": p.message_en,
            }
            for p in problems
        ]
        super().__init__(str(self.details[0]["message"]), field=str(self.details[0]["field"]))

    def body(self) -> dict[str, Any]:
        return {**super().body(), "details": self.details}


def _merge_values(form: FormDefinition, body: SubmissionIn, current: dict[str, FactValue]) -> dict[str, Any]:
    merged = dict(body.values)
    for name in body.confirmed:
        if form.field(name) is None:
            raise Unprocessable(f"{name} is not a field of this form", field=f"confirmed.{name}")
        if name in body.values:
            raise Unprocessable(f"{name} is both confirmed and given a value", field=f"confirmed.{name}")
        if name not in current:
            raise Unprocessable(f"{name} has no stored value to confirm", field=f"confirmed.{name}")
        merged[name] = current[name].value
    return merged


def _attachment_problems(form: FormDefinition, values: dict[str, Any], caller: Caller) -> list[FieldProblem]:
    owner = "/" + (_KEY_SAFE.sub("_", caller.username)[:128] or "unknown") + "/"
    problems = []
    for name, value in values.items():
        f = form.field(name)
        if f is None or fact(f.fact).value_type is not ValueType.ATTACHMENT or not isinstance(value, str):
            continue
        if owner not in value:
            problems.append(
                FieldProblem(
                    field=name,
                    message_zh=f"{f.label_zh}须为本人上传的附件",
                    message_en=f"{name} must be a file you uploaded",
                )
            )
    return problems


@router.post(
    "/<form_id>/submissions",
    summary="Submit a filled-in form (idempotent on client_submission_id): 201 created, 200 on a retry",
    tags=["forms"],
    status_code=201,
)
def submit(
    form_id: Annotated[str, Path(max_length=64)], body: Annotated[SubmissionIn, Body(embed=False)]
) -> Response[SubmissionOut]:
    caller = caller_of(router)
    print_ = fingerprint(form_id, body)
    # A retry first (an offline app may retry after the form was retired or reassigned): its
    # original answer, if the caller may see the stored submission.
    existing = submissions().get(body.client_submission_id)
    if existing is not None:
        return _replay(existing, print_, caller, form_id)
    current_form = _visible(forms().get(form_id), caller)
    form = _version_of(current_form, body.form_version)
    if form.status is FormStatus.RETIRED:
        raise ConflictError("this form is retired and takes no new submissions", field="form_id")
    community = _check_fill(form, caller, body.grid_id)
    subjects = _subjects(body.subjects, form, require_all=True)
    at = now_ms()
    received = to_iso(at)
    collected_at = None
    collected_ms = at
    if body.collected_at is not None:
        try:
            given = parse_ts_ms(body.collected_at)
        except TimestampError:
            raise Unprocessable(
                "collected_at must be ISO-8601 or epoch milliseconds", field="collected_at"
            ) from None
        collected_at = to_iso(given)
        collected_ms = min(given, at)  # a device clock running ahead does not make a value newer
    source = Provenance(
        kind=SourceKind.FORM,
        form_id=form.form_id,
        form_version=form.version,
        submission_id=body.client_submission_id,
        by=caller.username,
        at=received,
        collected_at=to_iso(collected_ms),
        grid_id=body.grid_id,
        community=community,
    )
    for attempt in range(PLAN_ATTEMPTS):
        stored = _current_facts(form, subjects)
        current = _in_reach(stored, caller, form)
        values = _merge_values(form, body, current)
        problems = validate_values(form, values) + _attachment_problems(form, values, caller)
        if problems:
            raise InvalidValues(problems)
        outcomes = {name: outcome_of(current.get(name), value).value for name, value in values.items()}
        fact_ops: list[dict[str, Any]] = []
        for name, value in values.items():
            f = form.field(name)
            if f is None or outcomes[name] == "prefilled_confirmed":
                continue  # a confirmed value keeps its provenance
            # A value collected before the stored one (a late offline submission) goes to the
            # history only: the current value stays the later-collected one.
            fact_ops += facts().write_ops(
                str(subjects[f.subject_type.value]),
                f.fact,
                value,
                source,
                replace_current=replaces(source, stored.get(name)),
            )
        submission = Submission(
            submission_id=body.client_submission_id,
            form_id=form.form_id,
            form_version=form.version,
            department_id=form.department_id,
            grid_id=body.grid_id,
            community=community,
            subjects={k: str(v) for k, v in subjects.items()},
            values=values,
            outcomes=outcomes,
            submitted_by=caller.username,
            received_at=received,
            collected_at=collected_at,
            fingerprint=print_,
        )
        try:
            submissions().record(submission, fact_ops, stats_day(received))
        except DuplicateSubmission as dup:
            return _replay(dup.existing, print_, caller, form_id)
        except StaleFacts:
            if attempt + 1 == PLAN_ATTEMPTS:
                raise SubmissionBusy() from None
            continue
        return Response(
            status_code=201,
            content_type=content_types.APPLICATION_JSON,
            body=_submission_out(submission, mask_for(caller), form),
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _may_see_submission(existing: Submission, caller: Caller) -> bool:
    """The stored submission's reach: its submitter, the owning department, admins and dispatchers."""
    if caller.sees_all_orders or existing.submitted_by == caller.username:
        return True
    return caller.is_department and department_of(router, caller) == existing.department_id


def _replay(existing: Submission, print_: str, caller: Caller, form_id: str) -> Response[SubmissionOut]:
    """A retry's original answer (200), whatever became of the form since; checked against the
    stored submission: another caller's id or other content is a 409 and shows nothing."""
    if (
        not _may_see_submission(existing, caller)
        or existing.fingerprint != print_
        or existing.form_id != form_id
    ):
        raise ConflictError(
            "this client_submission_id was used for a different submission", field="client_submission_id"
        )
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=_submission_out(
            existing, mask_for(caller), forms().get(existing.form_id, existing.form_version)
        ),
    )


def _day_bound(name: str, value: str | None, end: bool) -> str | None:
    """A ``from``/``to`` query bound: a Beijing day (``to`` inclusive) or an ISO instant."""
    if value is None:
        return None
    text = value.strip()
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            day = datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)
            ms = int(day.timestamp() * 1000) + (86_400_000 if end else 0)
            return to_iso(ms)
        return to_iso(parse_ts_ms(text))
    except (ValueError, TimestampError):
        raise Unprocessable(f"{name} must be a day (YYYY-MM-DD) or ISO-8601", field=name) from None


@router.get(
    "/<form_id>/submissions",
    summary="A form's submissions, newest first (grid workers: their grids; departments: forms they own)",
    tags=["forms"],
)
def list_submissions(
    form_id: Annotated[str, Path(max_length=64)],
    grid_id: Annotated[str | None, Query(pattern=r"^G[0-9]{2,3}$")] = None,
    start: Annotated[str | None, Query(alias="from", max_length=40, description="day or ISO instant")] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=40, description="day (inclusive) or ISO instant")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> SubmissionPageOut:
    caller = caller_of(router)
    form = _visible(forms().get(form_id), caller)
    if not (caller.sees_all_orders or _owns(form, caller)):
        grids = grids_of(router, caller)
        if grid_id is None:
            if len(grids) != 1:
                raise Unprocessable("name the grid (you answer for several)", field="grid_id")
            grid_id = next(iter(grids))
        elif grid_id not in grids:
            raise NotFoundError("no such grid among yours", field="grid_id")
    since, until = _day_bound("from", start, False), _day_bound("to", end, True)
    scope = f"formsubs|{form_id}|{grid_id}|{since}|{until}"
    start_key = decode_cursor(cursor, scope, cursor_secret()) if cursor else None
    page = submissions().query(
        form_id, grid_id=grid_id, since=since, until=until, limit=limit, start_key=start_key
    )
    decision = mask_for(caller)
    versions: dict[int, FormDefinition | None] = {form.version: form}
    items = []
    for s in page.items:
        if s.form_version not in versions:
            versions[s.form_version] = forms().get(form_id, s.form_version)
        items.append(_submission_out(s, decision, versions[s.form_version]))
    if decision.unmasked and items:
        audit_unmasked(
            caller, f"FORM#{form_id}", "submission list", sorted({k for i in items for k in i.values})
        )
    return SubmissionPageOut(
        items=items,
        next_cursor=encode_cursor(page.last_key, scope, cursor_secret()) if page.last_key else None,
    )


# -- attachments -----------------------------------------------------------------------------------------
@router.post(
    "/<form_id>/attachments",
    summary="A presigned S3 POST for one attachment of a submission (photo)",
    tags=["forms"],
    status_code=201,
)
def post_attachment(
    form_id: Annotated[str, Path(max_length=64)], request: Annotated[AttachmentRequest, Body(embed=False)]
) -> AttachmentTicket:
    caller = caller_of(router)
    form = _visible(forms().get(form_id), caller)
    _check_fill(form, caller, None)
    ticket = photo_ticket(caller.username, request.content_type, request.size_bytes)
    return AttachmentTicket(**ticket.model_dump())


# -- exports ---------------------------------------------------------------------------------------------
@router.post(
    "/<form_id>/exports",
    summary="Export a period's submissions as CSV or XLSX (asynchronous: fetch with GET /v1/exports/{id})",
    tags=["forms"],
    status_code=202,
)
def post_export(
    form_id: Annotated[str, Path(max_length=64)], body: Annotated[ExportRequest, Body(embed=False)]
) -> Response[ExportAccepted]:
    caller = caller_of(router)
    form = _visible(forms().get(form_id), caller)
    _require_owner(form, caller, "export its submissions")
    try:
        from_day, to_day = parse_period(body.from_day, body.to_day, datetime.now(SHANGHAI).date())
    except PeriodError as exc:
        raise Unprocessable(str(exc), field=exc.field) from None
    at = now_ms()
    job = ExportJob(
        export_id=uuid.uuid4().hex,
        form_id=form_id,
        from_day=from_day.isoformat(),
        to_day=to_day.isoformat(),
        format=body.format,
        requested_by=caller.username,
        unmasked=mask_for(caller).unmasked,
        created_at=to_iso(at),
    )
    ExportRepository(get_settings().table_name).put(job, at // 1000)
    enqueue(get_settings().exports_queue_url, job.export_id)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=ExportAccepted(export_id=job.export_id, status=job.status.value, masked=not job.unmasked),
    )


__all__ = ["router", "users"]
