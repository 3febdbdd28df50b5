"""``python -m sim.score``: grade the pipeline's alerts against the simulator's labelled incidents.

An alert matches an incident when rule and subject are equal and the alert's window overlaps the
incident's ``[first_ts, last_ts]``. Per rule: precision = matching alerts / alerts, recall =
detected incidents / incidents, and detection latency = the first matching alert's
``created_at`` minus the moment the threshold-crossing event was sent (``threshold_sent_at``;
``threshold_ts`` for labels without it). Only alerts whose window overlaps the labelled stream
are considered, so older runs in the same database do not count against this one.

Decoys (``{"kind": "decoy"}`` labels: travellers, users behind the corporate NAT and its address)
are benign populations built to look like attacks: an alert of one of a decoy's ``rules`` on its
subject is a false alert by construction, counted per population (``--max-decoy-alerts``).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sim.cli import command_parser

_SLACK = timedelta(milliseconds=1)  # labels carry millisecond timestamps


@dataclass(frozen=True, slots=True)
class AlertRow:
    """The columns of ``rtep.alerts`` scoring needs."""

    rule: str
    subject: str
    window_start: datetime
    window_end: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RuleScore:
    """The grade of one rule. Precision is None without alerts, recall None without incidents."""

    rule: str
    incidents: int
    detected: int
    alerts: int
    matched_alerts: int
    precision: float | None
    recall: float | None
    latency_p50_s: float | None
    latency_p99_s: float | None


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Labels:
    """What scoring reads of a labels file; ``summary`` is None for a run that did not finish."""

    incidents: list[dict[str, Any]]
    decoys: list[dict[str, Any]]
    summary: dict[str, Any] | None


def load_labels(path: Path) -> Labels:
    """The incident, decoy (each subject once) and summary records of a labels file."""
    incidents: list[dict[str, Any]] = []
    decoys: dict[tuple[str, str], dict[str, Any]] = {}
    summary = None
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            if record["kind"] == "incident":
                incidents.append(record)
            elif record["kind"] == "decoy":  # an endless run repeats them every chunk
                decoys[(record["subject_type"], record["subject"])] = record
            elif record["kind"] == "summary":
                summary = record
    return Labels(incidents, list(decoys.values()), summary)


def decoy_alerts(decoys: list[dict[str, Any]], alerts: list[AlertRow]) -> dict[str, int]:
    """Per decoy population, the alerts of a rule the decoy must not fire, on the decoy.

    Subjects of both kinds share one namespace here: userIds never look like IP addresses."""
    banned = {(rule, d["subject"]): d["population"] for d in decoys for rule in d["rules"]}
    out = dict.fromkeys(sorted({d["population"] for d in decoys}), 0)
    for alert in alerts:
        population = banned.get((alert.rule, alert.subject))
        if population is not None:
            out[population] += 1
    return out


def fetch_alerts(dsn: str, since: datetime | None, until: datetime | None) -> list[AlertRow]:
    """Alerts from ``rtep.alerts`` whose window overlaps ``[since, until]`` (all when None)."""
    import psycopg

    sql = "SELECT rule, subject, window_start, window_end, created_at FROM rtep.alerts"
    params: list[datetime] = []
    if since is not None and until is not None:
        sql += " WHERE window_end >= %s AND window_start <= %s"
        params = [since - _SLACK, until + _SLACK]
    with psycopg.connect(dsn) as conn:
        return [AlertRow(*row) for row in conn.execute(sql, params).fetchall()]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def score(
    incidents: list[dict[str, Any]], alerts: list[AlertRow], rules: Iterable[str]
) -> list[RuleScore]:
    """Per-rule precision, recall and latency of ``alerts`` against labelled ``incidents``."""
    out = []
    for rule in rules:
        mine = [i for i in incidents if i["rule"] == rule]
        theirs = [a for a in alerts if a.rule == rule]
        by_subject: dict[str, list[AlertRow]] = {}
        for alert in theirs:
            by_subject.setdefault(alert.subject, []).append(alert)
        matched: set[int] = set()
        latencies: list[float] = []
        detected = 0
        for inc in mine:
            first, last = _ts(inc["first_ts"]) - _SLACK, _ts(inc["last_ts"]) + _SLACK
            hits = [
                a
                for a in by_subject.get(inc["subject"], ())
                if a.window_start <= last and a.window_end >= first
            ]
            if not hits:
                continue
            detected += 1
            matched.update(id(a) for a in hits)
            sent = inc.get("threshold_sent_at") or inc["threshold_ts"]
            latencies.append((min(a.created_at for a in hits) - _ts(sent)).total_seconds())
        out.append(
            RuleScore(
                rule=rule,
                incidents=len(mine),
                detected=detected,
                alerts=len(theirs),
                matched_alerts=len(matched),
                precision=len(matched) / len(theirs) if theirs else None,
                recall=detected / len(mine) if mine else None,
                latency_p50_s=percentile(latencies, 0.5),
                latency_p99_s=percentile(latencies, 0.99),
            )
        )
    return out


def failures(scores: list[RuleScore], min_precision: float, min_recall: float) -> list[str]:
    """Why the scores fall short of the thresholds (empty when they pass)."""
    out = []
    for s in scores:
        if s.precision is not None and s.precision < min_precision:
            out.append(f"{s.rule}: precision {s.precision:.3f} < {min_precision}")
        if s.recall is not None and s.recall < min_recall:
            out.append(f"{s.rule}: recall {s.recall:.3f} < {min_recall}")
    return out


def table(scores: list[RuleScore]) -> str:
    """A fixed-width text table of ``scores``."""

    def fmt(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    head = f"{'rule':<22}{'incidents':>10}{'detected':>10}{'alerts':>8}{'precision':>11}{'recall':>8}{'p50 s':>9}{'p99 s':>9}"
    rows = [head]
    for s in scores:
        rows.append(
            f"{s.rule:<22}{s.incidents:>10}{s.detected:>10}{s.alerts:>8}"
            f"{fmt(s.precision, '.3f'):>11}{fmt(s.recall, '.3f'):>8}"
            f"{fmt(s.latency_p50_s, '.2f'):>9}{fmt(s.latency_p99_s, '.2f'):>9}"
        )
    return "\n".join(rows)


EPILOG = """settings (environment variables):
  RTEP_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rtep
      The database whose rtep.alerts are scored (--database-url overrides it).

