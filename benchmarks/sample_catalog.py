"""A deterministic synthetic catalog of any size, for benchmarks, demos and tests.

The catalog looks like a city's: departments with valid 统一社会信用代码, resources whose codes
embed their provider, realistic Chinese item names, the three share types, base and theme
resources, holders keeping copies. It passes the catalog rules in ``rules``; in particular the
single-source rule (一数一源): item codes outside a resource's key carry the provider's number,
so two providers never declare the same item, while item *names* repeat as in real catalogs.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import get_args

from govbus.vocabulary.identifiers import org_code_check_char, uscc_check_char
from govbus.vocabulary.spec import (
    BaseCategory,
    CatalogSpec,
    CompareRule,
    DataType,
    Department,
    Holder,
    InfoItem,
    Mask,
    Purpose,
    Resource,
    ResourceFormat,
    ResourceKey,
    Sensitivity,
    ShareMethod,
    ShareType,
    SubjectType,
    UpdateCycle,
)

__all__ = ["generate_catalog"]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a cheap cache key
class _Word:
    name: str
    code: str
    data_type: DataType
    length: int | None = None
    sensitivity: Sensitivity = "internal"
    mask: Mask = "none"
    compare: CompareRule = "exact"
    tolerance: float | None = None


# The key item comes first in each vocabulary.
_PERSON = (
    _Word("公民身份号码", "citizen_id", "C", 18, "sensitive", "citizen-id"),
    _Word("姓名", "name", "C", 50, "sensitive", "name", "text"),
    _Word("性别", "gender", "C", 1),
    _Word("民族", "ethnicity", "C", 20),
    _Word("出生日期", "birth_date", "D", None, "sensitive", "none", "date"),
    _Word("住址", "address", "C", 200, "sensitive", "none", "text"),
    _Word("户籍地址", "household_address", "C", 200, "sensitive", "none", "text"),
    _Word("联系电话", "phone", "C", 20, "sensitive", "phone"),
    _Word("学历", "education", "C", 20),
    _Word("婚姻状况", "marital_status", "C", 10, "sensitive"),
    _Word("社保缴费基数", "contribution_base", "Y", None, "internal", "none", "numeric", 0.01),
    _Word("参保状态", "insurance_status", "C", 10),
    _Word("参保日期", "insured_since", "D", None, "internal", "none", "date"),
    _Word("工作单位", "employer", "C", 200, "internal", "none", "text"),
    _Word("不动产单元号", "real_estate_unit_no", "C", 28),
    _Word("房屋坐落", "house_location", "C", 200, "internal", "none", "text"),
    _Word("建筑面积", "floor_area", "B", None, "internal", "none", "numeric", 0.01),
    _Word("驾驶证档案编号", "driving_licence_file_no", "C", 12),
    _Word("机动车号牌", "plate_number", "C", 10),
    _Word("死亡日期", "death_date", "D", None, "sensitive", "none", "date"),
    _Word("残疾等级", "disability_grade", "C", 10, "sensitive"),
    _Word("低保状态", "subsistence_status", "C", 10, "sensitive"),
    _Word("公积金缴存基数", "housing_fund_base", "Y", None, "internal", "none", "numeric", 0.01),
    _Word("职业资格", "qualification", "C", 100),
    _Word("毕业院校", "graduated_from", "C", 100, "internal", "none", "text"),
    _Word("监护人姓名", "guardian_name", "C", 50, "sensitive", "name", "text"),
    _Word("出生医学证明编号", "birth_certificate_no", "C", 20),
)
_ENTITY = (
    _Word("统一社会信用代码", "uscc", "C", 18, "public"),
    _Word("企业名称", "entity_name", "C", 200, "public", "none", "text"),
    _Word("法定代表人", "legal_representative", "C", 50, "internal", "name", "text"),
    _Word("注册资本", "registered_capital", "Y", None, "public", "none", "numeric", 0.01),
    _Word("成立日期", "established_date", "D", None, "public", "none", "date"),
    _Word("经营范围", "business_scope", "M", None, "public", "none", "text"),
    _Word("登记机关", "registration_authority", "C", 100, "public"),
    _Word("企业类型", "entity_type", "C", 50, "public"),
    _Word("经营状态", "operating_status", "C", 20, "public"),
    _Word("住所", "registered_address", "C", 200, "public", "none", "text"),
    _Word("联系电话", "phone", "C", 20, "internal", "phone"),
    _Word("纳税信用等级", "tax_credit_grade", "C", 2),
    _Word("行政处罚决定书文号", "penalty_doc_no", "C", 50, "public"),
    _Word("许可证编号", "licence_no", "C", 50, "public"),
    _Word("从业人数", "employee_count", "I", None, "internal", "none", "numeric", 0.0),
    _Word("营业期限", "business_term_end", "D", None, "public", "none", "date"),
    _Word("参保职工人数", "insured_employees", "I", None, "internal", "none", "numeric", 0.0),
    _Word("不动产单元号", "real_estate_unit_no", "C", 28),
    _Word("欠税金额", "tax_arrears", "Y", None, "internal", "none", "numeric", 0.01),
)
_VOCAB: dict[SubjectType, tuple[_Word, ...]] = {
    "natural-person": _PERSON,
    "legal-entity": _ENTITY,
}
_NAME_CODES = {"name", "entity_name"}  # required besides the key

_P: SubjectType = "natural-person"
_E: SubjectType = "legal-entity"
# (id slug, name, topics with their subject type)
_BUREAUS: tuple[tuple[str, str, tuple[tuple[str, SubjectType], ...]], ...] = (
    ("ga", "公安局", (("户籍人口", _P), ("机动车登记", _P), ("驾驶人", _P))),
    ("mz", "民政局", (("婚姻登记", _P), ("低保对象", _P), ("社会组织登记", _E))),
    ("rs", "人力资源和社会保障局", (("社会保险参保", _P), ("就业登记", _P), ("用人单位参保", _E))),
    ("scjg", "市场监督管理局", (("企业登记", _E), ("行政许可", _E), ("个体工商户", _E))),
    ("zrzy", "自然资源和规划局", (("不动产登记", _P), ("土地使用权", _E))),
    ("zj", "住房和城乡建设局", (("商品房备案", _P), ("建筑业企业资质", _E))),
    ("wj", "卫生健康委员会", (("出生医学证明", _P), ("医疗机构执业", _E))),
    ("jy", "教育局", (("学籍", _P), ("学校办学许可", _E))),
    ("sw", "税务局", (("纳税人登记", _E), ("纳税信用", _E), ("个人所得税", _P))),
    ("sf", "司法局", (("律师执业", _P), ("法律援助", _P))),
    ("yb", "医疗保障局", (("医保参保", _P), ("定点医药机构", _E))),
    ("gjj", "住房公积金管理中心", (("公积金缴存", _P), ("缴存单位", _E))),
    ("jt", "交通运输局", (("道路运输经营许可", _E), ("从业资格", _P))),
    ("sthj", "生态环境局", (("排污许可", _E),)),
    ("yjgl", "应急管理局", (("安全生产许可", _E),)),
    ("tyjr", "退役军人事务局", (("退役军人", _P),)),
    ("cl", "残疾人联合会", (("残疾人证", _P),)),
    ("tj", "统计局", (("名录库企业", _E),)),
)
_REGIONS = (
    ("320400", "常州市"),
    ("320402", "天宁区"),
    ("320404", "钟楼区"),
    ("320411", "新北区"),
    ("320412", "武进区"),
    ("320413", "金坛区"),
    ("320481", "溧阳市"),
)
_BASE_NAMES: dict[BaseCategory, str] = {
    "population": "人口基础信息",
    "legal-entity": "法人单位基础信息",
    "natural-resources": "自然资源和空间地理基础信息",
    "e-license": "电子证照基础信息",
    "credit": "社会信用基础信息",
}
_THEMES = ("优化营商环境", "社会保障一卡通", "不动产交易登记", "出生一件事", "企业开办一件事")
_LEGAL_BASES = (
    "《中华人民共和国个人信息保护法》第二十八条",
    "《中华人民共和国保守国家秘密法》第二条",
    "《中华人民共和国税收征收管理法》第八条",
    "《中华人民共和国统计法》第三十九条",
)
_METHODS: tuple[ShareMethod, ...] = get_args(ShareMethod)
_PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
_CYCLES: tuple[UpdateCycle, ...] = ("realtime", "daily", "weekly", "monthly", "quarterly", "yearly")
_FORMATS: tuple[ResourceFormat, ...] = ("database", "database", "api", "spreadsheet")
_SHARE_TYPES: tuple[ShareType, ...] = ("unconditional", "conditional", "none")
_SHARED: tuple[ShareType, ...] = ("unconditional", "conditional")
_ENTITY_BASES: tuple[BaseCategory, ...] = ("legal-entity", "e-license", "credit")
_SUBJECT_NAMES: dict[SubjectType, str] = {"natural-person": "自然人", "legal-entity": "法人"}
_EPOCH = dt.date(2018, 1, 1)


def _uscc(index: int, region: str) -> str:
    # 1 机构编制 (registration authority) 1 机关 (type), division, 组织机构代码 with its check.
    body = f"{index + 1:08d}"
    first17 = f"11{region}{body}{org_code_check_char(body)}"
    return first17 + uscc_check_char(first17)


def _departments(n: int) -> list[Department]:
    out: list[Department] = []
    per_round = len(_BUREAUS) * len(_REGIONS)
    for i in range(n):
        round_, rest = divmod(i, per_round)
        region, region_name = _REGIONS[rest // len(_BUREAUS)]
        slug, bureau, _ = _BUREAUS[rest % len(_BUREAUS)]
        # A district bureau reports to the city's; a further office to its bureau.
        parent = None
        if round_:
            parent = out[rest].code
        elif rest >= len(_BUREAUS):
            parent = out[rest % len(_BUREAUS)].code
        suffix = f"（{round_ + 1}）" if round_ else ""
        out.append(
            Department(
                id=f"{slug}-{region}" + (f"-{round_ + 1}" if round_ else ""),
                code=_uscc(i, region),
                name=f"{region_name}{bureau}{suffix}",
                level="city" if region == "320400" else "district",
                region=region,
                parent=parent,
            )
        )
    return out


def generate_catalog(
    n_resources: int, items_per_resource: int, n_departments: int = 500, seed: int = 0
) -> CatalogSpec:
    """A catalog of ``n_resources`` resources with ``items_per_resource`` items each.

    The same arguments always give the same catalog.
    """
    if n_resources < 0 or items_per_resource < 1 or n_departments < 1:
        raise ValueError(
            "generate_catalog needs n_resources >= 0, items_per_resource >= 1 (the key item) and "
            f"n_departments >= 1, got {n_resources}, {items_per_resource}, {n_departments}"
        )
    rng = random.Random(seed)
    departments = _departments(n_departments)
    serials = [0] * n_departments
    items_cache: dict[tuple[int, _Word, int, bool, bool], InfoItem] = {}
    resources: list[Resource] = []

    def item(word: _Word, variant: int, provider: int, base: bool, for_all: bool) -> InfoItem:
        key = (provider, word, variant, base, for_all)
        cached = items_cache.get(key)
        if cached is None:
            is_key = word is _PERSON[0] or word is _ENTITY[0]
            code = word.code + (f"_{variant + 1}" if variant else "")
            cached = items_cache[key] = InfoItem(
                name=word.name + (str(variant + 1) if variant else ""),
                # Outside the key an item has one source: the provider's number makes it its own.
                code=code if is_key else f"{code}_p{provider}",
                data_type=word.data_type,
                length=word.length,
                required=is_key or word.code in _NAME_CODES,
                base_item=base,
                sensitivity=word.sensitivity,
                shareable_to_all=for_all,
                mask=word.mask,
                compare=word.compare,
                tolerance=word.tolerance,
            )
        return cached

    for r in range(n_resources):
        p = rng.randrange(n_departments)
        provider = departments[p]
        bureau_no = p % len(_BUREAUS)  # as in _departments
        _, bureau, topics = _BUREAUS[bureau_no]
        topic_no = rng.randrange(len(topics))
        topic, subject = topics[topic_no]
        kind = r % 10  # 1 in 10 base, 1 in 10 theme, the rest department resources
        base_category: BaseCategory | None = None
        lead: str | None = None
        if kind == 0:
            base: BaseCategory = "population" if subject == _P else rng.choice(_ENTITY_BASES)
            base_category = base
            front = f"1{list(_BASE_NAMES).index(base) + 1:02d}{topic_no + 1:02d}"
            category: tuple[str, ...] = (_BASE_NAMES[base], topic)
            name = f"{topic}基础信息"
            share_type: ShareType = "unconditional"
        elif kind == 5:
            theme_no = rng.randrange(len(_THEMES))
            front = f"2{theme_no + 1:02d}{topic_no + 1:02d}"
            category = (_THEMES[theme_no], topic)
            name = f"{_THEMES[theme_no]}{topic}信息"
            lead = departments[rng.randrange(n_departments)].code
            share_type = rng.choice(_SHARED)
        else:
            front = f"3{bureau_no + 1:02d}{topic_no + 1:02d}"
            category = (bureau, topic)
            name = f"{topic}信息"
            share_type = rng.choices(_SHARE_TYPES, (6, 3, 1))[0]
        serials[p] += 1
        code = f"{front}/{provider.code}-{serials[p]:06d}"

        vocab = _VOCAB[subject]
        others = list(vocab[1:])
        rng.shuffle(others)
        words = [(vocab[0], 0)] + [
            (others[n % len(others)], n // len(others)) for n in range(items_per_resource - 1)
        ]
        items = tuple(
            item(
                w,
                variant,
                p,
                base=kind == 0 and n < 5,  # the key and the first few are base items
                for_all=share_type == "conditional" and w.sensitivity == "public",
            )
            for n, (w, variant) in enumerate(words)
        )

        holders: list[Holder] = []
        if n_departments > 1 and rng.random() < 0.2:
            others_depts = [d for d in rng.sample(range(n_departments), 3) if d != p][:2]
            for d in others_depts[: rng.randint(1, 2)]:
                picked = rng.sample(items[1:], min(3, len(items) - 1))
                holders.append(
                    Holder(departments[d].code, (items[0].code, *(i.code for i in picked)))
                )

        resources.append(
            Resource(
                code=code,
                name=name,
                provider=provider.code,
                abstract=f"{provider.name}提供的{name}，以{_SUBJECT_NAMES[subject]}为主体。",
                format=rng.choice(_FORMATS),
                category=category,
                items=items,
                key=ResourceKey((items[0].code,), subject),
                share_type=share_type,
                update_cycle=rng.choice(_CYCLES),
                publish_date=_EPOCH + dt.timedelta(days=rng.randrange(2500)),
                share_conditions=(
                    f"仅限{rng.choice(('行政审批', '监管执法', '社会救助', '信用监管'))}"
                    "业务使用，不得向第三方提供"
                    if share_type == "conditional"
                    else ""
                ),
                share_methods=(
                    tuple(sorted(rng.sample(_METHODS, rng.randint(1, 3))))
                    if share_type != "none"
                    else ()
                ),
                purposes=(
                    tuple(sorted(rng.sample(_PURPOSES, rng.randint(1, 3))))
                    if share_type == "conditional"
                    else ()
                ),
                related=((resources[rng.randrange(r)].code,) if r and rng.random() < 0.1 else ()),
                base_category=base_category,
                lead_department=lead,
                legal_basis=rng.choice(_LEGAL_BASES) if share_type == "none" else "",
                holders=tuple(holders),
            )
        )
    return CatalogSpec(tuple(departments), tuple(resources))
