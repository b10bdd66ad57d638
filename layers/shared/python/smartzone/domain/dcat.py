"""The catalogue as DCAT (W3C Data Catalog Vocabulary, version 3) in JSON-LD, and back.

One ``dcat:Catalog`` holds a ``dcat:Dataset`` per resource, each with one ``dcat:Distribution``.
Standard terms carry what they can (``dct:identifier``, ``dct:title``, ``dct:description``,
``dct:publisher``, ``dct:issued``, ``dct:modified`` (last load), ``dct:accrualPeriodicity`` and
``dct:accessRights`` from the EU authority tables, ``dcat:theme``, ``dcat:mediaType``); the
information items are a CSVW table schema (``csvw:tableSchema``/``csvw:column``). What neither
vocabulary has is in the project namespace ``sz:`` (sharing type, condition, legal basis, method,
classification and provider codes, personal-data class and masking rule, format). The import reads
the ``sz:`` terms where a standard term is lossy, so that export → import gives every entry back
unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from smartzone.domain.catalogue import (
    CLASSIFICATIONS,
    Resource,
    ResourceFormat,
    SharingType,
    UpdateCycle,
)

SZ = "https://smartzone.example.gov.cn/ns/catalogue#"
EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
EU_ACCESS = "http://publications.europa.eu/resource/authority/access-right/"
EU_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
DEFAULT_BASE = "https://smartzone.example.gov.cn/catalogue/"

CONTEXT: dict[str, Any] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "csvw": "http://www.w3.org/ns/csvw#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "sz": SZ,
}

FREQUENCY: dict[UpdateCycle, str] = {
    UpdateCycle.REALTIME: "CONT",
    UpdateCycle.HOURLY: "HOURLY",
    UpdateCycle.DAILY: "DAILY",
    UpdateCycle.WEEKLY: "WEEKLY",
    UpdateCycle.MONTHLY: "MONTHLY",
    UpdateCycle.QUARTERLY: "QUARTERLY",
    UpdateCycle.HALF_YEARLY: "ANNUAL_2",
    UpdateCycle.YEARLY: "ANNUAL",
    UpdateCycle.IRREGULAR: "IRREG",
}
ACCESS_RIGHTS: dict[SharingType, str] = {
    SharingType.UNCONDITIONAL: "PUBLIC",
    SharingType.CONDITIONAL: "RESTRICTED",
    SharingType.NOT_SHARED: "NON_PUBLIC",
}
"""DCAT-AP access rights: shared unconditionally among departments is the nearest to PUBLIC."""
MEDIA_TYPES: dict[ResourceFormat, str] = {
    ResourceFormat.CSV: "text/csv",
    ResourceFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ResourceFormat.JSON: "application/json",
    ResourceFormat.XML: "application/xml",
    ResourceFormat.DATABASE: "application/sql",
    ResourceFormat.API: "application/json",
}
FILE_TYPES: dict[ResourceFormat, str] = {
    ResourceFormat.CSV: "CSV",
    ResourceFormat.XLSX: "XLSX",
    ResourceFormat.JSON: "JSON",
    ResourceFormat.XML: "XML",
    ResourceFormat.DATABASE: "SQL",
    ResourceFormat.API: "JSON",
}
CSVW_TYPES = {
    "string": "string",
    "integer": "integer",
    "decimal": "decimal",
    "date": "date",
    "datetime": "dateTime",
    "boolean": "boolean",
}
_TYPES_BACK = {v: k for k, v in CSVW_TYPES.items()}


class DcatError(ValueError):
    """A document the import cannot read (names the dataset and the term)."""


def dataset_of(
    resource: Resource, base: str = DEFAULT_BASE, department_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One resource as a ``dcat:Dataset`` node."""
    names = department_names or {}
    publisher: dict[str, Any] = {
        "@id": f"{base}departments/{resource.department_id}",
        "@type": "foaf:Agent",
        "dct:identifier": resource.department_id,
        "sz:providerCode": resource.provider_code,
    }
    if resource.department_id in names:
        publisher["foaf:name"] = {"@value": names[resource.department_id], "@language": "zh"}
    columns = [
        {
            "@type": "csvw:Column",
            "csvw:name": item.column,
            "csvw:title": {"@value": item.name, "@language": "zh"},
            "csvw:datatype": CSVW_TYPES[item.type.value],
            "csvw:required": item.required,
            "sz:personalClass": item.personal_class.value,
            "sz:masking": item.rule.value,
            "sz:key": item.key,
        }
        for item in resource.items
    ]
    dataset: dict[str, Any] = {
        "@id": f"{base}resources/{resource.code}",
        "@type": "dcat:Dataset",
        "dct:identifier": resource.code,
        "dct:title": {"@value": resource.name, "@language": "zh"},
        "dct:description": {"@value": resource.summary, "@language": "zh"},
        "dct:publisher": publisher,
        "dct:issued": {"@value": resource.published_on.isoformat(), "@type": "xsd:date"},
        "dct:accrualPeriodicity": {"@id": EU_FREQUENCY + FREQUENCY[resource.update_cycle]},
        "dct:accessRights": {"@id": EU_ACCESS + ACCESS_RIGHTS[resource.sharing_type]},
        "dcat:theme": {
            "@id": f"{base}classification/{resource.classification}",
            "@type": "sz:Classification",
            "dct:identifier": resource.classification,
            "dct:title": {"@value": CLASSIFICATIONS[resource.classification], "@language": "zh"},
        },
        "sz:classification": resource.classification,
        "sz:updateCycle": resource.update_cycle.value,
        "sz:sharingType": resource.sharing_type.value,
        "csvw:tableSchema": {
            "@type": "csvw:Schema",
            "csvw:column": columns,
            "csvw:primaryKey": resource.key_columns,
        },
        "dcat:distribution": [
            {
                "@id": f"{base}resources/{resource.code}#distribution",
                "@type": "dcat:Distribution",
                "dct:format": {"@id": EU_FILE_TYPE + FILE_TYPES[resource.format]},
                "dcat:mediaType": MEDIA_TYPES[resource.format],
                "dcat:accessURL": {"@id": f"{base}resources/{resource.code}/data"},
                "sz:format": resource.format.value,
                "sz:sharingMethod": resource.sharing_method.value,
            }
        ],
    }
    if resource.condition is not None:
        dataset["sz:sharingCondition"] = {"@value": resource.condition, "@language": "zh"}
    if resource.legal_basis is not None:
        dataset["sz:legalBasis"] = {"@value": resource.legal_basis, "@language": "zh"}
    if resource.last_loaded_at is not None:
        dataset["dct:modified"] = {
            "@value": resource.last_loaded_at.isoformat().replace("+00:00", "Z"),
            "@type": "xsd:dateTime",
        }
    return dataset


