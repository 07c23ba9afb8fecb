"""`mandate demo`: a small healthcare group to try Mandate with, loaded through the import format."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from mandate.models.importing import ImportSummary, import_data
from mandate.models.tables import Account, User

DEMO_PASSWORD = "demo-password"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: str
    sees: str


DEMO_LOGINS = [
    DemoLogin("manager@example.org", "Grace Hughes", "manager of Northwind Health",
              "the whole group: both practices, their clinics and all sites"),
    DemoLogin("practice.manager@example.org", "Priya Shah", "manager of Riverside Practice",
              "Riverside Practice, its two clinics and its three sites"),
    DemoLogin("nurse@example.org", "Tom Baker", "member of Riverside Practice",
              "the same tree as Riverside's manager, without compliance or audit"),
    DemoLogin("dentist@example.org", "Amira Khan", "member of Hillview Dental",
              "Hillview Dental and its one site"),
    DemoLogin("reception@example.org", "Leo Walsh", "site member of Hillview Surgery",
              "Hillview Practice, narrowed to the Hillview Surgery site"),
]

# The import format of API.md, so the demo takes the same path as `mandate import`.
DEMO_ORGANISATION = {
    "users": [{"email": login.email, "name": login.name, "password": DEMO_PASSWORD} for login in DEMO_LOGINS],
    "accounts": [
        {
            "name": "Northwind Health",
            "managers": ["manager@example.org"],
            "children": [
                {
                    "name": "Riverside Practice",
                    "managers": ["practice.manager@example.org"],
                    "members": ["nurse@example.org"],
                    "sites": [{"name": "Riverside Surgery"}, {"name": "Riverside Walk-in Centre"},
                              {"name": "Riverside Pharmacy"}],
                    "children": [{"name": "Riverside Dental"}, {"name": "Riverside Physiotherapy"}],
                },
                {
                    "name": "Hillview Practice",
                    "sites": [{"name": "Hillview Surgery", "members": ["reception@example.org"]},
                              {"name": "Hillview Branch Surgery"}],
                    "children": [
                        {"name": "Hillview Dental", "members": ["dentist@example.org"],
                         "sites": [{"name": "Hillview Dental Clinic"}]},
                    ],
                },
            ],
        }
    ],
}


class DatabaseNotEmpty(Exception):
    """The demo only goes into an empty database, so it never mixes with real data."""


async def database_is_empty() -> bool:
    return not (await User.exists() or await Account.exists())


async def demo_is_loaded() -> bool:
    return await User.filter(email=DEMO_LOGINS[0].email).exists()


async def load_demo() -> ImportSummary:
    if not await database_is_empty():
        raise DatabaseNotEmpty("the database already holds accounts or users: the demo loads into an empty one only")
    return await import_data(copy.deepcopy(DEMO_ORGANISATION))
