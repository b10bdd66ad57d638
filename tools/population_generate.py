"""Seeded synthetic population in 16 source tables, with known truth (never real people).

Every ID number uses a fake area code (county ``9x``, e.g. ``340291``) or a permit / foreign
prefix, with a valid check character. Realistic errors: lowercase ``x``, full-width digits, spaces
and hyphens, 15-digit numbers (2010 census), spreadsheet damage (scientific notation, trailing
``000``), ID typos, truncated and empty IDs, malformed rows, name typos, stale addresses (rows dated
before a move), old phone numbers, missing phones, sex / birth-date contradictions.

Writes ``<out>/<source>.csv`` (utf-8, utf-8-sig or gb18030) or ``.xlsx`` and ``<out>/truth.json``:
``persons`` (ID, expected golden fields and classification) and ``rows`` (per source, per data row:
the person index or -1, and the expected outcome ``m`` merged / ``q`` queued / ``r`` rejected).

Run: ``python -m tools.population_generate --persons 2000 --seed 7 --out /tmp/pop``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

from smartzone.domain.idnumbers import check_char, make_fake
from smartzone.population.sources import SourceSpec, load_specs

ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = ROOT / "events" / "population" / "sources"
CLASSIFICATION = ROOT / "events" / "population" / "classification.json"
DISTRICT = ROOT / "events" / "seed" / "district.json"
AS_OF = date(2024, 6, 30)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉力鹏飞宇浩然欣怡子涵梓轩雨晨思远"
ROADS = ["科技路", "创新大道", "高新大道", "长江路", "滨江大道", "银湖路", "学府路", "港湾路"]
ETHNIC = ["汉族"] * 19 + ["回族", "满族", "蒙古族", "壮族"]
FAKE_AREAS = ["340291", "340292", "340293", "340294"]
FLOATING_AREAS = {
    "320591": "江苏省苏州市",
    "410292": "河南省开封市",
    "510293": "四川省成都市",
    "360294": "江西省南昌市",
}
PERMIT_AREAS = {"810000": "香港特别行政区", "820000": "澳门特别行政区", "830000": "台湾省"}
FOREIGN_AREAS = ["934840", "931392", "944410"]
DISABILITY = ["一级", "二级", "三级", "四级"]
XLSX_SOURCES = ("police_hukou", "visit_2023")
ENCODINGS = {"census_2010": "gb18030", "pandemic_screening": "gb18030", "health_records": "utf-8-sig"}
ROW_DATES = {
    "visit_2021": (date(2021, 3, 1), date(2021, 9, 30)),
    "visit_2023": (date(2023, 3, 1), date(2023, 10, 31)),
    "vaccination": (date(2021, 3, 1), date(2022, 6, 30)),
    "pandemic_registration": (date(2022, 1, 1), date(2022, 4, 30)),
    "rental_registration": (date(2019, 1, 1), date(2024, 6, 29)),
}
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


class Person:
    """One generated person's truth."""

    id: str
    kind: str
    registered: bool
    hukou: str | None
    birth: date
    sex: str
    name: str
    ethnicity: str
    address: str
    compound: str
    grid: str
    old_address: str | None
    move: date | None
    phone: str
    old_phone: str | None
    phone_change: date | None
    alone: str
    disability: str | None
    low_income: bool
    point: tuple[float, float] | None = None


class Writer:
    """One source file (CSV or XLSX) being written, with the truth of each row."""

    def __init__(self, spec: SourceSpec, out: Path, xlsx: bool) -> None:
        self.spec = spec
        self.header = list(spec.columns) + ([spec.date_column] if spec.date_column else [])
        self.field_of = {c: f for c, f in spec.columns.items()}
        self.truth_person: list[int] = []
        self.truth_outcome: list[str] = []
        self.xlsx = xlsx
        if xlsx:
            from openpyxl import Workbook

            self.workbook = Workbook(write_only=True)
            self.sheet = self.workbook.create_sheet(spec.title[:30])
            self.sheet.append(self.header)
            self.path = out / f"{spec.file}.xlsx"
        else:
            self.path = out / f"{spec.file}.csv"
            self.handle: IO[str] = self.path.open(
                "w", encoding=ENCODINGS.get(spec.source, "utf-8"), newline=""
            )
            self.csv = csv.writer(self.handle)
            self.csv.writerow(self.header)

    def write(self, cells: list[Any], person: int, outcome: str) -> None:
        if self.xlsx:
            self.sheet.append(cells)
        else:
            self.csv.writerow(["" if c is None else c for c in cells])
        self.truth_person.append(person)
        self.truth_outcome.append(outcome)

    def close(self) -> None:
        if self.xlsx:
            self.workbook.save(self.path)
        else:
            self.handle.close()


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


