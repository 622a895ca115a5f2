"""Configuration: `tailrace.toml` < `TAILRACE_*` environment < command-line flags.

Validated once at start into a frozen Settings; `tailrace config` prints the effective values.
Top-level keys can be set in the file (`key = value`), as `TAILRACE_<KEY>` in the environment,
or by a flag of the command that uses it. Each `[section]` is a frozen dataclass of its own
(`[a.b]` nests); its keys can also be set as `TAILRACE_<SECTION>__<KEY>` (double underscore
between levels). An unknown key or section is an error with "did you mean".

Adding a section: write a frozen, keyword-only dataclass whose fields have defaults, and add a
field of that type to Settings (or to the section that contains it).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailrace.errors import ConfigError, did_you_mean
from tailrace.limits import Limits, load_limits

SECRET_WORDS = ("secret", "password", "token")


@dataclass(frozen=True, kw_only=True)
class ExecutionSettings:
    """[execution]: how the service's processes run attempts (flags of up/scheduler/worker win)."""

    lease: float = 120.0
    """Seconds an attempt is leased when its object sets no reportProgressTimeout."""
    poll: float = 1.0
    """Seconds between polls when a task runner is idle."""
    grace: float = 10.0
    """On stop, seconds running attempts may go on before they are given back."""
    run_as: str | None = None
    """OS user of shell-like activities when there is one owner (default under root: nobody)."""
    users: Mapping[str, str] = field(default_factory=dict)
    """[execution.users] owner = "os user": needed as soon as there are several owners."""
    allow_root: bool = False
    """True lets a root server run commands as root (it then warns loudly at start-up)."""
    work_root: Path | None = None
    """Where attempt directories go (default /var/tmp/tailrace-attempts-<hash of home>)."""
    network: str = "auto"
    """none: shell-like steps get their own network namespace (loopback only) and private /tmp
    and /run, so they reach no local database, cache or socket; host: the host's network; auto:
    none whenever a root server runs them as another user."""

    def __post_init__(self) -> None:
        if self.network not in ("auto", "none", "host"):
            raise ConfigError(f"[execution] network must be auto, none or host; found {self.network!r}")
        for name in ("lease", "poll", "grace"):
            if getattr(self, name) < 0 or (name == "lease" and self.lease == 0):
                raise ConfigError(f"[execution] {name} must be positive; found {getattr(self, name)}")
        seen: dict[str, str] = {}
        for owner, user in self.users.items():
            if user in seen:
                raise ConfigError(
                    f"execution.users maps both '{seen[user]}' and '{owner}' to OS user '{user}'; each "
                    "owner needs a user of its own (they could read each other's running attempts)"
                )
            seen[user] = owner


_SIZE_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip


def parse_size(text: str, key: str, *, percent: bool = False) -> tuple[int | None, float | None]:
    """'1GiB', '512MB', '1073741824' (bytes) -> (bytes, None); with percent, '25%' -> (None, 0.25).

    :raises ConfigError: naming the key and the accepted forms."""
    t = text.strip().lower().replace(" ", "")
    if percent and t.endswith("%"):
        try:
            share = float(t[:-1]) / 100
        except ValueError:
            share = -1.0
        if 0 < share <= 1:
            return None, share
    else:
        digits = t.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = t[len(digits) :] or "b"
        try:
            number = float(digits)
        except ValueError:
            number = -1.0
        if unit in _SIZE_UNITS and number > 0:
            return int(number * _SIZE_UNITS[unit]), None
    forms = "a size such as 1GiB, 512MiB or 2GB" + (
        ", or a share of the machine's memory such as 25%" if percent else ""
    )
    raise ConfigError(f"[duckdb] {key} = {text!r} is not {forms}")


