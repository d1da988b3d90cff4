"""Which source field means what, and which source values mean which class.

Chinese survey files name their fields in Chinese, in pinyin initials (地块编码 =
DKBM) or in English, and write land classes in several ways. ``propose`` guesses
a mapping from the field names; the surveyor confirms or corrects it, and may save
it for the next delivery from the same source.
"""

import re
from dataclasses import asdict, dataclass, field

from django.utils.translation import gettext_lazy as _

from registry.choices import LandClass, Legality, OwnerGroup

PARCEL_TARGETS = ("code", "land_class", "declared_area")
BUILDING_TARGETS = (
    "code",
    "parcel_code",
    "floors",
    "floor_area",
    "legality",
    "owner_group",
)
REQUIRED = {
    "parcels": ("code", "land_class"),
    "buildings": ("code", "parcel_code", "owner_group"),
}

TARGET_LABELS = {
    "code": _("code"),
    "land_class": _("land class"),
    "declared_area": _("declared area (m²)"),
    "parcel_code": _("parcel code"),
    "floors": _("floors"),
    "floor_area": _("floor area (m²)"),
    "legality": _("legality"),
    "owner_group": _("owner group"),
}

# Field names seen in Guangming survey deliveries, compared case-insensitively
# after removing separators.
SYNONYMS = {
    "code": [
        "地块编码",
        "DKBM",
        "地块编号",
        "DKBH",
        "宗地代码",
        "ZDDM",
        "宗地编码",
        "ZDBM",
        "宗地号",
        "ZDH",
        "编码",
        "CODE",
        "PARCELCODE",
        "PARCELID",
    ],
    "land_class": [
        "权属性质",
        "QSXZ",
        "土地类型",
        "TDLX",
        "土地性质",
        "TDXZ",
        "三元化",
        "地类",
        "LANDCLASS",
        "CLASS",
    ],
    "declared_area": [
        "面积",
        "MJ",
        "宗地面积",
        "ZDMJ",
        "地块面积",
        "DKMJ",
        "申报面积",
        "SBMJ",
        "AREA",
        "DECLAREDAREA",
    ],
    "parcel_code": ["地块编码", "DKBM", "宗地代码", "ZDDM", "PARCELCODE", "PARCEL"],
    "floors": ["层数", "CS", "FLOORS", "STOREYS"],
    "floor_area": ["建筑面积", "JZMJ", "FLOORAREA", "GFA"],
    "legality": ["合法性", "HFX", "报建情况", "BJQK", "LEGALITY"],
    "owner_group": ["权利人类别", "QLRLB", "权利人", "QLR", "OWNERGROUP", "OWNER"],
}
BUILDING_CODE_SYNONYMS = [
    "建筑物编码",
    "JZWBM",
    "楼栋编码",
    "LDBM",
    "BUILDINGID",
    "CODE",
]

# Source values for the controlled vocabularies, compared after removing spaces.
VALUE_SYNONYMS = {
    "land_class": {
        LandClass.COLLECTIVE: ["集体", "农村集体", "集体土地", "原农村集体土地", "JT"],
        LandClass.STATE_FARM: [
            "农场",
            "国有农场",
            "原光明农场国有用地",
            "农场用地",
            "NC",
        ],
        LandClass.UNFINISHED_EXPROPRIATION: [
            "未完善征转",
            "未完善征转手续",
            "未完善征转手续土地",
            "未征转",
            "WWS",
        ],
    },
    "legality": {
        Legality.PERMITTED: ["合法", "已报建", "合法报建", "HF"],
        Legality.HISTORICAL_LEGACY: ["历史遗留", "历史遗留违建", "LSYL"],
        Legality.UNPERMITTED_0962: ["0962", "0962违建", "违建", "新增违建"],
        Legality.UNKNOWN: ["未知", "不详", ""],
    },
    "owner_group": {
        OwnerGroup.ORIGINAL_VILLAGER: ["原村民", "村民"],
        OwnerGroup.STATE_FARM_WORKER: ["原农场职工", "农场职工"],
        OwnerGroup.RETURNED_OVERSEAS: ["归侨侨眷", "归侨", "侨眷"],
        OwnerGroup.INCOMING_RESIDENT: ["外来市民", "外来人口"],
        OwnerGroup.COLLECTIVE_OR_COMPANY: ["集体或企业", "集体", "企业", "股份公司"],
    },
}


@dataclass
class FieldMapping:
    """Source field per target, and source value per controlled target value."""

    layer: str = "parcels"
    fields: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Return the mapping as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FieldMapping":
        """Build a mapping from JSON data (a saved mapping or a --mapping file)."""
        return cls(
            layer=data.get("layer", "parcels"),
            fields=dict(data.get("fields", {})),
            values={k: dict(v) for k, v in data.get("values", {}).items()},
        )

    def value_for(self, target: str, source_value: str | None) -> str | None:
        """Return the registry value for a source value, or None if unknown."""
        if source_value is None:
            return None
        cleaned = _squash(source_value)
        explicit = {_squash(k): v for k, v in self.values.get(target, {}).items()}
        if cleaned in explicit:
            # A mapping may only name values the registry knows: anything else
            # is "unknown", reported on the row, never written.
            allowed = {value.value for value in VALUE_SYNONYMS.get(target, {})}
            return explicit[cleaned] if explicit[cleaned] in allowed else None
        for value, synonyms in VALUE_SYNONYMS.get(target, {}).items():
            if cleaned == _squash(value) or cleaned in {_squash(s) for s in synonyms}:
                return value.value
        return None


def propose(field_names: list[str], layer: str) -> FieldMapping:
    """Guess which source field gives each target, from the field names alone."""
    targets = PARCEL_TARGETS if layer == "parcels" else BUILDING_TARGETS
    by_key = {_squash(name): name for name in field_names}
    mapping = FieldMapping(layer=layer)
    taken = set()
    for target in targets:
        synonyms = SYNONYMS[target]
        if layer == "buildings" and target == "code":
            synonyms = BUILDING_CODE_SYNONYMS
        for synonym in synonyms:
            source = by_key.get(_squash(synonym))
            if source and source not in taken:
                mapping.fields[target] = source
                taken.add(source)
                break
    return mapping


def source_key(field_names: list[str]) -> str:
    """Return a key identifying files with these fields (for saved mappings)."""
    return ",".join(sorted(_squash(name) for name in field_names))


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-./]", "", str(text)).upper()
