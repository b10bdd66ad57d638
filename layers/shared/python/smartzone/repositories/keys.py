"""The single-table key design. Every item has ``pk``/``sk``; two overloaded GSIs serve the queries.

| item          | pk                    | sk                        | gsi1pk / gsi1sk                        | gsi2pk / gsi2sk                      |
|---------------|-----------------------|---------------------------|----------------------------------------|--------------------------------------|
| device        | DEVICE#<device_id>    | DEVICE                    | GRIDDEVICES#<grid> / <device_id>       | DEVICES / <device_id>                |
| alarm         | DEVICE#<device_id>    | ALARM#<type>#<raised iso> | –                                      | –                                    |
| grid          | GRID#<grid_id>        | GRID                      | –                                      | GRIDS / <grid_id>                    |
| work order    | ORDER#<order_id>      | ORDER                     | GRIDORDERS#<grid> / <created>#<id>     | ORDERSTATUS#<status> / <created>#<id>|

Streams: the outbox dispatcher's event-source mapping filters on ``pk`` beginning ``ORDER#``.
"""

from __future__ import annotations

from collections.abc import Iterable

GSI1 = "gsi1"
GSI2 = "gsi2"
ORDER_PK_PREFIX = "ORDER#"


def device_key(device_id: str) -> dict[str, str]:
    return {"pk": f"DEVICE#{device_id}", "sk": "DEVICE"}


def alarm_key(device_id: str, alarm_type: str, raised_iso: str) -> dict[str, str]:
    return {"pk": f"DEVICE#{device_id}", "sk": f"ALARM#{alarm_type}#{raised_iso}"}


def grid_key(grid_id: str) -> dict[str, str]:
    return {"pk": f"GRID#{grid_id}", "sk": "GRID"}


def order_key(order_id: str) -> dict[str, str]:
    return {"pk": f"{ORDER_PK_PREFIX}{order_id}", "sk": "ORDER"}


def device_index_keys(device_id: str, grid_id: str) -> dict[str, str]:
    return {
        "gsi1pk": f"GRIDDEVICES#{grid_id}",
        "gsi1sk": device_id,
        "gsi2pk": "DEVICES",
        "gsi2sk": device_id,
    }


def grid_index_keys(grid_id: str) -> dict[str, str]:
    return {"gsi2pk": "GRIDS", "gsi2sk": grid_id}


def order_index_keys(order_id: str, grid_id: str, status: str, created_at: str) -> dict[str, str]:
    sort = f"{created_at}#{order_id}"
    return {
        "gsi1pk": f"GRIDORDERS#{grid_id}",
        "gsi1sk": sort,
        "gsi2pk": f"ORDERSTATUS#{status}",
        "gsi2sk": sort,
    }


# -- issue 3: users, inbox, statistics, assignee and due indexes ---------------------------------
# | user          | USER#<username>       | USER                      | DISPATCHERS / <username> (dispatchers) | USERS / <username>    |
# | unread entry  | (inbox entry)         |                           | UNREAD#<username> / <sort key> (until read)                   |
# | inbox entry   | INBOX#<username>      | <event at>#<event_id>     | –                              | –                             |
# | stats         | STATS#<yyyy-mm-dd>    | COUNTS / HIST#<stage>     | –                              | –                             |
# | event marker  | EVENT#<event_id>      | <sink>                    | (TTL ``expires_at``)           |                               |
# gsi3: orders by assignee (ASSIGNEE#<username> / <created>#<id>); devices by last heartbeat
#       (SEEN#<grid> / <heartbeat iso>#<device_id>) for offline detection.
# gsi4: open orders by their next SLA deadline (DUE / <due iso>#<id>); removed when final.
GSI3 = "gsi3"
GSI4 = "gsi4"


def user_key(username: str) -> dict[str, str]:
    return {"pk": f"USER#{username}", "sk": "USER"}