@dataclass(frozen=True, kw_only=True)
class DuckDBSettings:
    """[duckdb]: memory, threads and spill files of the DuckDB engine (tailrace.engines.hive.resources)."""

    memory_limit: str | None = None
    """DuckDB's memory_limit for one script run (1GiB, 25%); default host_memory / concurrent."""
    host_memory: str = "50%"
    """What all DuckDB runs on this host may use together (a size, or a share of the machine's
    memory: the smaller of RAM and the cgroup limit)."""
    concurrent: int | None = None
    """How many runs share host_memory at once on this host (more wait for a free slot);
    default: the `workers` setting."""
    threads: int | None = None
    """DuckDB threads per run; default: every core."""
    temp_directory: Path | None = None
    """Where runs spill (one private directory per owner and run, removed after it);
    default <home>/spill."""
    max_temp_size: str | None = None
    """Disk one run may spill (DuckDB's max_temp_directory_size); default 90% of the free disk."""
    decompress_gzip: bool = True
    """Decompress .gz inputs to the run's work directory in parallel first (faster; needs disk
    for the uncompressed input), instead of DuckDB reading them one file at a time."""

    def __post_init__(self) -> None:
        if self.memory_limit is not None:
            parse_size(self.memory_limit, "memory_limit", percent=True)
        parse_size(self.host_memory, "host_memory", percent=True)
        if self.max_temp_size is not None:
            parse_size(self.max_temp_size, "max_temp_size")
        for name in ("concurrent", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"[duckdb] {name} must be 1 or more; found {value}")


@dataclass(frozen=True, kw_only=True)
class SmtpSettings:
    """[smtp]: the mail server that email and email-json subscriptions are sent through
    (environment: TAILRACE_SMTP__HOST, TAILRACE_SMTP__PASSWORD, ...)."""

    host: str | None = None
    """No host: email subscriptions are refused at Subscribe."""
    port: int = 25
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    """Never printed (`tailrace config` masks it) and never logged."""
    starttls: bool = False
    """Upgrade the connection with STARTTLS before logging in (port 587 servers)."""
    from_address: str = "tailrace-notifications@localhost"
    """The From: of every message (SNS's is no-reply@sns.amazonaws.com)."""
    timeout: float = 15.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"[smtp] port must be 1-65535; found {self.port}")
        if self.password and not self.user:
            raise ConfigError("[smtp] password is set but user is not")


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """[databases]: the SQL databases and DynamoDB tables definitions reach (docs/databases.md)."""

    allowed: Mapping[str, str] = field(default_factory=dict)
    """[databases.allowed] owner (or "*") = "host[:port][/database], ...": what an owner's
    definitions may connect to on the service; nothing by default. Single-user commands (run,
    demo) are not restricted. The metadata database is refused to every definition."""
    rds_instances: Mapping[str, str] = field(default_factory=dict)
    """[databases.rds_instances] rdsInstanceId = "jdbc:mysql://host:port/db" (or jdbc:postgresql:)."""
    redshift_clusters: Mapping[str, str] = field(default_factory=dict)
    """[databases.redshift_clusters] clusterId (or the host of a jdbc:redshift: connection string)
    = "jdbc:postgresql://host:port/db": the PostgreSQL database that plays the cluster."""
    dynamodb_tables: Mapping[str, str] = field(default_factory=dict)
    """[databases.dynamodb_tables] owner (or "*") = "pattern, ...": DynamoDB table names (shell
    patterns) an owner's definitions may use on the service; none by default."""
    connect_timeout: float = 10.0
    """Seconds to wait for a database connection before the attempt fails."""

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0:
            raise ConfigError(f"[databases] connect_timeout must be positive; found {self.connect_timeout}")


@dataclass(frozen=True, kw_only=True)
class SparkSettings:
    """[spark]: the Spark engine (`hive_engine = "spark"`, `tailrace hive --engine spark`, and
    HiveActivity / HiveCopyActivity on an EmrCluster when `emr_cluster` is true). docs/engines.md."""

    master: str = "local[*]"
    """local[N], spark://HOST:PORT (standalone cluster) or sc://HOST:PORT (Spark Connect)."""
    conf: Mapping[str, str] = field(default_factory=dict)
    """[spark.conf] passed to the session as is, e.g. "spark.executor.memory" = "2g"."""
    staging_dir: Path | None = None
    """Inputs and results of a run (default <home>/spark/staging): on a cluster of several
    hosts, a directory every host mounts at the same path."""
    executor_timeout: float = 60.0
    """Seconds a cluster master may take to give the first executor before the attempt fails."""
    emr_cluster: bool = False
    """True: activities that run on an EmrCluster resource use the spark engine; EmrActivity
    steps run with spark-submit on `master`."""

    def __post_init__(self) -> None:
        if self.executor_timeout <= 0:
            raise ConfigError(f"[spark] executor_timeout must be positive; found {self.executor_timeout}")
        if not (self.master.startswith(("local", "spark://", "sc://"))):
            raise ConfigError(
                f"[spark] master {self.master!r} is not local[N], spark://HOST:PORT or sc://HOST:PORT"
            )


