"""The organisations tests seed (in the import format of API.md) and the ids of what they hold.

- The Clinic: one account, a manager, a member and a user with no role (the login, TOTP,
  recovery-code and throttling tests).
- The trees: North Health > Leeds Practice > Leeds Dental > Leeds Lab, North Health > York
  Practice, and South Care beside them, with a manager, a member and site members at each level
  (the enforcement, visibility, compliance and audit tests); `seed_trees` gives their `ids`.
- A wide organisation of practices and clinics with sites (the query-count and work-limit tests).
"""

from __future__ import annotations

from mandate.models.tables import Account

from tests.support.api import Api
from tests.support.documents import LOGOUT
from tests.support.enforcement import enforce
from tests.support.people import signed_in

# --- The Clinic -----------------------------------------------------------------------------

MANAGER = "manager@example.org"
MEMBER = "member@example.org"
LONER = "loner@example.org"  # no role anywhere: never bound to 2FA
CLINIC = "Clinic"


async def seed_clinic(api: Api, seed) -> str:
    """One account, Clinic, with a manager and a member, plus a user with no role; the Clinic's id."""
    await seed({
        "users": [{"email": MANAGER}, {"email": MEMBER}, {"email": LONER}],
        "accounts": [{"name": CLINIC, "managers": [MANAGER], "members": [MEMBER]}],
    })
    token = await signed_in(api, MANAGER)
    clinic_id = await api.account_id(token, CLINIC)
    await api.gql(LOGOUT, token=token)
    return clinic_id


async def enforcing_manager(api: Api, clinic_id: str) -> str:
    """The manager enrols (their session passes 2FA) and switches the Clinic's enforcement on;
    their full session."""
    token = (await api.enrol(await signed_in(api, MANAGER))).token
    await enforce(api, token, clinic_id, on=True)
    return token


# --- The trees ------------------------------------------------------------------------------

GROUP, PRACTICE, DENTAL, LAB, SIBLING, OTHER = (
    "North Health", "Leeds Practice", "Leeds Dental", "Leeds Lab", "York Practice", "South Care",
)
GROUP_MANAGER = "group.manager@example.org"
GROUP_MEMBER = "group.member@example.org"
GROUP_SITE_MEMBER = "group.site.member@example.org"      # site "Group Office" of the group
PRACTICE_MANAGER = "practice.manager@example.org"
PRACTICE_MEMBER = "practice.member@example.org"
SITE_MEMBER = "site.member@example.org"                  # site "Leeds Street" of the practice
DENTAL_MANAGER = "dental.manager@example.org"
DENTAL_MEMBER = "dental.member@example.org"
DENTAL_SITE_MEMBER = "dental.site.member@example.org"    # site "Dental Clinic" of the dental
LAB_MEMBER = "lab.member@example.org"
SIBLING_MANAGER = "sibling.manager@example.org"
SIBLING_MEMBER = "sibling.member@example.org"
SIBLING_SITE_MEMBER = "sibling.site.member@example.org"  # site "York Street" of the sibling
OTHER_MANAGER = "other.manager@example.org"
OTHER_MEMBER = "other.member@example.org"
NEWCOMER = "newcomer@example.org"                        # no access at first

EVERYONE = [
    GROUP_MANAGER, GROUP_MEMBER, GROUP_SITE_MEMBER, PRACTICE_MANAGER, PRACTICE_MEMBER, SITE_MEMBER,
    DENTAL_MANAGER, DENTAL_MEMBER, DENTAL_SITE_MEMBER, LAB_MEMBER, SIBLING_MANAGER, SIBLING_MEMBER,
    SIBLING_SITE_MEMBER, OTHER_MANAGER, OTHER_MEMBER, NEWCOMER,
]


def tree() -> dict:
    """North Health > Leeds Practice > Leeds Dental > Leeds Lab, North Health > York Practice;
    and a separate tree, South Care."""
    return {
        "users": [{"email": email} for email in EVERYONE],
        "accounts": [
            {"name": GROUP, "managers": [GROUP_MANAGER], "members": [GROUP_MEMBER],
             "sites": [{"name": "Group Office", "members": [GROUP_SITE_MEMBER]}],
             "children": [
                 {"name": PRACTICE, "managers": [PRACTICE_MANAGER], "members": [PRACTICE_MEMBER],
                  "sites": [{"name": "Leeds Street", "members": [SITE_MEMBER]}, {"name": "Leeds Annex"}],
                  "children": [
                      {"name": DENTAL, "managers": [DENTAL_MANAGER], "members": [DENTAL_MEMBER],
                       "sites": [{"name": "Dental Clinic", "members": [DENTAL_SITE_MEMBER]}],
                       "children": [{"name": LAB, "members": [LAB_MEMBER]}]},
                  ]},
                 {"name": SIBLING, "managers": [SIBLING_MANAGER], "members": [SIBLING_MEMBER],
                  "sites": [{"name": "York Street", "members": [SIBLING_SITE_MEMBER]}]},
             ]},
            {"name": OTHER, "managers": [OTHER_MANAGER], "members": [OTHER_MEMBER],
             "sites": [{"name": "South Street"}]},
        ],
    }


def under_group(entries: dict[str, dict]) -> dict:
    """An import that adds to North Health: account name -> what to add there (import format)."""
    return {"accounts": [{"name": GROUP, **entries.get(GROUP, {}), "children": [
        {"name": PRACTICE, **entries.get(PRACTICE, {}), "children": [{"name": DENTAL, **entries.get(DENTAL, {})}]},
        {"name": SIBLING, **entries.get(SIBLING, {})},
    ]}]}


async def seed_trees(api: Api, seed) -> dict[str, str]:
    """Seeds `tree()`; the global id of every account and site, by name (read by the top
    managers, who then sign out)."""
    await seed(tree())
    found: dict[str, str] = {}
    for email in (GROUP_MANAGER, OTHER_MANAGER):
        token = await signed_in(api, email)
        r = await api.gql(
            "{ accounts { id name sites { id name } descendants { id name sites { id name } } } }", token=token
        )
        assert not r.errors, r.body
        for top in r.data["accounts"]:
            for account in [top, *top["descendants"]]:
                found[account["name"]] = account["id"]
                found.update({site["name"]: site["id"] for site in account["sites"]})
        await api.gql(LOGOUT, token=token)
    return found


async def vanished_account_id(api: Api, seed) -> str:
    """A well-formed id of an account that no longer exists."""
    await seed({"accounts": [{"name": OTHER, "children": [{"name": "Closed Clinic"}]}]})
    account_id = await api.account_id(await signed_in(api, OTHER_MANAGER), "Closed Clinic")
    await Account.filter(name="Closed Clinic").delete()
    return account_id


# --- A wide organisation ---------------------------------------------------------------------


def organisation(practices: int, clinics: int) -> dict:
    """Group > `practices` practices > `clinics` clinics each, three sites on every account but
    the group's one; managed by grace@example.org."""
    return {
        "users": [{"email": "grace@example.org"}],
        "accounts": [{
            "name": "Group", "managers": ["grace@example.org"], "sites": [{"name": "Head office"}],
            "children": [
                {"name": f"Practice {p}", "sites": [{"name": f"Site {p}.{s}"} for s in range(3)],
                 "children": [{"name": f"Clinic {p}.{c}", "sites": [{"name": f"Site {p}.{c}.{s}"} for s in range(3)]}
                              for c in range(clinics)]}
                for p in range(practices)
            ],
        }],
    }