def user_index_keys(username: str, roles: Iterable[str] = ()) -> dict[str, str]:
    """All users on gsi2; dispatchers also on gsi1 (``DISPATCHERS``), so escalations find them."""
    index = {"gsi2pk": "USERS", "gsi2sk": username}
    if "dispatcher" in roles:
        index.update({"gsi1pk": "DISPATCHERS", "gsi1sk": username})
    return index


def inbox_key(username: str, at_iso: str, event_id: str) -> dict[str, str]:
    return {"pk": f"INBOX#{username}", "sk": f"{at_iso}#{event_id}"}


def stats_key(day: str, part: str) -> dict[str, str]:
    return {"pk": f"STATS#{day}", "sk": part}


def event_marker_key(event_id: str, sink: str) -> dict[str, str]:
    return {"pk": f"EVENT#{event_id}", "sk": sink}


def assignee_index_keys(username: str, order_id: str, created_at: str) -> dict[str, str]:
    return {"gsi3pk": f"ASSIGNEE#{username}", "gsi3sk": f"{created_at}#{order_id}"}


def seen_index_keys(grid_id: str, device_id: str, heartbeat_iso: str) -> dict[str, str]:
    return {"gsi3pk": f"SEEN#{grid_id}", "gsi3sk": f"{heartbeat_iso}#{device_id}"}


def due_index_keys(order_id: str, due_iso: str) -> dict[str, str]:
    return {"gsi4pk": "DUE", "gsi4sk": f"{due_iso}#{order_id}"}


# -- issue 5: the camera registry ------------------------------------------------------------------
# | camera        | CAMERA#<camera_id>    | CAMERA                    | GRIDCAMERAS#<grid> / <camera_id>       | CAMERAS / <camera_id> |
# gsi3: cameras by kind (CAMERAKIND#<kind> / <camera_id>).
# Grid boundaries (routing by location) are the attribute ``boundary`` of the grid item (GeoJSON, WGS-84).


def camera_key(camera_id: str) -> dict[str, str]:
    return {"pk": f"CAMERA#{camera_id}", "sk": "CAMERA"}


def camera_index_keys(camera_id: str, grid_id: str, kind: str) -> dict[str, str]:
    return {
        "gsi1pk": f"GRIDCAMERAS#{grid_id}",
        "gsi1sk": camera_id,
        "gsi2pk": "CAMERAS",
        "gsi2sk": camera_id,
        "gsi3pk": f"CAMERAKIND#{kind}",
        "gsi3sk": camera_id,
    }


# -- issue 8: the data catalogue and sharing ---------------------------------------------------------
# | resource      | CATALOGUE#<code>      | RESOURCE                  | CATDEPT#<department> / <code>          | CATALOGUE / <code>    |
# | share request | SHAREREQ#<request_id> | REQUEST                   | SHAREREQBY#<requester> / <created>#<id> | SHAREREQTO#<provider> / <created>#<id> |
# | grant         | GRANT#<department>    | <code>#<request_id>       | –                                      | –                     |
# | access log    | ACCESSLOG#<code>      | <at iso>#<entry id>       | gsi3: ACCESSBY#<department> / <at iso>#<entry id>               |
# (resource codes contain "/", e.g. CATALOGUE#210007000/000012; see domain/catalogue.py.)


def catalogue_key(code: str) -> dict[str, str]:
    return {"pk": f"CATALOGUE#{code}", "sk": "RESOURCE"}


def catalogue_index_keys(code: str, department_id: str) -> dict[str, str]:
    return {"gsi1pk": f"CATDEPT#{department_id}", "gsi1sk": code, "gsi2pk": "CATALOGUE", "gsi2sk": code}


def share_request_key(request_id: str) -> dict[str, str]:
    return {"pk": f"SHAREREQ#{request_id}", "sk": "REQUEST"}


def grant_key(department_id: str, resource_code: str, request_id: str) -> dict[str, str]:
    return {"pk": f"GRANT#{department_id}", "sk": f"{resource_code}#{request_id}"}


