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
