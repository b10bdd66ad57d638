"""Generates the demo data catalogue: ``python -m tools.catalogue_seed [--seed N] [--check]``.

Writes ``events/seed/catalogue.json`` (169 resources from the 13 departments of
``events/seed/district.json``) and the published JSON Schema
``docs/schemas/catalogue-resource.schema.json``. Same seed, same files; ``--check`` fails when either
file differs from what the generator writes (``make lint`` runs it). Every generated resource is
validated by the JSON Schema and the model, and the catalogue by :func:`check_catalogue`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from smartzone.domain.catalogue import (
    METHODS_FOR_FORMAT,
    Resource,
    ResourceFormat,
    SharingType,
    UpdateCycle,
    check_catalogue,
    next_code,
)
from smartzone.domain.catalogue_schema import RESOURCE_SCHEMA, schema_problems

DEFAULT_SEED = 8
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "events" / "seed" / "catalogue.json"
SCHEMA_DOC_PATH = ROOT / "docs" / "schemas" / "catalogue-resource.schema.json"
DISTRICT_PATH = ROOT / "events" / "seed" / "district.json"

# column: (信息项名称, type, personal class)
ITEMS: dict[str, tuple[str, str, str]] = {
    "person_name": ("姓名", "string", "name"),
    "id_number": ("公民身份号码", "string", "id_number"),
    "gender": ("性别", "string", "none"),
    "birth_date": ("出生日期", "date", "none"),
    "ethnicity": ("民族", "string", "none"),
    "phone": ("联系电话", "string", "phone"),
    "address": ("居住地址", "string", "address"),
    "reg_address": ("户籍地址", "string", "address"),
    "household_no": ("户号", "string", "other_personal"),
    "relation": ("与户主关系", "string", "none"),
    "grid_id": ("所属网格", "string", "none"),
    "community": ("所属社区", "string", "none"),
    "credit_code": ("统一社会信用代码", "string", "none"),
    "org_name": ("单位名称", "string", "none"),
    "legal_rep": ("法定代表人", "string", "name"),
    "legal_rep_id": ("法定代表人身份号码", "string", "id_number"),
    "contact_phone": ("联系人电话", "string", "phone"),
    "org_address": ("经营地址", "string", "none"),
    "industry": ("行业类别", "string", "none"),
    "reg_capital": ("注册资本（万元）", "decimal", "none"),
    "established_on": ("成立日期", "date", "none"),
    "licence_no": ("许可证编号", "string", "none"),
    "issued_on": ("发证日期", "date", "none"),
    "valid_until": ("有效期至", "date", "none"),
    "status": ("状态", "string", "none"),
    "case_no": ("案件编号", "string", "none"),
    "case_type": ("案件类别", "string", "none"),
    "occurred_at": ("发生时间", "datetime", "none"),
    "location": ("发生地点", "string", "none"),
    "lon": ("经度", "decimal", "none"),
    "lat": ("纬度", "decimal", "none"),
    "penalty_amount": ("罚没金额（元）", "decimal", "none"),
    "decided_on": ("决定日期", "date", "none"),
    "station_id": ("监测点编号", "string", "none"),
    "station_name": ("监测点名称", "string", "none"),
    "measured_at": ("监测时间", "datetime", "none"),
    "value": ("监测值", "decimal", "none"),
    "unit": ("计量单位", "string", "none"),
    "exceeded": ("是否超标", "boolean", "none"),
    "year": ("年度", "integer", "none"),
    "month": ("月份", "integer", "none"),
    "quantity": ("数量", "integer", "none"),
    "amount": ("金额（元）", "decimal", "none"),
    "area_sqm": ("面积（平方米）", "decimal", "none"),
    "building_id": ("房屋编码", "string", "none"),
    "project_name": ("项目名称", "string", "none"),
    "diagnosis": ("诊断结果", "string", "other_personal"),
    "vaccine": ("疫苗名称", "string", "none"),
    "institution": ("机构名称", "string", "none"),
    "staff_count": ("从业人数", "integer", "none"),
    "bed_count": ("床位数", "integer", "none"),
    "benefit_type": ("救助类别", "string", "none"),
    "bank_account": ("银行账号", "string", "other_personal"),
    "disability_level": ("残疾等级", "string", "other_personal"),
    "plate_no": ("号牌号码", "string", "other_personal"),
    "hazard_level": ("风险等级", "string", "none"),
    "inspected_on": ("检查日期", "date", "none"),
    "problem_count": ("发现问题数", "integer", "none"),
    "river": ("河道名称", "string", "none"),
    "water_level": ("水位（米）", "decimal", "none"),
    "crop": ("作物品种", "string", "none"),
    "farmer": ("经营主体", "string", "name"),
    "employer": ("用人单位", "string", "none"),
    "salary": ("月工资（元）", "decimal", "other_personal"),
    "insured_type": ("参保险种", "string", "none"),
    "indicator": ("指标名称", "string", "none"),
    "period": ("统计期", "string", "none"),
    "region": ("行政区划", "string", "none"),
    "alarm_type": ("警情类别", "string", "none"),
    "handled": ("是否处置", "boolean", "none"),
    "remarks": ("备注", "string", "none"),
}

KEY_COLUMNS = ("id_number", "credit_code", "case_no", "licence_no", "station_id", "building_id")
"""The first of these a resource has is its natural key (required)."""

# Resource specs per department: (name, classification, columns, format, cycle, sharing).
# sharing: "U" unconditional, "C" conditional, "N" not shared with its legal basis after "|".
Spec = tuple[str, str, str, str, str, str]
P = "person_name id_number gender birth_date"
ORG = "credit_code org_name legal_rep org_address"

SPECS: dict[str, list[Spec]] = {
    "public-security": [
        (
            "常住人口基本信息",
            "101",
            f"{P} ethnicity reg_address address household_no grid_id",
            "database",
            "daily",
            "C",
        ),
        ("流动人口居住登记信息", "101", f"{P} phone address grid_id valid_until", "database", "daily", "C"),
        ("户籍迁入迁出信息", "101", f"{P} reg_address decided_on remarks", "database", "daily", "C"),
        ("出生登记信息", "101", f"{P} reg_address household_no decided_on", "database", "daily", "C"),
        ("死亡注销信息", "101", f"{P} decided_on reg_address", "database", "daily", "C"),
        ("居民身份证办理信息", "105", f"{P} issued_on valid_until status", "database", "daily", "C"),
        (
            "治安案件信息",
            "307",
            "case_no case_type occurred_at location grid_id status",
            "database",
            "daily",
            "N|《中华人民共和国治安管理处罚法》第一百一十四条",
        ),
        (
            "刑事案件立案统计",
            "307",
            "year month case_type quantity region",
            "xlsx",
            "monthly",
            "N|《公安机关办理刑事案件程序规定》第一百四十九条",
        ),
        (
            "110接处警信息",
            "212",
            "case_no alarm_type occurred_at location lon lat handled",
            "api",
            "realtime",
            "C",
        ),
        (
            "机动车登记信息",
            "307",
            "plate_no person_name id_number issued_on status",
            "database",
            "daily",
            "C",
        ),
        ("旅馆业治安管理信息", "102", f"{ORG} licence_no bed_count status", "csv", "monthly", "U"),
        (
            "重点场所治安检查信息",
            "205",
            "org_name org_address inspected_on problem_count hazard_level",
            "csv",
            "weekly",
            "U",
        ),
        ("交通事故统计信息", "212", "year month location quantity case_type", "xlsx", "monthly", "U"),
    ],
    "health": [
        (
            "医疗机构执业登记信息",
            "202",
            "institution credit_code org_address licence_no bed_count staff_count valid_until",
            "csv",
            "monthly",
            "U",
        ),
        (
            "医师执业注册信息",
            "105",
            "person_name licence_no institution issued_on status",
            "csv",
            "monthly",
            "U",
        ),
        (
            "护士执业注册信息",
            "105",
            "person_name licence_no institution issued_on status",
            "csv",
            "monthly",
            "U",
        ),
        ("出生医学证明信息", "101", f"{P} institution issued_on", "database", "daily", "C"),
        ("死亡医学证明信息", "101", f"{P} diagnosis institution issued_on", "database", "daily", "C"),
        ("预防接种信息", "202", f"{P} vaccine institution issued_on", "database", "daily", "C"),
        (
            "法定传染病报告信息",
            "202",
            f"{P} diagnosis occurred_at address",
            "database",
            "realtime",
            "N|《中华人民共和国传染病防治法》第十二条、第六十八条",
        ),
        (
            "居民电子健康档案",
            "202",
            f"{P} phone address diagnosis",
            "database",
            "daily",
            "N|《中华人民共和国基本医疗卫生与健康促进法》第九十二条",
        ),
        ("家庭医生签约信息", "201", f"{P} phone institution issued_on valid_until", "json", "weekly", "C"),
        ("公共场所卫生许可信息", "204", f"{ORG} licence_no issued_on valid_until", "csv", "monthly", "U"),
        (
            "卫生监督执法信息",
            "204",
            "case_no org_name credit_code penalty_amount decided_on",
            "csv",
            "monthly",
            "U",
        ),
        ("医疗卫生资源统计", "202", "year institution bed_count staff_count region", "xlsx", "yearly", "U"),
        ("孕产妇健康管理信息", "202", f"{P} phone institution status", "database", "weekly", "C"),
    ],
    "civil-affairs": [
        ("婚姻登记信息", "105", f"{P} issued_on status reg_address", "database", "daily", "C"),
        (
            "最低生活保障对象信息",
            "203",
            f"{P} household_no address benefit_type amount bank_account",
            "database",
            "monthly",
            "C",
        ),
        ("特困人员救助供养信息", "203", f"{P} address benefit_type amount", "database", "monthly", "C"),
        ("临时救助信息", "203", f"{P} benefit_type amount decided_on", "csv", "monthly", "C"),
        (
            "残疾人两项补贴信息",
            "203",
            f"{P} disability_level amount bank_account",
            "database",
            "monthly",
            "C",
        ),
        ("高龄津贴发放信息", "203", f"{P} address amount month", "xlsx", "monthly", "C"),
        ("社会组织登记信息", "102", f"{ORG} established_on status", "csv", "monthly", "U"),
        (
            "养老机构信息",
            "201",
            "institution credit_code org_address bed_count staff_count licence_no",
            "csv",
            "quarterly",
            "U",
        ),
        ("殡葬服务信息", "201", "person_name id_number institution decided_on", "database", "daily", "C"),
        ("地名信息", "103", "region remarks lon lat decided_on", "json", "yearly", "U"),
        ("社区（村）基本信息", "210", "community region area_sqm quantity grid_id", "csv", "yearly", "U"),
        ("城乡社区服务设施信息", "210", "community institution org_address area_sqm", "csv", "yearly", "U"),
        (
            "留守老人关爱服务信息",
            "210",
            f"{P} phone address community",
            "xlsx",
            "quarterly",
            "N|《中华人民共和国个人信息保护法》第二十八条（敏感个人信息）",
        ),
    ],
    "housing": [
        ("房屋基础信息", "209", "building_id address area_sqm year grid_id", "database", "monthly", "U"),
        (
            "商品房预售许可信息",
            "209",
            "licence_no project_name org_name area_sqm issued_on",
            "csv",
            "weekly",
            "U",
        ),
        (
            "商品房网签备案信息",
            "209",
            "building_id person_name id_number area_sqm amount decided_on",
            "database",
            "daily",
            "C",
        ),
        (
            "存量房交易信息",
            "209",
            "building_id person_name id_number amount decided_on",
            "database",
            "daily",
            "C",
        ),
        ("住房公积金缴存信息", "203", f"{P} employer amount month", "database", "monthly", "C"),
        (
            "公共租赁住房保障信息",
            "203",
            f"{P} address household_no area_sqm amount",
            "database",
            "monthly",
            "C",
        ),
        ("建筑施工企业资质信息", "102", f"{ORG} licence_no issued_on valid_until", "csv", "monthly", "U"),
        (
            "建设工程施工许可信息",
            "209",
            "licence_no project_name org_name credit_code area_sqm issued_on",
            "csv",
            "weekly",
            "U",
        ),
        (
            "建设工程竣工验收备案信息",
            "209",
            "project_name org_name credit_code area_sqm decided_on",
            "csv",
            "monthly",
            "U",
        ),
        ("物业服务企业信息", "210", f"{ORG} contact_phone status", "csv", "quarterly", "U"),
        (
            "老旧小区改造项目信息",
            "209",
            "project_name community building_id amount status",
            "xlsx",
            "quarterly",
            "U",
        ),
        (
            "城镇危险房屋鉴定信息",
            "205",
            "building_id address hazard_level inspected_on",
            "csv",
            "monthly",
            "U",
        ),
        (
            "建筑工地扬尘监测信息",
            "211",
            "station_id project_name measured_at value unit exceeded",
            "api",
            "realtime",
            "U",
        ),
    ],
    "environment": [
        (
            "空气质量自动监测数据",
            "211",
            "station_id station_name measured_at indicator value unit exceeded",
            "api",
            "hourly",
            "U",
        ),
        (
            "地表水水质监测数据",
            "211",
            "station_id station_name river measured_at indicator value exceeded",
            "api",
            "daily",
            "U",
        ),
        (
            "重点排污单位自动监控数据",
            "211",
            "station_id org_name credit_code measured_at indicator value exceeded",
            "api",
            "realtime",
            "U",
        ),
        ("排污许可证信息", "211", f"{ORG} licence_no industry issued_on valid_until", "csv", "monthly", "U"),
        (
            "建设项目环境影响评价审批信息",
            "211",
            "project_name org_name credit_code decided_on status",
            "csv",
            "monthly",
            "U",
        ),
        (
            "环境行政处罚信息",
            "208",
            "case_no org_name credit_code penalty_amount decided_on",
            "csv",
            "monthly",
            "U",
        ),
        (
            "固体废物产生与转移信息",
            "211",
            "org_name credit_code year quantity unit",
            "xlsx",
            "quarterly",
            "C",
        ),
        ("危险废物经营许可信息", "211", f"{ORG} licence_no issued_on valid_until", "csv", "quarterly", "U"),
        (
            "噪声监测数据",
            "211",
            "station_id station_name measured_at value unit exceeded",
            "api",
            "hourly",
            "U",
        ),
        (
            "环境信访投诉信息",
            "210",
            "case_no person_name phone location occurred_at status",
            "database",
            "daily",
            "C",
        ),
        ("秸秆焚烧火点监测信息", "211", "case_no location lon lat occurred_at handled", "json", "daily", "U"),
        (
            "污染源普查信息",
            "211",
            "org_name credit_code industry indicator value year",
            "database",
            "yearly",
            "N|《全国污染源普查条例》第二十八条",
        ),
        (
            "生态环境执法检查信息",
            "211",
            "org_name credit_code inspected_on problem_count hazard_level",
            "csv",
            "monthly",
            "U",
        ),
    ],
    "market-supervision": [
        (
            "市场主体登记信息",
            "102",
            f"{ORG} industry reg_capital established_on status",
            "database",
            "daily",
            "U",
        ),
        (
            "个体工商户登记信息",
            "102",
            "credit_code org_name legal_rep legal_rep_id org_address industry status",
            "database",
            "daily",
            "C",
        ),
        ("食品经营许可信息", "204", f"{ORG} licence_no issued_on valid_until", "csv", "weekly", "U"),
        ("食品生产许可信息", "204", f"{ORG} licence_no issued_on valid_until", "csv", "monthly", "U"),
        (
            "食品安全抽检信息",
            "204",
            "case_no org_name credit_code inspected_on status remarks",
            "csv",
            "monthly",
            "U",
        ),
        (
            "特种设备登记信息",
            "205",
            "licence_no org_name credit_code org_address inspected_on valid_until",
            "database",
            "monthly",
            "U",
        ),
        (
            "行政处罚信息",
            "208",
            "case_no org_name credit_code penalty_amount decided_on",
            "csv",
            "weekly",
            "U",
        ),
        ("经营异常名录信息", "208", "credit_code org_name decided_on remarks", "csv", "weekly", "U"),
        (
            "严重违法失信名单信息",
            "104",
            "credit_code org_name legal_rep decided_on remarks",
            "csv",
            "monthly",
            "U",
        ),
        (
            "消费投诉举报信息",
            "201",
            "case_no person_name phone org_name occurred_at status",
            "database",
            "daily",
            "C",
        ),
        ("药品零售企业许可信息", "204", f"{ORG} licence_no issued_on valid_until", "csv", "monthly", "U"),
        (
            "计量器具强制检定信息",
            "307",
            "licence_no org_name credit_code inspected_on status",
            "csv",
            "quarterly",
            "U",
        ),
        (
            "企业年度报告公示信息",
            "102",
            "credit_code org_name year staff_count amount",
            "json",
            "yearly",
            "U",
        ),
    ],
    "emergency": [
        ("危险化学品企业信息", "205", f"{ORG} licence_no hazard_level valid_until", "csv", "monthly", "U"),
        ("安全生产许可信息", "205", f"{ORG} licence_no issued_on valid_until", "csv", "monthly", "U"),
        (
            "安全生产执法检查信息",
            "205",
            "org_name credit_code inspected_on problem_count hazard_level",
            "csv",
            "weekly",
            "U",
        ),
        (
            "安全生产行政处罚信息",
            "208",
            "case_no org_name credit_code penalty_amount decided_on",
            "csv",
            "monthly",
            "U",
        ),
        (
            "生产安全事故信息",
            "205",
            "case_no org_name occurred_at location quantity case_type",
            "database",
            "daily",
            "C",
        ),
        ("自然灾害灾情信息", "212", "case_type occurred_at region quantity amount", "json", "daily", "U"),
        (
            "应急避难场所信息",
            "212",
            "institution org_address area_sqm quantity lon lat",
            "json",
            "yearly",
            "U",
        ),
        ("应急物资储备信息", "212", "institution indicator quantity unit", "xlsx", "quarterly", "C"),
        (
            "应急救援队伍信息",
            "212",
            "org_name staff_count contact_phone org_address",
            "xlsx",
            "quarterly",
            "C",
        ),
        (
            "重大危险源监测数据",
            "205",
            "station_id org_name measured_at indicator value exceeded",
            "api",
            "realtime",
            "C",
        ),
        ("应急预案备案信息", "212", "org_name credit_code project_name decided_on", "csv", "quarterly", "U"),
        (
            "灾害救助对象信息",
            "203",
            f"{P} address benefit_type amount",
            "database",
            "irregular",
            "N|《自然灾害救助条例》及《中华人民共和国个人信息保护法》第二十八条",
        ),
        (
            "森林防火监测预警信息",
            "212",
            "station_id location lon lat measured_at hazard_level",
            "api",
            "realtime",
            "U",
        ),
    ],
    "water": [
        (
            "河道水位监测数据",
            "211",
            "station_id station_name river measured_at water_level",
            "api",
            "realtime",
            "U",
        ),
        ("雨量监测数据", "212", "station_id station_name measured_at value unit", "api", "realtime", "U"),
        ("河长制河道信息", "211", "river region area_sqm person_name phone", "json", "quarterly", "U"),
        ("取水许可信息", "211", f"{ORG} licence_no quantity issued_on valid_until", "csv", "quarterly", "U"),
        ("排水许可信息", "209", f"{ORG} licence_no issued_on valid_until", "csv", "quarterly", "U"),
        (
            "供水水质监测数据",
            "202",
            "station_id station_name measured_at indicator value exceeded",
            "api",
            "daily",
            "U",
        ),
        ("防汛物资储备信息", "212", "institution indicator quantity unit", "xlsx", "quarterly", "C"),
        ("水利工程基础信息", "103", "project_name location lon lat area_sqm year", "json", "yearly", "U"),
        ("城市易涝点信息", "212", "location lon lat hazard_level remarks", "json", "yearly", "U"),
        (
            "河湖违法行为查处信息",
            "208",
            "case_no location occurred_at penalty_amount status",
            "csv",
            "monthly",
            "U",
        ),
        ("用水户用水量信息", "211", "credit_code org_name month quantity unit", "database", "monthly", "C"),
        ("农村饮水安全工程信息", "201", "project_name community quantity status", "xlsx", "yearly", "U"),
        (
            "长江岸线视频巡查事件信息",
            "211",
            "case_no case_type location occurred_at handled",
            "api",
            "realtime",
            "U",
        ),
    ],
    "agriculture": [
        (
            "农业经营主体信息",
            "102",
            "credit_code org_name farmer contact_phone industry",
            "csv",
            "quarterly",
            "U",
        ),
        (
            "耕地地力保护补贴发放信息",
            "203",
            "farmer id_number area_sqm amount bank_account",
            "database",
            "yearly",
            "C",
        ),
        ("农作物种植面积信息", "103", "community crop area_sqm year", "xlsx", "yearly", "U"),
        ("农产品质量安全检测信息", "204", "case_no org_name crop inspected_on status", "csv", "monthly", "U"),
        ("动物防疫信息", "204", "community quantity vaccine issued_on", "xlsx", "monthly", "U"),
        ("农药经营许可信息", "204", f"{ORG} licence_no issued_on valid_until", "csv", "quarterly", "U"),
        (
            "农村土地承包经营权信息",
            "103",
            "farmer id_number community area_sqm valid_until",
            "database",
            "yearly",
            "C",
        ),
        (
            "高标准农田建设项目信息",
            "209",
            "project_name community area_sqm amount status",
            "xlsx",
            "yearly",
            "U",
        ),
        (
            "农机购置补贴信息",
            "203",
            "farmer id_number quantity amount decided_on",
            "database",
            "quarterly",
            "C",
        ),
        ("秸秆综合利用信息", "211", "community crop quantity unit year", "xlsx", "yearly", "U"),
        (
            "长江禁渔执法信息",
            "211",
            "case_no location occurred_at penalty_amount status",
            "csv",
            "monthly",
            "U",
        ),
        (
            "农村集体资产信息",
            "307",
            "community indicator amount year",
            "xlsx",
            "yearly",
            "N|《农村集体经济组织财务制度》第五十五条（涉及集体经济组织内部信息）",
        ),
        ("农业执法检查信息", "204", "org_name credit_code inspected_on problem_count", "csv", "monthly", "U"),
    ],
    "urban-management": [
        ("城市部件信息", "209", "building_id location lon lat status grid_id", "database", "monthly", "U"),
        (
            "数字城管案件信息",
            "210",
            "case_no case_type location lon lat occurred_at status grid_id",
            "api",
            "realtime",
            "U",
        ),
        (
            "窨井盖监测信息",
            "209",
            "station_id location lon lat measured_at value exceeded",
            "api",
            "realtime",
            "U",
        ),
        ("户外广告设置许可信息", "209", f"{ORG} licence_no issued_on valid_until", "csv", "monthly", "U"),
        (
            "占道经营审批信息",
            "209",
            "licence_no person_name phone location valid_until",
            "csv",
            "monthly",
            "C",
        ),
        (
            "城市管理行政处罚信息",
            "208",
            "case_no org_name credit_code penalty_amount decided_on",
            "csv",
            "monthly",
            "U",
        ),
        (
            "渣土运输车辆信息",
            "209",
            "plate_no org_name credit_code licence_no valid_until",
            "csv",
            "monthly",
            "C",
        ),
        ("生活垃圾分类收运信息", "211", "community quantity unit measured_at", "json", "daily", "U"),
        ("环卫作业车辆定位信息", "209", "plate_no lon lat measured_at status", "api", "realtime", "C"),
        ("市政道路设施信息", "103", "project_name location area_sqm year status", "json", "yearly", "U"),
        ("城市照明设施信息", "209", "building_id location lon lat status", "json", "quarterly", "U"),
        ("园林绿地信息", "211", "project_name location area_sqm year", "json", "yearly", "U"),
        ("违法建设查处信息", "209", "case_no address occurred_at area_sqm status", "csv", "monthly", "U"),
    ],
    "human-resources": [
        ("社会保险参保信息", "203", f"{P} employer insured_type status", "database", "monthly", "C"),
        ("养老保险待遇发放信息", "203", f"{P} amount month bank_account", "database", "monthly", "C"),
        ("失业登记信息", "203", f"{P} phone address decided_on", "database", "daily", "C"),
        ("就业登记信息", "203", f"{P} employer decided_on", "database", "daily", "C"),
        ("职业技能等级证书信息", "105", "person_name id_number licence_no issued_on", "csv", "monthly", "C"),
        (
            "劳动保障监察案件信息",
            "208",
            "case_no org_name credit_code occurred_at status",
            "csv",
            "monthly",
            "U",
        ),
        (
            "劳动人事争议仲裁信息",
            "307",
            "case_no employer person_name decided_on status",
            "database",
            "monthly",
            "N|《劳动人事争议仲裁办案规则》第二十六条（仲裁不公开审理事项）",
        ),
        (
            "企业职工工资信息",
            "203",
            "person_name id_number employer salary month",
            "database",
            "monthly",
            "N|《中华人民共和国个人信息保护法》第十三条（无法定共享情形）",
        ),
        (
            "人力资源服务机构许可信息",
            "102",
            f"{ORG} licence_no issued_on valid_until",
            "csv",
            "quarterly",
            "U",
        ),
        ("招聘岗位信息", "201", "org_name credit_code quantity salary remarks", "json", "daily", "U"),
        ("就业困难人员认定信息", "203", f"{P} address decided_on", "database", "monthly", "C"),
        ("工伤认定信息", "203", f"{P} employer decided_on status", "database", "monthly", "C"),
        (
            "根治欠薪线索信息",
            "208",
            "case_no employer credit_code amount occurred_at status",
            "csv",
            "weekly",
            "U",
        ),
    ],
    "statistics": [
        ("地区生产总值统计", "307", "year indicator value unit region", "xlsx", "quarterly", "U"),
        ("规模以上工业统计", "307", "year month indicator value unit", "xlsx", "monthly", "U"),
        ("固定资产投资统计", "307", "year month indicator value unit", "xlsx", "monthly", "U"),
        ("社会消费品零售总额统计", "307", "year month indicator value unit", "xlsx", "monthly", "U"),
        ("人口抽样调查汇总数据", "101", "year region indicator value", "xlsx", "yearly", "U"),
        (
            "经济普查单位名录",
            "102",
            "credit_code org_name industry staff_count region",
            "database",
            "irregular",
            "N|《中华人民共和国统计法》第三十九条（统计调查对象资料保密）",
        ),
        (
            "统计调查对象原始资料",
            "307",
            "credit_code org_name indicator value period",
            "database",
            "monthly",
            "N|《中华人民共和国统计法》第三十九条（不得用于统计以外的目的）",
        ),
        ("居民收支调查汇总", "203", "year indicator value unit", "xlsx", "quarterly", "U"),
        (
            "统计执法检查信息",
            "208",
            "org_name credit_code inspected_on problem_count",
            "csv",
            "quarterly",
            "U",
        ),
        ("服务业统计", "307", "year month industry indicator value", "xlsx", "quarterly", "U"),
        ("房地产开发统计", "209", "year month indicator value unit", "xlsx", "monthly", "U"),
        ("能源消费统计", "207", "year org_name indicator value unit", "xlsx", "quarterly", "C"),
        ("统计年鉴数据", "307", "year indicator value unit region period", "json", "yearly", "U"),
    ],
    "fire-rescue": [
        ("消防安全重点单位信息", "205", f"{ORG} contact_phone hazard_level", "csv", "quarterly", "U"),
        (
            "消防监督检查信息",
            "205",
            "org_name credit_code inspected_on problem_count hazard_level",
            "csv",
            "weekly",
            "U",
        ),
        (
            "火灾事故信息",
            "212",
            "case_no occurred_at location case_type quantity amount",
            "database",
            "daily",
            "C",
        ),
        (
            "消防行政处罚信息",
            "208",
            "case_no org_name credit_code penalty_amount decided_on",
            "csv",
            "monthly",
            "U",
        ),
        ("消防水源信息", "212", "station_id location lon lat status", "json", "quarterly", "U"),
        (
            "消防车辆装备信息",
            "212",
            "plate_no institution status quantity",
            "xlsx",
            "quarterly",
            "N|《消防救援队伍装备管理规定》（涉及救援力量部署）",
        ),
        ("公众聚集场所投入使用许可信息", "205", f"{ORG} licence_no issued_on", "csv", "monthly", "U"),
        (
            "建设工程消防验收信息",
            "209",
            "project_name org_name credit_code decided_on status",
            "csv",
            "monthly",
            "U",
        ),
        ("电气火灾监控数据", "205", "station_id org_name measured_at value exceeded", "api", "realtime", "C"),
        (
            "消防救援出警信息",
            "212",
            "case_no alarm_type occurred_at location handled",
            "api",
            "realtime",
            "C",
        ),
        (
            "九小场所消防检查信息",
            "205",
            "org_name org_address inspected_on problem_count grid_id",
            "csv",
            "monthly",
            "U",
        ),
        (
            "微型消防站信息",
            "210",
            "institution community staff_count contact_phone",
            "xlsx",
            "quarterly",
            "U",
        ),
        ("消防安全宣传培训信息", "201", "org_name decided_on quantity remarks", "xlsx", "quarterly", "U"),
    ],
}

CONDITIONS = (
    "仅限履行法定职责所需，经提供部门审核同意后使用，不得用于申请用途以外的目的",
    "需说明使用用途并经提供部门批准；个人信息默认脱敏，确需明文须单独申请",
    "限政务部门在办理行政审批、执法监管事项中核验使用，按季度复核使用情况",
    "经提供部门审核后按需共享，使用部门承担数据安全保护责任，到期须重新申请",
)


def _departments() -> list[dict[str, Any]]:
    data = json.loads(DISTRICT_PATH.read_text(encoding="utf-8"))
    departments: list[dict[str, Any]] = data["departments"]
    return departments


def _items(columns: str, name: str) -> list[dict[str, Any]]:
    cols = columns.split()
    if len(set(cols)) != len(cols):
        raise ValueError(f"{name}: a column appears twice")
    key = next((c for c in KEY_COLUMNS if c in cols), None)
    items = []
    for column in cols:
        label, kind, personal = ITEMS[column]
        item: dict[str, Any] = {"name": label, "column": column, "type": kind}
        if personal != "none":
            item["personal_class"] = personal
        if column == key:
            item["key"] = True
            item["required"] = True
        elif column in ("org_name", "person_name", "project_name", "station_name"):
            item["required"] = True
        items.append(item)
    return items


def generate(seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The whole catalogue for ``seed`` (same seed, same data)."""
    rng = random.Random(seed)
    resources: list[dict[str, Any]] = []
    codes: list[str] = []
    for number, department in enumerate(_departments(), start=1):
        dept_id = department["department_id"]
        provider_code = f"{number:03d}"
        for name, classification, columns, fmt, cycle, sharing in SPECS[dept_id]:
            code = next_code(classification, provider_code, codes)
            codes.append(code)
            fmt_enum = ResourceFormat(fmt)
            methods = sorted(m.value for m in METHODS_FOR_FORMAT[fmt_enum])
            items = _items(columns, name)
            labels = "、".join(i["name"] for i in items[:4])
            record: dict[str, Any] = {
                "code": code,
                "name": name,
                "department_id": dept_id,
                "provider_code": provider_code,
                "summary": (
                    f"{department['name']}掌握的{name}，包括{labels}等{len(items)}个信息项，"
                    f"{UpdateCycle(cycle).label}更新。"
                ),
                "classification": classification,
                "items": items,
                "format": fmt,
                "update_cycle": cycle,
            }
            if sharing == "U":
                record["sharing_type"] = SharingType.UNCONDITIONAL.value
            elif sharing == "C":
                record["sharing_type"] = SharingType.CONDITIONAL.value
                record["condition"] = rng.choice(CONDITIONS)
            else:
                record["sharing_type"] = SharingType.NOT_SHARED.value
                record["legal_basis"] = "依据" + sharing.split("|", 1)[1] + "，不予共享"
            record["sharing_method"] = methods[0] if len(methods) == 1 else rng.choice(methods)
            record["published_on"] = (date(2023, 3, 1) + timedelta(days=rng.randrange(0, 900))).isoformat()
            resources.append(record)
    return {
        "version": 1,
        "seed": seed,
        "generator": "tools/catalogue_seed.py",
        "standard": "GB/T 21063 政务信息资源目录; codes 类(1)项(2)部门(3)细目(3)/顺序码(6)",
        "resources": resources,
    }