# -- issue 5: detections (merge state, daily counters, webhook replay guard) -----------------------
# | merge state   | DETECT#<camera_id>    | STATE#<type>              | DETTRANSIENT / <due iso>#<camera>#<type> (transient, open) | – |
# | det. counters | DETCOUNT#<day>        | <camera_id>#<type>        | –                                      | –                     |
# | webhook nonce | WEBHOOK#<vendor_id>   | NONCE#<signature>         | (TTL ``expires_at``)                   |                       |


def detection_state_key(camera_id: str, detection_type: str) -> dict[str, str]:
    return {"pk": f"DETECT#{camera_id}", "sk": f"STATE#{detection_type}"}


def transient_index_keys(due_iso: str, camera_id: str, detection_type: str) -> dict[str, str]:
    return {"gsi1pk": "DETTRANSIENT", "gsi1sk": f"{due_iso}#{camera_id}#{detection_type}"}


def detection_counter_key(day: str, camera_id: str, detection_type: str) -> dict[str, str]:
    return {"pk": f"DETCOUNT#{day}", "sk": f"{camera_id}#{detection_type}"}


def webhook_nonce_key(vendor_id: str, signature: str) -> dict[str, str]:
    return {"pk": f"WEBHOOK#{vendor_id}", "sk": f"NONCE#{signature}"}


# -- issue 7: residents, review queue, steward decisions; the audit log ------------------------------
# (functions in smartzone/repositories/residents.py and audit.py; personal values sealed, see personal_data.py)
# | resident      | RESIDENT#<id_key>     | RESIDENT                  | RESGRID#<grid> / <id_key>              | RESCOMMUNITY#<community> / <id_key> |
# | res. category | RESIDENT#<id_key>     | CAT#<category>            | gsi3: RESCATEGORY#<category> / <grid>#<id_key>                  |
# | res. counts   | RESCOUNTS             | <dim>#<value>             | – (dims: total, grid, community, category, gridcategory)         |
# | review item   | REVIEW#<item_id>      | REVIEW                    | REVIEWS#<status> / <reason>#<item_id>  | RESREVIEWS#<id_key> / <item_id> |
# | steward dec.  | DECISION#<id>         | DECISION                  | DECISIONS / <decided_at>#<id>          | RESDECISIONS#<id_key> / <id>   |
# | audit entry   | AUDIT#<yyyy-mm-dd>    | <at iso>#<entry_id>       | – (TTL ``expires_at`` = at + audit_retention_days)              |


# -- issue 6: forms, facts, submissions, export jobs --------------------------------------------------
# (functions in smartzone/repositories/forms.py, facts.py, submissions.py, exports.py; docs/forms.md)
# | form head     | FORM#<form_id>        | HEAD                      | DEPTFORMS#<department> / <form_id>     | FORMS / <form_id>     |
# | form version  | FORM#<form_id>        | V#<000001>                | –                                      | –                     |
# | assignment    | FORM#<form_id>        | ASSIGN#GRID#<grid> / ASSIGN#COMMUNITY#<name> | GRIDFORMS#<grid> or COMMUNITYFORMS#<name> / <form_id> | – |
# | fact          | FACT#<subject key>    | CUR#<fact code>           | –                                      | –                     |
# | fact history  | FACT#<subject key>    | HIST#<code>#<at iso>#<submission id or import:table> | –         | –                     |
# | submission    | SUBMISSION#<id>       | SUBMISSION                | FORMSUBS#<form_id> / <received>#<id>   | FORMGRIDSUBS#<form_id>#<grid> / <received>#<id> |
# | prefill stats | STATS#<yyyy-mm-dd>    | PREFILL                   | – (attributes <form>|<community>|<grid>|<outcome>)              |
# | export job    | EXPORT#<export_id>    | EXPORT                    | – (TTL ``expires_at``: 7 days)                                  |