def export_catalogue(
    resources: Iterable[Resource],
    *,
    base: str = DEFAULT_BASE,
    title: str = "智慧高新政务信息资源目录",
    department_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole catalogue as one JSON-LD document (compacted with :data:`CONTEXT`)."""
    return {
        "@context": CONTEXT,
        "@id": base,
        "@type": "dcat:Catalog",
        "dct:title": {"@value": title, "@language": "zh"},
        "dct:conformsTo": {"@id": "https://www.w3.org/TR/vocab-dcat-3/"},
        "dcat:dataset": [dataset_of(r, base, department_names) for r in resources],
    }


# -- import ----------------------------------------------------------------------------------------------
def _value(node: Any) -> Any:
    return node.get("@value") if isinstance(node, dict) else node


def _term(node: Mapping[str, Any], term: str, where: str) -> Any:
    if term not in node:
        raise DcatError(f"{where}: {term} is missing")
    return node[term]


def resource_of(dataset: Mapping[str, Any]) -> Resource:
    """A ``dcat:Dataset`` node (as :func:`dataset_of` writes it) back as a resource (validated)."""
    where = str(dataset.get("dct:identifier") or dataset.get("@id") or "dataset")
    publisher = _term(dataset, "dct:publisher", where)
    schema = _term(dataset, "csvw:tableSchema", where)
    distributions = _term(dataset, "dcat:distribution", where)
    distribution = distributions[0] if isinstance(distributions, list) and distributions else distributions
    if not isinstance(distribution, dict):
        raise DcatError(f"{where}: dcat:distribution is not a node")
    items = []
    for column in _term(schema, "csvw:column", where):
        datatype = _value(_term(column, "csvw:datatype", where))
        if datatype not in _TYPES_BACK:
            raise DcatError(f"{where}: csvw:datatype {datatype!r} is not one the catalogue knows")
        items.append(
            {
                "name": _value(_term(column, "csvw:title", where)),
                "column": _value(_term(column, "csvw:name", where)),
                "type": _TYPES_BACK[datatype],
                "personal_class": column.get("sz:personalClass", "none"),
                "masking": column.get("sz:masking"),
                "required": bool(column.get("csvw:required", False)),
                "key": bool(column.get("sz:key", False)),
            }
        )
    record: dict[str, Any] = {
        "code": _value(_term(dataset, "dct:identifier", where)),
        "name": _value(_term(dataset, "dct:title", where)),
        "department_id": _value(_term(publisher, "dct:identifier", where)),
        "provider_code": _value(_term(publisher, "sz:providerCode", where)),
        "summary": _value(_term(dataset, "dct:description", where)),
        "classification": _value(_term(dataset, "sz:classification", where)),
        "items": items,
        "format": _value(_term(distribution, "sz:format", where)),
        "update_cycle": _value(_term(dataset, "sz:updateCycle", where)),
        "sharing_type": _value(_term(dataset, "sz:sharingType", where)),
        "condition": _value(dataset.get("sz:sharingCondition")),
        "legal_basis": _value(dataset.get("sz:legalBasis")),
        "sharing_method": _value(_term(distribution, "sz:sharingMethod", where)),
        "published_on": _value(_term(dataset, "dct:issued", where)),
        "last_loaded_at": _value(dataset.get("dct:modified")),
    }
    try:
        return Resource.model_validate(record)
    except ValueError as exc:
        raise DcatError(f"{where}: {exc}") from exc


def import_catalogue(document: Mapping[str, Any]) -> list[Resource]:
    """Every dataset of a ``dcat:Catalog`` document, in document order."""
    if document.get("@type") != "dcat:Catalog":
        raise DcatError("the document is not a dcat:Catalog")
    datasets = document.get("dcat:dataset") or []
    if isinstance(datasets, dict):
        datasets = [datasets]
    return [resource_of(d) for d in datasets]