examples:
  {prog} --labels labels.jsonl
  {prog} --labels labels.jsonl --min-precision 1 --min-recall 1 \\
      --rules failed_login_burst,credential_stuffing,brute_force_success"""


def main(argv: list[str] | None = None, prog: str = "python -m sim.score") -> int:
    """Print the scores; exit 1 when a selected rule is below a threshold."""
    p = command_parser(prog, __doc__, EPILOG)
    p.add_argument(
        "--labels", required=True, type=Path, help="labels file written by python -m sim"
    )
    p.add_argument("--database-url", default=os.environ.get(
        "RTEP_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/rtep"))  # fmt: skip
    p.add_argument("--min-precision", type=float, default=0.0)
    p.add_argument("--min-recall", type=float, default=0.0)
    p.add_argument(
        "--rules", default=None, help="comma-separated rules to score (default: all seen)"
    )
    p.add_argument(
        "--max-decoy-alerts", type=int, default=None,
        help="exit 1 when more alerts than this fall on decoys (default: report only)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)

    labels = load_labels(args.labels)
    incidents, summary = labels.incidents, labels.summary
    since = _ts(summary["first_ts"]) if summary and summary.get("first_ts") else None
    until = _ts(summary["last_ts"]) if summary and summary.get("last_ts") else None
    alerts = fetch_alerts(args.database_url, since, until)
    if args.rules:
        rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    else:
        rules = sorted({i["rule"] for i in incidents} | {a.rule for a in alerts})
    scores = score(incidents, alerts, rules)
    problems = failures(scores, args.min_precision, args.min_recall)
    on_decoys = decoy_alerts(labels.decoys, alerts)
    if args.max_decoy_alerts is not None and sum(on_decoys.values()) > args.max_decoy_alerts:
        problems.append(f"alerts on decoys {on_decoys} > {args.max_decoy_alerts}")
    if args.json:
        print(json.dumps({"rules": [asdict(s) for s in scores], "decoy_alerts": on_decoys,
                          "failures": problems}, indent=2))  # fmt: skip
    else:
        print(table(scores))
        if on_decoys:
            print(f"alerts on decoys: {sum(on_decoys.values())} "
                  + " ".join(f"({k}: {v})" for k, v in on_decoys.items()))  # fmt: skip
    for problem in problems:
        print(f"below threshold: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
