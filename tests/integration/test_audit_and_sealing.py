"""The append-only audit log and the sealing of personal fields (envelope encryption), against moto."""

from __future__ import annotations

import pytest

from tests.support.residents import LOCAL_KEY


@pytest.fixture
def table(aws: None) -> str:
    from infra.local.resources import create_table

    create_table("audit-test")
    return "audit-test"


def test_given_an_entry_when_appended_twice_then_the_second_is_refused_and_the_first_kept(table: str) -> None:
    from smartzone.domain.audit import AuditEntry
    from smartzone.repositories.audit import AuditLog, DuplicateAuditEntry

    log = AuditLog(table)
    entry = AuditEntry(
        actor="admin-01",
        role="admin",
        action="unmasked_read",
        subject_key="RESIDENT#" + "ab" * 32,
        at=1_764_400_000_000,
    )
    log.append(entry)
    forged = entry.model_copy(update={"actor": "someone-else"})
    with pytest.raises(DuplicateAuditEntry):
        log.append(forged)
    (stored,), last = log.day("2025-11-29")
    assert stored == entry and last is None


def test_given_entries_then_they_expire_after_the_retention_and_page_in_time_order(table: str) -> None:
    from smartzone.domain.audit import AuditEntry
    from smartzone.repositories.audit import AuditLog
    from smartzone.repositories.clients import client

    log = AuditLog(table, retention_days=1096)
    base = 1_764_400_000_000
    for i in range(3):
        log.append(
            AuditEntry(
                actor="a", role="admin", action="lookup", subject_key=f"RESIDENT#{i:064x}", at=base + i
            )
        )
    page, last = log.day("2025-11-29", limit=2)
    rest, end = log.day("2025-11-29", limit=2, start_key=last)
    assert [e.at for e in page + rest] == [base, base + 1, base + 2] and end is None
    item = client("dynamodb").scan(TableName=table)["Items"][0]
    assert int(item["expires_at"]["N"]) == (base + 1096 * 86_400_000) // 1000


@pytest.mark.parametrize(
    "field, value",
    [
        ("subject_key", "RESIDENT#340299194805060214"),
        ("purpose", "核实 13812340001"),
        ("actor", "340299194805060214"),
    ],
)
def test_given_a_plain_id_or_phone_in_an_entry_then_it_is_refused(field: str, value: str) -> None:
    from pydantic import ValidationError

    from smartzone.domain.audit import AuditEntry

    values = {"actor": "a", "role": "admin", "action": "lookup", "subject_key": "RESIDENT#" + "0" * 64}
    with pytest.raises(ValidationError):
        AuditEntry(**{**values, field: value})


def test_given_sealed_fields_then_they_open_only_with_their_own_pk_and_untampered() -> None:
    import base64

    from cryptography.exceptions import InvalidTag

    from smartzone.repositories.personal_data import LocalWrapper, Sealer

    sealer = Sealer(LocalWrapper(base64.b64decode(LOCAL_KEY)), max_uses=2)
    fields = {"id_number": "340299194805060214", "name": "张秀英"}
    sealed = sealer.seal(fields, "RESIDENT#a")
    assert "340299" not in str(sealed) and "张" not in str(sealed)
    assert sealer.open(sealed, "RESIDENT#a") == fields
    with pytest.raises(InvalidTag):
        sealer.open(sealed, "RESIDENT#b")
    tampered = {**sealed, "ct": base64.b64encode(b"x" + base64.b64decode(sealed["ct"])[1:]).decode()}
    with pytest.raises(InvalidTag):
        sealer.open(tampered, "RESIDENT#a")
    keys = {sealer.seal(fields, "RESIDENT#a")["edk"] for _ in range(4)}
    assert len(keys) >= 2  # a data key serves at most max_uses seals


def test_given_kms_then_data_keys_are_generated_and_unwrapped_with_the_encryption_context(aws: None) -> None:
    from smartzone.repositories.clients import client
    from smartzone.repositories.personal_data import KmsWrapper, Sealer

    key_id = client("kms").create_key(Description="personal data")["KeyMetadata"]["KeyId"]
    client("kms").create_alias(AliasName="alias/test-personal-data", TargetKeyId=key_id)
    sealer = Sealer(KmsWrapper("alias/test-personal-data"))
    sealed = sealer.seal({"phone": "13812340001"}, "RESIDENT#k")
    assert sealed["edk"].startswith("kms:")
    fresh = Sealer(KmsWrapper("alias/test-personal-data"))
    assert fresh.open(sealed, "RESIDENT#k") == {"phone": "13812340001"}
