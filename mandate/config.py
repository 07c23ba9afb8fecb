"""Every setting Mandate reads from the environment, in one place."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("mandate.config")

DEV_KEY_FILE = ".mandate-secret-key"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class TrustedProxies:
    """MANDATE_TRUSTED_PROXIES: the peers whose X-Forwarded-For is read (gql/proxies.py)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    invalid: tuple[str, ...] = ()  # entries that are neither an address nor a network: `serve` refuses

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def _as_ipv4_when_mapped(network: ipaddress.IPv4Network | ipaddress.IPv6Network):
    """`::ffff:10.0.0.0/104` as `10.0.0.0/8`: client addresses are compared in IPv4 form."""
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is None or network.prefixlen < 96:
        return network
    return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")


def _trusted_proxies() -> TrustedProxies:
    """Comma-separated addresses or networks (CIDR, host bits clear). A scope id (`fe80::1%eth0`)
    is refused: it names an interface of this machine, not a peer."""
    networks, invalid = [], []
    for entry in (e.strip() for e in os.environ.get("MANDATE_TRUSTED_PROXIES", "").split(",")):
        if not entry:
            continue
        try:
            if "%" in entry:
                raise ValueError(entry)
            networks.append(_as_ipv4_when_mapped(ipaddress.ip_network(entry)))
        except ValueError:
            invalid.append(entry)
    return TrustedProxies(tuple(networks), tuple(invalid))


class InvalidSetting(ValueError):
    """A setting that cannot mean what it says: the app refuses to start rather than guess."""


@dataclass(frozen=True)
class CorsOrigins:
    """MANDATE_CORS_ORIGINS: the origins of the browser frontends allowed to call the API
    (gql/app.py), each in the form browsers send in `Origin`: lower case, no default port."""

    origins: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()  # why each bad entry is not an origin: `serve` and the app refuse to start

    def __bool__(self) -> bool:
        return bool(self.origins)

    def refusal(self) -> str:
        return ("MANDATE_CORS_ORIGINS must be comma-separated origins, scheme://host[:port] "
                f"(e.g. https://app.example.org,http://127.0.0.1:5173): {'; '.join(self.refused)}")


_ORIGIN = re.compile(r"(https?)://(\[[0-9a-f:.]+\]|[a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::([0-9]{1,5}))?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _origin(entry: str) -> str:
    """The entry as browsers send it in `Origin`, or ValueError saying why it is none."""
    if "*" in entry:  # a wildcard would let any page a user opens call the API from inside their network
        raise ValueError(f"{entry!r}: no wildcard ('*' is not accepted), name each origin")
    match = _ORIGIN.fullmatch(entry.lower())
    if match is None:
        if re.fullmatch(r"https?://[^/?#]+[/?#].*", entry, re.IGNORECASE):
            raise ValueError(f"{entry!r} has a path or query: an origin ends after the host or port (no '/')")
        raise ValueError(f"{entry!r} is not an http:// or https:// origin with an ASCII host (xn--... for IDN)")
    scheme, host, port = match.groups()
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"{entry!r}: {host} is not an IPv6 address") from None
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"{entry!r}: port {port} is not 1 to 65535")
    if port is None or port.lstrip("0") == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


def _cors_origins() -> CorsOrigins:
    origins: dict[str, None] = {}  # in order, once each
    refused = []
    for entry in (e.strip() for e in os.environ.get("MANDATE_CORS_ORIGINS", "").split(",")):
        if not entry:
            continue
        try:
            origins[_origin(entry)] = None
        except ValueError as exc:
            refused.append(str(exc))
    return CorsOrigins(tuple(origins), tuple(refused))