class Generator:
    def __init__(self, seed: int, district: dict[str, Any], classification: dict[str, Any]) -> None:
        self.rng = random.Random(seed)
        self.ids: set[str] = set()
        self.compounds = [(a["contains"], a["grid_id"], a["community"]) for a in classification["addresses"]]
        self.boundaries = district["boundaries"]

    def _unique_id(self, area: str, born: date) -> str:
        while True:
            number = make_fake(area, born, self.rng.randrange(1000))
            if number not in self.ids:
                self.ids.add(number)
                return number

    def _address(self) -> tuple[str, str, str]:
        compound, grid, _community = self.rng.choice(self.compounds)
        r = self.rng
        text = f"示范高新区{r.choice(ROADS)}{r.randint(1, 300)}号{compound}{r.randint(1, 30)}栋{r.randint(1, 28)}0{r.randint(1, 4)}室"
        return text, compound, grid

    def _point(self, grid: str) -> tuple[float, float]:
        from smartzone.domain import geo

        geometry = self.boundaries[grid]
        box = geo.bbox(geometry)
        while True:
            lon = round(self.rng.uniform(box[0], box[2]), 6)
            lat = round(self.rng.uniform(box[1], box[3]), 6)
            if geo.contains(geometry, lon, lat):
                return lon, lat

    def person(self) -> Person:
        r = self.rng
        p = Person()
        p.birth = _day(r, date(1930, 1, 1), date(2023, 12, 31))
        roll = r.random()
        if roll < 0.01:
            area = r.choice(list(PERMIT_AREAS))
            p.kind, p.registered, p.hukou = "permit", False, PERMIT_AREAS[area]
        elif roll < 0.015:
            area = r.choice(FOREIGN_AREAS)
            p.kind, p.registered, p.hukou = "foreign", False, None
        elif roll < 0.75:
            area = r.choice(FAKE_AREAS)
            p.kind, p.registered = "resident", True
            p.hukou = f"安徽省芜湖市示范高新区{r.choice(ROADS)}{r.randint(1, 300)}号"
        else:
            area = r.choice(list(FLOATING_AREAS))
            p.kind, p.registered = "resident", False
            p.hukou = f"{FLOATING_AREAS[area]}{r.choice('东南西北')}城区{r.randint(1, 99)}号"
        p.id = self._unique_id(area, p.birth)
        p.sex = "male" if int(p.id[16]) % 2 else "female"
        p.name = r.choice(SURNAMES) + "".join(r.choice(GIVEN) for _ in range(r.choice((1, 2, 2))))
        p.ethnicity = r.choice(ETHNIC)
        p.address, p.compound, p.grid = self._address()
        p.old_address, p.move = None, None
        if r.random() < 0.2:
            p.old_address = self._address()[0]
            p.move = _day(r, date(2015, 1, 1), date(2024, 6, 1))
        p.phone = "1" + r.choice("3589") + "".join(r.choice("0123456789") for _ in range(9))
        p.old_phone, p.phone_change = None, None
        if r.random() < 0.25:
            p.old_phone = "1" + r.choice("3589") + "".join(r.choice("0123456789") for _ in range(9))
            p.phone_change = _day(r, date(2016, 1, 1), date(2024, 1, 1))
        age = AS_OF.year - p.birth.year
        p.alone = "true" if age >= 60 and r.random() < 0.3 else "false"
        p.disability = r.choice(DISABILITY) if r.random() < 0.04 else None
        p.low_income = r.random() < 0.05
        return p


def _memberships(p: Person, rng: random.Random) -> list[str]:
    age = AS_OF.year - p.birth.year
    chosen = ["police_hukou" if p.registered else "police_floating"]
    odds = {
        "census_2020": 0.85 if p.birth < date(2020, 11, 1) else 0,
        "census_2010": 0.6 if p.birth < date(2010, 11, 1) else 0,
        "visit_2021": 0.5,
        "visit_2023": 0.6,
        "health_records": 0.8,
        "vaccination": 0.7,
        "pandemic_registration": 0.6,
        "pandemic_screening": 0.5,
        "civil_low_income": 1.0 if p.low_income else 0,
        "civil_elderly": 0.9 if age >= 70 else 0,
        "disability": 1.0 if p.disability else 0,
        "social_security": 0.6 if age >= 18 else 0,
        "education": 0.9 if 6 <= age <= 18 else 0,
        "rental_registration": 0.7 if not p.registered else 0,
    }
    chosen += [s for s, odd in odds.items() if odd and rng.random() < odd]
    return chosen


