"""Form definitions (``FORM#<form_id>``): the head, every version, and the assignments.

- ``HEAD``: the current version's full definition and the form's status; gsi1
  ``DEPTFORMS#<department>`` / form id (a department's forms), gsi2 ``FORMS`` / form id (all).
- ``V#<000001>``: each version as created (immutable; submissions name their version).
- ``ASSIGN#GRID#<grid>`` / ``ASSIGN#COMMUNITY#<name>``: gsi1 ``GRIDFORMS#<grid>`` or
  ``COMMUNITYFORMS#<name>`` / form id, so a grid worker's forms are key queries. An assignment a
  new version drops keeps its item but loses its index keys.

Creating a form and adding a version are each one ``TransactWriteItems`` (head conditioned on
absence, or on the version read, so concurrent editors get 409).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.forms import FormDefinition, FormStatus
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

HEAD = "HEAD"
BATCH_GET_LIMIT = 100


class FormConflict(Exception):
    """The form exists already, or changed since it was read (answered 409)."""


def form_key(form_id: str, sk: str = HEAD) -> dict[str, str]:
    return {"pk": f"FORM#{form_id}", "sk": sk}


def version_sk(version: int) -> str:
    return f"V#{version:06d}"


def _assignments(form: FormDefinition) -> dict[str, dict[str, str]]:
    """Assignment sort key → its gsi1 keys."""
    out = {
        f"ASSIGN#GRID#{grid}": {"gsi1pk": f"GRIDFORMS#{grid}", "gsi1sk": form.form_id}
        for grid in form.assigned_grids
    }
    for community in form.assigned_communities:
        out[f"ASSIGN#COMMUNITY#{community}"] = {
            "gsi1pk": f"COMMUNITYFORMS#{community}",
            "gsi1sk": form.form_id,
        }
    return out


def _definition(form: FormDefinition) -> dict[str, Any]:
    return form.model_dump(mode="json", by_alias=True)


class FormRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # -- writes -----------------------------------------------------------------------------------
    def _put(self, item: dict[str, Any], condition: str | None = None) -> dict[str, Any]:
        op: dict[str, Any] = {"TableName": self.table_name, "Item": to_item(item)}
        if condition:
            op["ConditionExpression"] = condition
        return {"Put": op}

    def _head_item(self, form: FormDefinition) -> dict[str, Any]:
        return {
            **form_key(form.form_id),
            "entity": "form",
            "form_id": form.form_id,
            "department_id": form.department_id,
            "version": form.version,
            "status": form.status.value,
            "definition": _definition(form),
            "gsi1pk": f"DEPTFORMS#{form.department_id}",
            "gsi1sk": form.form_id,
            "gsi2pk": "FORMS",
            "gsi2sk": form.form_id,
        }

    def _version_op(self, form: FormDefinition) -> dict[str, Any]:
        item = {
            **form_key(form.form_id, version_sk(form.version)),
            "entity": "form_version",
            "definition": _definition(form),
        }
        return self._put(item, "attribute_not_exists(pk)")

    def _assignment_ops(self, form: FormDefinition, before: FormDefinition | None) -> list[dict[str, Any]]:
        ops = [
            self._put({**form_key(form.form_id, sk), "entity": "form_assignment", **index})
            for sk, index in _assignments(form).items()
        ]
        if before is not None:
            for sk in sorted(set(_assignments(before)) - set(_assignments(form))):
                ops.append(
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": to_item(form_key(form.form_id, sk)),
                            "UpdateExpression": "REMOVE gsi1pk, gsi1sk",
                        }
                    }
                )
        return ops

    def _transact(self, ops: list[dict[str, Any]], conflict: str) -> None:
        try:
            client("dynamodb").transact_write_items(TransactItems=ops)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise FormConflict(conflict) from exc
            raise

    def create(self, form: FormDefinition) -> FormDefinition:
        """Store version 1 (``FormConflict`` when the form id is taken)."""
        ops = [
            self._put(self._head_item(form), "attribute_not_exists(pk)"),
            self._version_op(form),
            *self._assignment_ops(form, None),
        ]
        self._transact(ops, f"form {form.form_id} exists already")
        return form

    def add_version(self, form: FormDefinition, before: FormDefinition) -> FormDefinition:
        """Store ``form`` (version ``before.version + 1``) as the current version."""
        head = self._put(self._head_item(form), "version = :v AND #st = :active")
        head["Put"]["ExpressionAttributeValues"] = to_item({":v": before.version, ":active": "active"})
        head["Put"]["ExpressionAttributeNames"] = {"#st": "status"}
        ops = [head, self._version_op(form), *self._assignment_ops(form, before)]
        self._transact(ops, f"form {form.form_id} changed meanwhile (now past version {before.version})")
        return form

    def retire(self, form: FormDefinition) -> FormDefinition:
        retired = form.model_copy(update={"status": FormStatus.RETIRED})
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key=to_item(form_key(form.form_id)),
                UpdateExpression="SET #st = :r, #def.#st = :r",
                ConditionExpression="version = :v",
                ExpressionAttributeNames={"#st": "status", "#def": "definition"},
                ExpressionAttributeValues=to_item({":r": "retired", ":v": form.version}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise FormConflict(f"form {form.form_id} changed meanwhile") from exc
            raise
        return retired

    # -- reads ------------------------------------------------------------------------------------
    def get(self, form_id: str, version: int | None = None) -> FormDefinition | None:
        """The current version (with its status), or one stored version."""
        sk = HEAD if version is None else version_sk(version)
        item = (
            client("dynamodb")
            .get_item(TableName=self.table_name, Key=to_item(form_key(form_id, sk)))
            .get("Item")
        )
        if not item:
            return None
        return FormDefinition.model_validate(from_item(item)["definition"])

    def many(self, form_ids: Iterable[str]) -> list[FormDefinition]:
        """Current versions of these forms (BatchGetItem), in form-id order."""
        ids = sorted(set(form_ids))
        found: list[FormDefinition] = []
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [to_item(form_key(i)) for i in ids[start : start + BATCH_GET_LIMIT]]
                }
            }
            while request:
                response = client("dynamodb").batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found.append(FormDefinition.model_validate(from_item(item)["definition"]))
                request = response.get("UnprocessedKeys") or {}
        return sorted(found, key=lambda f: f.form_id)

    def _query_ids(self, index: str, partition: str) -> list[str]:
        ids: list[str] = []
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": f"{index}pk = :p",
            "ExpressionAttributeValues": to_item({":p": partition}),
            "ProjectionExpression": "form_id, gsi1sk, gsi2sk",
        }
        while True:
            page = client("dynamodb").query(**request)
            for item in page.get("Items", []):
                data = from_item(item)
                ids.append(str(data.get(f"{index}sk") or data.get("form_id")))
            if "LastEvaluatedKey" not in page:
                return ids
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def all_forms(self) -> list[FormDefinition]:
        return self.many(self._query_ids("gsi2", "FORMS"))

    def of_department(self, department_id: str) -> list[FormDefinition]:
        return self.many(self._query_ids("gsi1", f"DEPTFORMS#{department_id}"))

    def assigned(self, grids: Iterable[str], communities: Iterable[str]) -> list[FormDefinition]:
        ids: set[str] = set()
        for grid in sorted(set(grids)):
            ids.update(self._query_ids("gsi1", f"GRIDFORMS#{grid}"))
        for community in sorted(set(communities)):
            ids.update(self._query_ids("gsi1", f"COMMUNITYFORMS#{community}"))
        return self.many(ids)
