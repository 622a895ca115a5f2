"""Generate web-server access traffic: ELB health checks, browsers, 304s, 404s and Apache's
internal dummy connections, as Apache combined lines or as fluentd out_s3 lines.

Deterministic for a given seed, so tests and benchmarks can compare against exact counts.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
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


def hits(start: datetime, end: datetime, *, per_hour: int = 600, seed: int = 1) -> Iterator[Hit]:
    """Hits between start and end in time order; about per_hour per hour."""
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
    return f"{stamp}\t{tag}\t{json.dumps(hit.record(), separators=(',', ':'))}"


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