def generate(persons: int, seed: int, out: Path, *, xlsx: tuple[str, ...] = XLSX_SOURCES) -> dict[str, Any]:
    """Write the 16 tables and ``truth.json``; return the truth."""
    out.mkdir(parents=True, exist_ok=True)
    specs = {s.source: s for s in load_specs(SPECS_DIR)}
    district = json.loads(DISTRICT.read_text(encoding="utf-8"))
    classification = json.loads(CLASSIFICATION.read_text(encoding="utf-8"))
    gen = Generator(seed, district, classification)
    rng = gen.rng
    writers = {name: Writer(spec, out, name in xlsx) for name, spec in specs.items()}
    truth_persons: list[dict[str, Any]] = []
    for index in range(persons):
        p = gen.person()
        rows: list[tuple[str, date, dict[str, Any], Any, str]] = []
        for source in _memberships(p, rng):
            spec = specs[source]
            span = ROW_DATES.get(source)
            day = _day(rng, *span) if span else spec.data_date
            if source == "visit_2023":
                p.point = gen._point(p.grid)
            id_cell, outcome = _id_cell(p, source, source in xlsx, rng)
            rows.append((source, day, _values(p, spec, day, rng), id_cell, outcome))
        truth_persons.append(_expected(p, [(s, d, v) for s, d, v, _, o in rows if o == "m"]))
        for source, day, values, id_cell, outcome in rows:
            _write_row(writers[source], p, index, day, values, id_cell, outcome, rng)
        if rng.random() < 0.002:  # a malformed row in a random table
            writer = writers[rng.choice(sorted(writers))]
            cells = [] if rng.random() < 0.5 else ["x"] * (len(writer.header) + 2)
            writer.write(cells, -1, "r")
    for writer in writers.values():
        writer.close()
    truth = {
        "seed": seed,
        "persons": truth_persons,
        "rows": {
            name: {"person": w.truth_person, "outcome": "".join(w.truth_outcome)}
            for name, w in writers.items()
        },
    }
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False), encoding="utf-8")
    return truth


def _values(p: Person, spec: SourceSpec, day: date, rng: random.Random) -> dict[str, Any]:
    """Canonical field → value as this source knew it on ``day`` (errors included)."""
    fields = set(spec.columns.values())
    values: dict[str, Any] = {}
    if "name" in fields:
        name = p.name
        if spec.priority >= 4 and rng.random() < 0.02:
            name = name[0] + rng.choice(GIVEN) + name[2:]
        values["name"] = name
    if "sex" in fields:
        sex = p.sex
        if spec.priority >= 3 and rng.random() < 0.01:
            sex = "female" if sex == "male" else "male"
        values["sex"] = {"male": rng.choice(("男", "男", "1")), "female": rng.choice(("女", "女", "2"))}[sex]
    if "birth_date" in fields:
        born = p.birth
        if spec.priority >= 3 and rng.random() < 0.01:
            born = born + timedelta(days=rng.choice((-1, 1, 31)))
        values["birth_date"] = rng.choice(
            (born.isoformat(), f"{born:%Y%m%d}", f"{born.year}年{born.month}月{born.day}日")
        )
    if "phone" in fields and rng.random() >= 0.15:
        phone = p.old_phone if p.old_phone and p.phone_change and day < p.phone_change else p.phone
        values["phone"] = phone if rng.random() < 0.8 else f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"
    if "address" in fields:
        values["address"] = p.old_address if p.move and day < p.move else p.address
    if "hukou_address" in fields and p.hukou:
        values["hukou_address"] = p.hukou
    if "ethnicity" in fields:
        values["ethnicity"] = p.ethnicity
    if "living_alone" in fields:
        values["living_alone"] = "是" if p.alone == "true" else "否"
    if "disability_level" in fields and p.disability:
        values["disability_level"] = p.disability
    return values