ENVIRONMENTS = ("development", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class MissingSecretKey(RuntimeError):
    """Production never falls back to a development key."""


def _configured_keys() -> list[str]:
    """MANDATE_SECRET_KEY: comma-separated; the first encrypts, all decrypt."""
    return [k.strip() for k in os.environ.get("MANDATE_SECRET_KEY", "").split(",") if k.strip()]


def _secret_keys() -> list[str]:
    keys = _configured_keys()
    if keys:
        return keys
    path = Path(DEV_KEY_FILE)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    log.warning(
        "MANDATE_SECRET_KEY is not set: using a development key kept in %s. "
        "Set MANDATE_SECRET_KEY in production.",
        path.resolve(),
    )
    return [path.read_text().strip()]


@dataclass(frozen=True)
class Settings:
    # "development" (the default) or "production": production refuses to serve without
    # MANDATE_SECRET_KEY and hides field suggestions from error messages.
    env: str = field(default_factory=lambda: os.environ.get("MANDATE_ENV", "development").strip().lower())
    database_url: str = field(
        default_factory=lambda: os.environ.get("DATABASE_URL", "sqlite://mandate.sqlite3")
    )
    introspection: bool = field(default_factory=lambda: _flag("MANDATE_INTROSPECTION", True))
    playground: bool = field(default_factory=lambda: _flag("MANDATE_PLAYGROUND", True))
    # Queries run as compiled plans (gql/plan.py); off, graphql-core executes every field itself.
    compiled_execution: bool = field(default_factory=lambda: _flag("MANDATE_COMPILED_EXECUTION", True))
    # Minutes a password-only or enrolment-only token lives; hours a full session lives.
    partial_token_minutes: int = field(default_factory=lambda: _int("MANDATE_PARTIAL_TOKEN_MINUTES", 10))
    session_hours: int = field(default_factory=lambda: _int("MANDATE_SESSION_HOURS", 12))
    # argon2id cost: the defaults follow RFC 9106's second recommendation; tests lower them.
    argon2_time_cost: int = field(default_factory=lambda: _int("MANDATE_ARGON2_TIME_COST", 3))
    argon2_memory_kib: int = field(default_factory=lambda: _int("MANDATE_ARGON2_MEMORY_KIB", 65536))
    max_body_bytes: int = field(default_factory=lambda: _int("MANDATE_MAX_BODY_BYTES", 262144))
    # Objects one answer may hold, counted during execution (gql/limits.py); past it, QUERY_TOO_COMPLEX.
    max_result_objects: int = field(default_factory=lambda: _int("MANDATE_MAX_RESULT_OBJECTS", 50000))
    # Whether MANDATE_SECRET_KEY names any key (production refuses to start without one).
    secret_key_set: bool = field(default_factory=lambda: bool(_configured_keys()))
    # /metrics in Prometheus' text format on the API's own port (gql/metrics.py).
    metrics: bool = field(default_factory=lambda: _flag("MANDATE_METRICS", False))
    # prometheus-client's folder for counts shared by several processes; `mandate serve --workers N`
    # makes one when metrics are on (prometheus-client reads the variable itself too).
    metrics_folder: str | None = field(default_factory=lambda: os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None)
    # Minutes between clean-ups of dead sessions and stale throttle rows in `serve` (models/cleanup.py);
    # 0 turns them off (run `mandate cleanup` from cron instead).
    cleanup_minutes: float = field(default_factory=lambda: float(os.environ.get("MANDATE_CLEANUP_MINUTES") or 60))
    # Of the JSON log lines on stderr: INFO has one line per request; WARNING only the incidents.
    log_level: str = field(default_factory=lambda: os.environ.get("MANDATE_LOG_LEVEL", "INFO").strip().upper())
    # None by default: the client address is the TCP peer's, whatever the headers say.
    trusted_proxies: TrustedProxies = field(default_factory=_trusted_proxies)
    # None by default: no answer lets a page of another origin read it (gql/app.py).
    cors_origins: CorsOrigins = field(default_factory=_cors_origins)

    @property
    def development(self) -> bool:
        return self.env == "development"

    _keys: list[str] | None = field(default=None, repr=False, compare=False)

    @property
    def secret_keys(self) -> list[str]:
        if self._keys is None:
            if not self.secret_key_set and self.env == "production":
                raise MissingSecretKey("MANDATE_ENV=production needs MANDATE_SECRET_KEY")
            object.__setattr__(self, "_keys", _secret_keys())
        return self._keys  # type: ignore[return-value]


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def reload_settings() -> Settings:
    """Read the environment again (the CLI and tests change it)."""
    global _settings
    _settings = Settings()
    return _settings
