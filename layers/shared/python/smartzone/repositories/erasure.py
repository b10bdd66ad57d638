"""Erasure of one resident's personal data on request (issue 9.5), shared by the API and the tool.

One call, :func:`erase_resident`, given the person's ``id_key`` (never the plain ID). A key no
resident has raises :class:`UnknownResident` (nothing is written, nothing audited) unless the
erasure is explicitly ``preemptive``: then a tombstone is written so that a later merge run never
stores the person (a request received before their data arrives).

1. the golden record becomes a tombstone without personal data (``erased_at``; later merge runs
   skip the person, so the data does not come back from the source tables), category memberships,
   review items and steward decisions of the person are deleted, and the counts are lowered
   (:meth:`smartzone.repositories.residents.ResidentRepository.erase`);
2. the person's form facts are deleted (:meth:`FactRepository.erase_subject`) and the resident
   fields of the submissions that wrote them are removed
   (:meth:`SubmissionRepository.anonymise_subject`);
3. one audit entry (action ``erasure``, subject ``RESIDENT#<id_key>``, the operator and reason).

Queued rows WITHOUT a valid ID cannot be attributed to the person (they carry no id_key) and the
source tables themselves belong to their departments: both are listed in ``docs/residents.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smartzone.domain.audit import AuditAction, AuditEntry
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.repositories.audit import AuditLog
from smartzone.repositories.residents import ResidentRepository


class UnknownResident(LookupError):
    """No resident has this key (and the erasure was not pre-emptive)."""


@dataclass(frozen=True)
class ErasureResult:
    id_key: str
    erased: dict[str, int] = field(default_factory=dict)
    """What was removed, by kind (resident, category_memberships, review_items, decisions,
    facts, submissions)."""
    audit_entry_id: str = ""


def _erase_form_data(table_name: str, id_key: str) -> dict[str, int]:
    from smartzone.domain.facts import SubjectType
    from smartzone.repositories.facts import FactRepository
    from smartzone.repositories.forms import FormRepository
    from smartzone.repositories.submissions import SubmissionRepository

    subject = f"{SubjectType.RESIDENT.value}:{id_key}"
    facts = FactRepository(table_name)
    submission_ids = facts.submissions_of(subject)
    erased_facts = facts.erase_subject(subject)
    submissions, forms = SubmissionRepository(table_name), FormRepository(table_name)
    changed = 0
    for submission_id in submission_ids:
        submission = submissions.get(submission_id)
        if submission is None:
            continue
        form = forms.get(submission.form_id, submission.form_version)
        names = [f.name for f in form.fields if f.subject_type is SubjectType.RESIDENT] if form else []
        changed += submissions.anonymise_subject([submission_id], subject, names)
    return {"facts": erased_facts, "submissions": changed}


def erase_resident(
    table_name: str,
    id_key: str,
    *,
    actor: str,
    role: str,
    reason: str,
    at_ms: int | None = None,
    preemptive: bool = False,
) -> ErasureResult:
    at = at_ms if at_ms is not None else now_ms()
    erased = ResidentRepository(table_name).erase(id_key, to_iso(at), preemptive=preemptive)
    if erased is None:
        raise UnknownResident("no resident has this key")
    erased.update(_erase_form_data(table_name, id_key))
    entry = AuditLog(table_name).append(
        AuditEntry(
            actor=actor,
            role=role,
            action=AuditAction.ERASURE,
            subject_key=f"RESIDENT#{id_key}",
            purpose=reason,
            fields=tuple(sorted(k for k, n in erased.items() if n)),
            at=at,
        )
    )
    return ErasureResult(id_key=id_key, erased=erased, audit_entry_id=entry.entry_id)
