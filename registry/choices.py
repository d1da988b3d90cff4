"""Controlled vocabularies of the registry, each checked by the database as well."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class LandClass(models.TextChoices):
    """The three land classes (土地“三元化”); every parcel has exactly one."""

    COLLECTIVE = "collective", _("Former rural collective land")
    STATE_FARM = "state_farm", _("Former Guangming state-farm land")
    UNFINISHED_EXPROPRIATION = (
        "unfinished_expropriation",
        _("Land with unfinished expropriation"),
    )


class Street(models.TextChoices):
    """The six street offices (街道) of Guangming district."""

    GUANGMING = "guangming", _("Guangming Subdistrict")
    GONGMING = "gongming", _("Gongming Subdistrict")
    XINHU = "xinhu", _("Xinhu Subdistrict")
    FENGHUANG = "fenghuang", _("Fenghuang Subdistrict")
    YUTANG = "yutang", _("Yutang Subdistrict")
    MATIAN = "matian", _("Matian Subdistrict")


class ProjectKind(models.TextChoices):
    """What a consolidation project is for; linear kinds are long thin corridors."""

    RAIL = "rail", _("Rail transit")
    ROAD = "road", _("Road")
    INDUSTRIAL = "industrial", _("Industrial")
    CAMPUS = "campus", _("University campus")
    SCIENCE_CITY = "science_city", _("Science city")
    VILLAGE_RELOCATION = "village_relocation", _("Village relocation")
    OTHER = "other", _("Other")


class Legality(models.TextChoices):
    """Legal standing of a building; 2009-06-02 separates the two unpermitted kinds."""

    PERMITTED = "permitted", _("Permitted")
    HISTORICAL_LEGACY = "historical_legacy", _("Unpermitted, built before 2009-06-02")
    UNPERMITTED_0962 = "unpermitted_0962", _("Unpermitted, built after 2009-06-02")
    UNKNOWN = "unknown", _("Unknown")


class OwnerGroup(models.TextChoices):
    """Who owns a building, as the compensation policy distinguishes them."""

    ORIGINAL_VILLAGER = "original_villager", _("Original villager")
    STATE_FARM_WORKER = "state_farm_worker", _("Former state-farm worker")
    RETURNED_OVERSEAS = "returned_overseas", _("Returned overseas Chinese or family")
    INCOMING_RESIDENT = "incoming_resident", _("Incoming resident")
    COLLECTIVE_OR_COMPANY = "collective_or_company", _("Collective or company")


class BuildingStatus(models.TextChoices):
    """Progress of one building through signing, vacating and demolition."""

    UNSIGNED = "unsigned", _("Unsigned")
    SIGNED = "signed", _("Signed")
    VACATED = "vacated", _("Vacated")
    DEMOLISHED = "demolished", _("Demolished")


# A parcel may be marked cleared only once every building on it is in one of these.
BUILDING_DONE_STATUSES = frozenset({BuildingStatus.VACATED, BuildingStatus.DEMOLISHED})


class Role(models.TextChoices):
    """What a user may do; surveyors and case officers are scoped to projects."""

    SURVEYOR = "surveyor", _("Surveyor")
    CASE_OFFICER = "case_officer", _("Case officer")
    PLANNER = "planner", _("Planner")
    ANALYST = "analyst", _("Analyst")
    REGISTRY_ADMIN = "registry_admin", _("Registry administrator")


PROJECT_ROLES = frozenset({Role.SURVEYOR, Role.CASE_OFFICER})
