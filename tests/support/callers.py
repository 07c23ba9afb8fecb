"""The permission sweep's world: one caller of each kind, and a tree of their own to call on
(`World`, built by `build_world`); numbered, so that worlds share a database without meeting."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.api import Api
from tests.support.api_tokens import api_token
from tests.support.clock import Clock
from tests.support.codes import totp_now
from tests.support.people import own_id, password_only, signed_in, start_enrolment

# The kinds of caller.
NONE = "no token"
REVOKED = "revoked token"
PASSWORD_ONLY = "password-only token"
ENROLMENT_ONLY = "enrolment-only token"
MEMBER = "member of the tree"
OTHER_MEMBER = "member of another tree"
OTHER_MANAGER = "manager of another tree"
MANAGER = "manager of the tree"  # a full session that passed 2FA: the positive control
# API tokens of the tree's manager: they act as the manager (READ, or MANAGE as well).
READ_TOKEN = "READ API token of the tree's manager"
MANAGE_TOKEN = "MANAGE API token of the tree's manager"
TOKEN_CALLERS = [READ_TOKEN, MANAGE_TOKEN]
SESSION_CALLERS = [NONE, REVOKED, PASSWORD_ONLY, ENROLMENT_ONLY, MEMBER, OTHER_MEMBER, OTHER_MANAGER, MANAGER]
CALLERS = [*SESSION_CALLERS[:-1], *TOKEN_CALLERS, MANAGER]  # the positive control still last


@dataclass
class Caller:
    token: str | None
    email: str | None = None  # whose identity the caller may see as their own
    secret: str | None = None  # the TOTP secret their code comes from (active, or pending enrolment)
    session_id: str | None = None  # their own session's id, for a caller who may list their sessions


@dataclass
class World:
    """North > Dental > Clinic (sites Leeds on North, Hull on Dental), enforced on North by its
    manager; South (site Bristol) beside it. Names carry the world's number, so worlds share a
    database without meeting."""

    number: int
    callers: dict[str, Caller] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    def name(self, base: str) -> str:
        return f"{base} (world {self.number})"

    def email(self, who: str) -> str:
        return f"{who}.w{self.number}@example.org"

    def markers(self, caller: str) -> list[str]:
        """All of the North tree an outsider must never see (but the caller's own identity)."""
        own = self.callers[caller].email
        names = [self.name(n) for n in ("North", "Dental", "Clinic", "Leeds", "Hull")]
        emails = [e for who, e in self.emails.items() if who.startswith("north") and e != own]
        ids = [v for k, v in self.ids.items() if k in NORTH_OBJECTS or k.removeprefix("user:") in emails]
        return names + emails + ids


NORTH_OBJECTS = ("north", "dental", "clinic", "leeds", "hull")


async def build_world(api: Api, seed, clock: Clock, number: int) -> World:
    w = World(number)
    w.emails = {who: w.email(who) for who in (
        "north-manager", "north-member", "north-enrolling", "south-manager", "south-member", "loner")}
    e = w.emails
    await seed({
        "users": [{"email": email} for email in e.values()],
        "accounts": [
            {"name": w.name("North"), "managers": [e["north-manager"]],
             "members": [e["north-member"], e["north-enrolling"]], "sites": [{"name": w.name("Leeds")}],
             "children": [{"name": w.name("Dental"), "sites": [{"name": w.name("Hull")}],
                           "children": [{"name": w.name("Clinic")}]}]},
            {"name": w.name("South"), "managers": [e["south-manager"]], "members": [e["south-member"]],
             "sites": [{"name": w.name("Bristol")}]},
        ],
    })
    manager = await api.enrol(await signed_in(api, e["north-manager"]))
    member = await api.enrol(await signed_in(api, e["north-member"]))
    other_manager = await api.enrol(await signed_in(api, e["south-manager"]))
    other_member = await signed_in(api, e["south-member"])

    for name in ("North", "Dental", "Clinic"):
        w.ids[name.lower()] = await api.account_id(manager.token, w.name(name))
    w.ids["south"] = await api.account_id(other_manager.token, w.name("South"))
    sites = await api.gql("query($id: ID!) { account(id: $id) { sites { id name } descendants { sites { id name } } } }",
                          {"id": w.ids["north"]}, token=manager.token)
    account = sites.data["account"]
    for site in account["sites"] + [s for d in account["descendants"] for s in d["sites"]]:
        w.ids[site["name"].split(" ")[0].lower()] = site["id"]
    for email, token in ((e["north-manager"], manager.token), (e["north-member"], member.token),
                         (e["south-manager"], other_manager.token), (e["south-member"], other_member)):
        w.ids[f"user:{email}"] = await own_id(api, token)
    switched = await api.gql("mutation($a: ID!) { setEnforcement(accountId: $a, enforced: true) { id } }",
                             {"a": w.ids["north"]}, token=manager.token)
    assert not switched.errors, switched.body

    status, enrolling = await api.login_token(e["north-enrolling"])
    assert status == "ENROLMENT_REQUIRED", status
    enrolling_secret = await start_enrolment(api, enrolling)
    w.ids[f"user:{e['north-enrolling']}"] = await own_id(api, enrolling)
    other_member_secret = await start_enrolment(api, other_member)

    clock.advance(30)  # a fresh TOTP step for the revoked session's second factor
    password_only_token = await password_only(api, e["north-manager"])
    revoked = (await api.verify(await password_only(api, e["north-manager"]),
                                totp_now(manager.secret))).data["verifyTwoFactor"]["token"]
    assert (await api.gql("mutation { logout }", token=revoked)).data == {"logout": True}
    clock.advance(30)  # and another for the codes the callers send
    read_token, _ = await api_token(api, manager.token, ["READ"], name="sweep, READ")
    manage_token, _ = await api_token(api, manager.token, ["MANAGE"], name="sweep, MANAGE")

    w.callers = {
        NONE: Caller(None),
        REVOKED: Caller(revoked, secret=manager.secret),
        PASSWORD_ONLY: Caller(password_only_token, secret=manager.secret),
        ENROLMENT_ONLY: Caller(enrolling, e["north-enrolling"], enrolling_secret),
        MEMBER: Caller(member.token, e["north-member"], member.secret),
        OTHER_MEMBER: Caller(other_member, e["south-member"], other_member_secret),
        OTHER_MANAGER: Caller(other_manager.token, e["south-manager"], other_manager.secret),
        READ_TOKEN: Caller(read_token, e["north-manager"], manager.secret),
        MANAGE_TOKEN: Caller(manage_token, e["north-manager"], manager.secret),
        MANAGER: Caller(manager.token, e["north-manager"], manager.secret),
    }
    for who in (MEMBER, OTHER_MEMBER, OTHER_MANAGER, MANAGER):
        caller = w.callers[who]
        listed = await api.gql("{ me { sessions { id current } } }", token=caller.token)
        caller.session_id = next(s["id"] for s in listed.data["me"]["sessions"] if s["current"])
    return w
