"""Generate web-server access traffic: ELB health checks, browsers, 304s, 404s, Apache's
internal dummy connections, bursts of 5xx while a backend is down, and slow requests, as Apache
combined lines or as fluentd out_s3 lines.

Deterministic for a given seed, so tests and benchmarks can compare against exact counts. The
outages and response times come from their own random streams (outages from the day alone, so
every host of a site fails at once, as behind one load balancer with one database); the request
mix per seed is the same as without them.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

PAGES = [
    "/",
    "/index.html",
    "/about",
    "/blog/",
    "/blog/2012/12/hello-world",
    "/blog/2012/12/aws-data-pipeline",
    "/blog/2012/12/fluentd-to-s3",
    "/products",
    "/products/42",
    "/products/7?ref=home",
    "/search?q=hive",
    "/contact",
    "/login",
    "/cart",
    "/api/v1/items",
    "/api/v1/items/9",
]
ASSETS = ["/css/site.css", "/js/app.js", "/img/logo.png", "/img/banner.jpg", "/favicon.ico", "/robots.txt"]
MISSING = ["/wp-login.php", "/old-page.html", "/img/missing.gif", "/admin/", "/phpmyadmin/"]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.11 (KHTML, like Gecko) Chrome/23.0.1271.97 Safari/537.11",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_8_2) AppleWebKit/536.26.17 (KHTML, like Gecko) Version/6.0.2 Safari/536.26.17",
    "Mozilla/5.0 (Windows NT 6.1; rv:17.0) Gecko/20100101 Firefox/17.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 6_0_1 like Mac OS X) AppleWebKit/536.26 (KHTML, like Gecko) Mobile/10A523",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
REFERERS = [
    "-",
    "-",
    "http://www.google.com/search?q=fluentd+s3",
    "http://example.com/",
    "http://t.co/abc123",
]


@dataclass(frozen=True, slots=True)
class Hit:
    time: datetime
    host: str
    user: str
    method: str
    path: str
    code: str
    size: str
    referer: str
    agent: str
    reqtime: float | None = None
    """Seconds taken to answer (Apache's %D, nginx's $request_time); not in the combined format."""

    def record(self) -> dict[str, str]:
        """The record fluentd's `apache` parser makes: every value a string, '-' kept."""
        return {
            "host": self.host,
            "user": self.user,
            "method": self.method,
            "path": self.path,
            "code": self.code,
            "size": self.size,
            "referer": self.referer,
            "agent": self.agent,
        }