@dataclass(frozen=True, kw_only=True)
class Settings:
    home: Path = Path(".tailrace")
    """Data directory: metadata database, embedded object store (`s3/`), logs, buffers."""
    database_url: str | None = None
    """SQLAlchemy URL of the metadata store; default sqlite:///<home>/tailrace.db."""
    s3_endpoint_url: str | None = None
    """When set, s3:// URIs go to this S3 endpoint through boto3 instead of <home>/s3/."""
    s3_region: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8040
    s3_port: int = 8041
    """Port of the S3 REST API of the embedded store in `tailrace up`; 0 turns it off (it is
    off anyway when s3_endpoint_url sends s3:// elsewhere). `tailrace s3 serve` runs it alone."""
    workers: int = 4
    """Embedded worker threads started by `tailrace up`."""
    hive_engine: str = "duckdb"
    """Engine that runs HiveActivity and HiveCopyActivity scripts (tailrace.engines.registry)."""
    endpoint: str | None = None
    """Address of a running `tailrace up`, for the client commands (default http://host:port)."""
    access_key_id: str | None = None
    secret_access_key: str | None = None
    redis_url: str | None = None
    """When set (redis://HOST:PORT/DB), events go to a Redis stream that every process can follow;
    otherwise to the in-process bus."""
    redis_stream: str = "tailrace:events"
    """The Redis stream key of the event bus (one per metadata database)."""
    redis_maxlen: int = 100_000
    """About how many events the Redis stream keeps (older ones are trimmed)."""
    limits: Limits = field(default_factory=Limits)
    """Per-owner limits and definition size limits: the `[limits]` section of tailrace.toml or
    TAILRACE_LIMITS_<NAME> (see tailrace/limits.py for the names and defaults)."""
    secret_key_file: Path | None = None
    """Key that encrypts access-key secrets in the database; default <home>/secret.key (0600).
    Keep it (and its backup) apart from the database's."""
    api_processes: int = 1
    """Processes serving the API in `tailrace up` (PostgreSQL only; SQLite keeps one)."""
    s3_processes: int = 1
    """Processes serving the S3 API of the embedded store in `tailrace up` (they share its port;
    one interpreter runs about one core). `tailrace s3 serve --processes N` alone."""
    allowed_local_dirs: tuple[Path, ...] = ()
    """Local directories that definitions may name (file:// or plain paths) when an owner's
    pipeline runs on the service; empty (none) by default. A list in the file; in the
    environment TAILRACE_ALLOWED_LOCAL_DIRS separated by ':'. Single-user commands (run,
    hive, demo) are not restricted."""
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    spark: SparkSettings = field(default_factory=SparkSettings)
    duckdb: DuckDBSettings = field(default_factory=DuckDBSettings)
    notify_private_destinations: str = "single-owner"
    """HTTP/S subscribers on loopback, private or reserved addresses: allow, deny, or single-owner
    (allowed while the access keys belong to one owner only)."""
    notify_allowed_networks: str | None = None
    """Comma-separated networks (CIDR) subscribers may always be in, e.g. 10.1.0.0/16."""
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    """[smtp]: where email subscriptions are sent from."""
    dynamodb_endpoint_url: str | None = None
    """DynamoDB endpoint of DynamoDBDataNode and the DynamoDB preconditions (default: AWS's own,
    from the node's `region` or s3_region); credentials from aws_access_key_id/secret."""
    databases: DatabaseSettings = field(default_factory=DatabaseSettings)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'tailrace.db').resolve()}"

    @property
    def effective_endpoint(self) -> str:
        return self.endpoint or f"http://{self.host}:{self.port}"

    def as_dict(self) -> dict[str, Any]:
        """Every setting and section, secrets masked (keys, passwords in URLs)."""
        out = _plain(self)
        out["database_url"] = redact_url(self.effective_database_url)
        return out