def validate(data: dict[str, Any]) -> list[Resource]:
    """Every record against the JSON Schema and the model, then the catalogue-wide rules."""
    problems: list[str] = []
    resources: list[Resource] = []
    for index, record in enumerate(data["resources"]):
        problems += [f"resources[{index}] {p.message}" for p in schema_problems(record)]
        try:
            resources.append(Resource.model_validate(record))
        except ValueError as exc:
            problems.append(f"resources[{index}]: {exc}")
    problems += [p.message for p in check_catalogue(resources)]
    if problems:
        raise ValueError("invalid catalogue:\n" + "\n".join(problems[:20]))
    return resources


def dumps(data: dict[str, Any]) -> str:
    """Pretty at the top level, one compact line per resource."""

    def compact(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    lines = [f"  {compact(k)}: {compact(v)}" for k, v in data.items() if k != "resources"]
    body = ",\n".join(f"    {compact(r)}" for r in data["resources"])
    return "{\n" + ",\n".join(lines) + ',\n  "resources": [\n' + body + "\n  ]\n}\n"


def read_catalogue(path: Path = DEFAULT_PATH) -> list[Resource]:
    """The resources of a catalogue file, validated by the model (the same rules as the schema, which
    ``--check`` applies too) and the catalogue-wide rules; ``ValueError`` listing the problems."""
    records = json.loads(path.read_text(encoding="utf-8"))["resources"]
    resources = [Resource.model_validate(r) for r in records]
    problems = check_catalogue(resources)
    if problems:
        raise ValueError("invalid catalogue:\n" + "\n".join(p.message for p in problems[:20]))
    return resources


def load_catalogue(table_name: str, path: Path = DEFAULT_PATH) -> dict[str, str]:
    """Store the seeded catalogue; ``created`` / ``updated`` / ``unchanged`` by code (re-running is safe;
    last-load times already recorded are kept). :func:`tools.seed.load_district` calls it."""
    from smartzone.repositories.catalogue import CatalogueRepository

    return CatalogueRepository(table_name).put_many(read_catalogue(path))


def schema_text() -> str:
    return json.dumps(RESOURCE_SCHEMA, ensure_ascii=False, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.catalogue_seed", description="Generate the demo data catalogue and its schema."
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="fail if a file differs from the generator's")
    args = parser.parse_args(argv)
    data = generate(args.seed)
    resources = validate(data)
    outputs = {args.out: dumps(data), SCHEMA_DOC_PATH: schema_text()}
    if args.check:
        stale = [p for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path} is out of date: run python -m tools.catalogue_seed", file=sys.stderr)
        if not stale:
            print(
                f"{args.out} ({len(resources)} resources) and {SCHEMA_DOC_PATH} are up to date",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    departments = len({r.department_id for r in resources})
    print(f"wrote {args.out}: {len(resources)} resources from {departments} departments", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