def _expected(p: Person, rows: list[tuple[str, date, dict[str, Any]]]) -> dict[str, Any]:
    """The golden fields a correct merge must produce from the rows that merge (fields some row carries)."""
    phones = [(day, v["phone"]) for _, day, v in rows if "phone" in v]
    fields: dict[str, str] = {"name": p.name, "sex": p.sex, "birth_date": p.birth.isoformat()}
    if phones:
        latest = max(d for d, _ in phones)
        fields["phone"] = (p.old_phone if p.phone_change and latest < p.phone_change else p.phone) or p.phone
    fields["address"] = p.address
    if p.hukou and any("hukou_address" in v for _, _, v in rows):
        fields["hukou_address"] = p.hukou
    if any("ethnicity" in v for _, _, v in rows):
        fields["ethnicity"] = p.ethnicity
    if any("living_alone" in v for _, _, v in rows):
        fields["living_alone"] = p.alone
    if p.disability and any("disability_level" in v for _, _, v in rows):
        fields["disability_level"] = p.disability
    if any(s == "civil_low_income" for s, _, _ in rows):  # the table's constant field
        fields["low_income"] = "true"
    age = AS_OF.year - p.birth.year - ((AS_OF.month, AS_OF.day) < (p.birth.month, p.birth.day))
    return {
        "id_number": p.id,
        "kind": p.kind,
        "fields": fields,
        "residence": "registered" if p.registered else "floating",
        "grid_id": p.grid,
        "age": age,
    }


def _id_cell(p: Person, source: str, xlsx: bool, rng: random.Random) -> tuple[Any, str]:
    """The ID as this row holds it, and the row's expected outcome (``m`` merged, ``q`` queued).

    The police tables are the anchor of the truth: their IDs only get the benign variants.
    """
    roll = rng.random()
    anchor = source.startswith("police_")
    id_cell: Any = p.id
    outcome = "m"
    if source == "census_2010" and p.kind == "resident" and p.birth.year < 2000 and roll < 0.7:
        id_cell = p.id[:6] + p.id[8:17]  # the first-generation 15-digit number
    elif roll < 0.014 and anchor:
        pass
    elif roll < 0.005:  # spreadsheet damage
        outcome = "q"
        if xlsx and p.id.isdigit():
            id_cell = float(p.id)  # Excel keeps 15 significant digits
        elif rng.random() < 0.5:
            id_cell = f"{int(p.id[:7]) / 10**6:.6f}".rstrip("0") + "E+17"
        else:
            id_cell = p.id[:15] + "000"
            if check_char(id_cell[:17]) == id_cell[17]:
                id_cell, outcome = p.id, "m"
    elif roll < 0.010:  # a typo: one digit substituted
        pos = rng.randrange(17)
        digit = str((int(p.id[pos]) + rng.randint(1, 9)) % 10)
        id_cell, outcome = p.id[:pos] + digit + p.id[pos + 1 :], "q"
    elif roll < 0.012:
        id_cell, outcome = (
            p.id[: rng.choice((8, 10, 12, 14, 16, 17))],
            "q",
        )  # never 15: that would be a 15-digit number
    elif roll < 0.014:
        id_cell, outcome = "", "q"
    elif roll < 0.04:
        id_cell = p.id.translate(FULL_WIDTH)
    elif roll < 0.06:
        id_cell = f"{p.id[:6]} {p.id[6:14]} {p.id[14:]}" if rng.random() < 0.5 else f"{p.id[:6]}-{p.id[6:]}"
    if isinstance(id_cell, str) and id_cell.endswith("X") and rng.random() < 0.5:
        id_cell = id_cell[:-1] + "x"
    return id_cell, outcome


def _write_row(
    writer: Writer, p: Person, index: int, day: date, values: dict[str, Any], id_cell: Any, outcome: str,
    rng: random.Random,
) -> None:  # fmt: skip
    cells: list[Any] = []
    for field in writer.field_of.values():
        if field == "id_number":
            cells.append(id_cell)
        elif field in ("lon", "lat") and p.point is not None:
            cells.append(p.point[0] if field == "lon" else p.point[1])
        else:
            cells.append(values.get(field, ""))
    if writer.spec.date_column:
        cells.append(day.isoformat() if rng.random() < 0.5 else f"{day:%Y/%m/%d}")
    writer.write(cells, index, outcome)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--csv-only", action="store_true", help="write every table as CSV")
    args = parser.parse_args(argv)
    truth = generate(args.persons, args.seed, args.out, xlsx=() if args.csv_only else XLSX_SOURCES)
    rows = sum(len(r["outcome"]) for r in truth["rows"].values())
    print(f"{args.persons} persons, {rows} rows in 16 tables → {args.out}")


if __name__ == "__main__":
    main()