def _plain(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = _plain(value)
            continue
        if value and any(w in f.name for w in SECRET_WORDS):
            value = "****"
        elif isinstance(value, str):
            value = redact_url(value)
        elif isinstance(value, tuple):
            value = [str(v) for v in value]
        out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def redact_url(url: str) -> str:
    """The URL with any password replaced by ****, for printing; anything else unchanged."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:****@{host}"


mask_url = redact_url


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'execution': {'lease': 1}} -> {'execution.lease': 1} (for printing)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# --- reading --------------------------------------------------------------------------------------


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _section_types(cls: type) -> dict[str, type]:
    return {name: t for name, t in _hints(cls).items() if isinstance(t, type) and dataclasses.is_dataclass(t)}


def _scalar_types(cls: type) -> dict[str, Any]:
    return {name: t for name, t in _hints(cls).items() if not dataclasses.is_dataclass(t)}


def _coerce(name: str, kind: Any, raw: Any, origin: str) -> Any:
    """raw (from TOML, or a string from the environment) as `kind`."""
    args = typing.get_args(kind)
    optional = isinstance(kind, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), kind) if optional else kind
    if optional and raw in (None, ""):
        return None
    label = getattr(base, "__name__", str(base))
    try:
        if base is Path:
            return Path(str(raw)).expanduser()
        if base is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if base is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if base is float:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        if typing.get_origin(base) is tuple:
            items = raw.split(":") if isinstance(raw, str) else list(raw)
            return tuple(Path(str(p)).expanduser().resolve() for p in items if str(p))
        if typing.get_origin(base) is Mapping:
            if not isinstance(raw, Mapping) or not all(isinstance(v, str) and v for v in raw.values()):
                raise ValueError(raw)
            return {str(k): v for k, v in raw.items()}
        if base is str:
            if isinstance(raw, (dict, list)):
                raise ValueError(raw)
            return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: '{name}' has value {raw!r}; expected {label}")
    return raw


def _build(cls: type, data: Mapping[str, Any], *, origin: str, where: str) -> Any:
    """A section dataclass from a TOML table: unknown keys refused, values coerced."""
    scalars, sections = _scalar_types(cls), _section_types(cls)
    known = [*scalars, *sections]
    values: dict[str, Any] = {}
    for key, raw in data.items():
        dotted = f"{where}{key}"
        if key in sections:
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{origin}: '{dotted}' is a section; write it as [{dotted}]")
            values[key] = _build(sections[key], raw, origin=origin, where=f"{dotted}.")
        elif key in scalars:
            if isinstance(raw, Mapping) and typing.get_origin(scalars[key]) is not Mapping:
                raise ConfigError(f"{origin}: '{dotted}' is a setting, not a section [{dotted}]")
            values[key] = _coerce(dotted, scalars[key], raw, origin)
        else:
            what = "section" if isinstance(raw, Mapping) else "key"
            place = f" in [{where.rstrip('.')}]" if where else ""
            raise ConfigError(f"{origin}: unknown {what} '{key}'{place}.{did_you_mean(key, known)}")
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}")


def _from_environment(cls: type, env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The TAILRACE_* variables that name a setting of cls, as a TOML-like table."""
    out: dict[str, Any] = {}
    for name in _scalar_types(cls):
        key = prefix + name.upper()
        if key in env:
            out[name] = env[key]
    for name, section in _section_types(cls).items():
        if cls is Settings and name == "limits":
            continue  # read by tailrace.limits (TAILRACE_LIMITS_<NAME>)
        nested = _from_environment(section, env, f"{prefix}{name.upper()}__")
        if nested:
            out[name] = nested
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def load_settings(
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from file < environment < overrides (None values in overrides are ignored)."""
    env = os.environ if environ is None else environ
    path = config_file or (
        Path(env["TAILRACE_CONFIG"]) if env.get("TAILRACE_CONFIG") else Path("tailrace.toml")
    )
    data: dict[str, Any] = {}
    limits_section: Any = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}")
        limits_section = data.pop("limits", {})
        if not isinstance(limits_section, dict):
            raise ConfigError(f"{path}: 'limits' must be a [limits] section; found {limits_section!r}")
        _build(Settings, data, origin=str(path), where="")  # file errors name the file
    elif config_file is not None:
        raise ConfigError(f"config file {config_file} does not exist")
    from_env = _from_environment(Settings, env, "TAILRACE_")
    _build(Settings, from_env, origin="environment (TAILRACE_*)", where="")
    data = _merge(data, from_env)
    # The standard AWS variables are honoured for the S3 backend, as boto3 would.
    for key, env_key in (
        ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
        ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    ):
        if key not in data and env.get(env_key):
            data[key] = env[env_key]
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    scalars = _scalar_types(Settings)
    for key in flags:
        if key not in scalars:
            raise ConfigError(f"unknown setting '{key}'.{did_you_mean(key, scalars)}")
    _build(Settings, flags, origin="command line", where="")
    settings = _build(Settings, _merge(data, flags), origin="configuration", where="")
    # [limits] keeps its own reader (TAILRACE_LIMITS_<NAME>, positive whole numbers).
    return dataclasses.replace(settings, limits=load_limits(limits_section, env, str(path)))