def _client_ip(rng: random.Random) -> str:
    return (
        f"{rng.choice([10, 54, 175, 203])}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


# Pages that hit the database (slow when it is, failing when it is down); the rest are static.
DYNAMIC = ("/search?q=hive", "/products", "/products/42", "/products/7?ref=home", "/cart", "/login")
SLOW = {"/search?q=hive": 0.9, "/api/v1/items": 0.35, "/cart": 0.3, "/products": 0.2}
"""Median seconds of the slow paths; every other page answers in about 20 ms, assets in 2 ms."""
OUTAGE_CODES = ("503", "503", "502", "500", "504")


def outages(day: datetime) -> list[tuple[datetime, datetime]]:
    """The backend's outages on a UTC day: one to three, each 4 to 25 minutes. From the day
    alone, so all hosts (seeds) see the same ones."""
    first = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rng = random.Random(f"outages-{first:%Y-%m-%d}")
    spans = []
    for _ in range(rng.randint(1, 3)):
        begin = first + timedelta(minutes=rng.randint(0, 24 * 60 - 30))
        spans.append((begin, begin + timedelta(minutes=rng.randint(4, 25))))
    return sorted(spans)


def _in_outage(t: datetime, cache: dict[str, list[tuple[datetime, datetime]]]) -> bool:
    key = f"{t:%Y-%m-%d}"
    if key not in cache:
        cache[key] = outages(t)
    return any(b <= t < e for b, e in cache[key])


def _answer(
    hit: Hit, t: datetime, slow: random.Random, cache: dict[str, list[tuple[datetime, datetime]]]
) -> Hit:
    """The hit as the server answered it: its response time, and a 5xx during an outage."""
    path, code, size = hit.path, hit.code, hit.size
    if path in ASSETS or path == "*" or code == "304":
        secs = slow.lognormvariate(-6.2, 0.5)
    else:
        secs = slow.lognormvariate(math.log(SLOW.get(path, 0.02)), 0.6)
    if (path in PAGES or path == "/health.txt") and _in_outage(t, cache):
        # The backend is down: most dynamic requests fail, some only after the proxy's timeout.
        if path in DYNAMIC or path.startswith("/api/") or path == "/health.txt" or slow.random() < 0.3:
            code = slow.choice(OUTAGE_CODES)
            size = str(slow.randint(150, 600))
            secs = 60.0 + slow.random() if code == "504" else slow.uniform(0.001, 0.05)
    elif path in PAGES and slow.random() < 0.002:  # the odd bug
        code, size = "500", str(slow.randint(150, 600))
    return replace(hit, code=code, size=size, reqtime=max(round(secs, 3), 0.001))


def hits(start: datetime, end: datetime, *, per_hour: int = 600, seed: int = 1) -> Iterator[Hit]:
    """Hits between start and end in time order; about per_hour per hour."""
    slow = random.Random(seed * 7919 + 17)
    cache: dict[str, list[tuple[datetime, datetime]]] = {}
    for hit in _requests(start, end, per_hour=per_hour, seed=seed):
        yield _answer(hit, hit.time, slow, cache)


def _requests(start: datetime, end: datetime, *, per_hour: int, seed: int) -> Iterator[Hit]:
    """The requests, as answered by a healthy server with no timings."""
    rng = random.Random(seed)
    elb = [f"10.{rng.randint(100, 200)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(2)]
    mean_gap = 3600.0 / max(per_hour, 1)
    t = start
    while True:
        t = t + timedelta(seconds=rng.expovariate(1.0 / mean_gap))
        if t >= end:
            return
        kind = rng.random()
        ts = t.replace(microsecond=0)
        if kind < 0.30:  # ELB health check
            yield Hit(
                time=ts,
                host=rng.choice(elb),
                user="-",
                method="GET",
                path="/health.txt",
                code="200",
                size="5",
                referer="-",
                agent="ELB-HealthChecker/1.0",
            )
        elif kind < 0.35:  # Apache talking to its own children
            yield Hit(
                time=ts,
                host="::1",
                user="-",
                method="OPTIONS",
                path="*",
                code="200",
                size="-",
                referer="-",
                agent="Apache (internal dummy connection)",
            )
        elif kind < 0.43:
            yield Hit(
                time=ts,
                host=_client_ip(rng),
                user="-",
                method="GET",
                path=rng.choice(MISSING),
                code="404",
                size=str(rng.randint(200, 400)),
                referer="-",
                agent=rng.choice(BROWSERS),
            )
        else:
            path = rng.choice(PAGES + ASSETS)
            code, size = "200", str(rng.randint(300, 90_000))
            if path == "/favicon.ico" and rng.random() < 0.5:
                code, size = "404", "321"
            elif rng.random() < 0.15:
                code, size = "304", "-"
            method = "POST" if path in ("/login", "/cart") and rng.random() < 0.5 else "GET"
            user = "alice" if path == "/cart" and rng.random() < 0.3 else "-"
            yield Hit(
                time=ts,
                host=_client_ip(rng),
                user=user,
                method=method,
                path=path,
                code=code,
                size=size,
                referer=rng.choice(REFERERS),
                agent=rng.choice(BROWSERS),
            )


def combined_line(hit: Hit, tz: timezone = UTC) -> str:
    """Apache combined log format (%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i")."""
    stamp = hit.time.astimezone(tz).strftime("%d/%b/%Y:%H:%M:%S %z")
    request = f"{hit.method} {hit.path} HTTP/1.1" if hit.path != "*" else "OPTIONS * HTTP/1.0"
    return (
        f'{hit.host} - {hit.user} [{stamp}] "{request}" {hit.code} {hit.size} "{hit.referer}" "{hit.agent}"'
    )


def fluentd_line(hit: Hit, *, tag: str = "apache.access", tz: timezone = UTC) -> str:
    """One line as fluentd's out_file/out_s3 formatter writes it: time<TAB>tag<TAB>json."""
    stamp = hit.time.astimezone(tz).isoformat(timespec="seconds")
    record = hit.record()
    if hit.reqtime is not None:  # as a site logging %D with a custom fluentd regexp has it
        record["reqtime"] = f"{hit.reqtime:.3f}"
    return f"{stamp}\t{tag}\t{json.dumps(record, separators=(',', ':'))}"


def write_fluentd_objects(
    root: Path,
    hosts: dict[str, list[Hit]],
    *,
    day_format: str = "%Y-%m-%d",
    tz: timezone = UTC,
    tag: str = "apache.access",
) -> list[Path]:
    """Write gzip objects keyed like out_s3 with `time_slice_format <day_format>/<host>-%H`:
    `root/<day>/<host>-<HH>_0.gz`. Returns the files written."""
    written: list[Path] = []
    for host, items in hosts.items():
        slices: dict[tuple[str, str], list[str]] = {}
        for hit in items:
            local = hit.time.astimezone(tz)
            slices.setdefault((local.strftime(day_format), local.strftime("%H")), []).append(
                fluentd_line(hit, tag=tag, tz=tz)
            )
        for (day, hour), lines in sorted(slices.items()):
            path = root / day / f"{host}-{hour}_0.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(path, "wt", encoding="utf-8", newline="\n") as out:
                out.write("\n".join(lines) + "\n")
            written.append(path)
    return written
