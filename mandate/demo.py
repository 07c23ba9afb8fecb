"""`mandate demo`: a small healthcare group to try Mandate with, loaded through the import format."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from mandate.models.account_admin import account_forest
from mandate.models.crypto import verify_password
from mandate.models.importing import ImportSummary, import_data
from mandate.models.tables import Account, User
from mandate.models.user_admin import with_two_factor

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


@dataclass(frozen=True)
class DemoLoginNow:
    login: DemoLogin
    demo_password: bool   # the demo password still lets them in
    two_factor: bool      # they have set up 2FA since


@dataclass(frozen=True)
class DemoNow:
    """The demo organisation as it stands, for a second `mandate demo --if-empty`."""
    logins: list[DemoLoginNow]
    enforced: list[str]   # the demo's accounts whose own switch is on


async def demo_as_it_stands() -> DemoNow | None:
    """The demo's logins and switches now; None unless the demo organisation and all its logins
    are there (a database holding other data is not the demo)."""
    top = next((node for node in await account_forest() if node.row.name == DEMO_ORGANISATION["accounts"][0]["name"]),
               None)
    users = {u.email: u for u in await User.filter(email__in=[login.email for login in DEMO_LOGINS])}
    if top is None or len(users) < len(DEMO_LOGINS):
        return None
    enforced, nodes = [], [top]
    while nodes:
        node = nodes.pop(0)
        if node.row.enforced:
            enforced.append(node.row.name)
        nodes.extend(node.children)
    enrolled = await with_two_factor([user.id for user in users.values()])
    logins = [DemoLoginNow(login, verify_password(users[login.email].password_hash, DEMO_PASSWORD),
                           users[login.email].id in enrolled) for login in DEMO_LOGINS]
    return DemoNow(logins, enforced)


async def load_demo() -> ImportSummary:
    if not await database_is_empty():
        raise DatabaseNotEmpty("the database already holds accounts or users: the demo loads into an empty one only")
    return await import_data(copy.deepcopy(DEMO_ORGANISATION))
