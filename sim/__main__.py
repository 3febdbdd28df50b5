"""``python -m sim``: simulated user activity into the events topic (see docs/simulator.md)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from types import FrameType
from typing import TextIO

from operators.schemas import AWARE_DATETIME
from sim.generator import Message, Shares, SimConfig, endless, generate
from sim.malformed import MAX_FUTURE_SKEW
from sim.producer import DeliveryFailed, Progress, Sender, ensure_topic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of the contract (plus --span, --start, --no-create-topics)."""
    p = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    p.add_argument(
        "--rate",
        type=float,
        default=100.0,
        help="messages per second on average; 0 = as fast as possible",
    )
    p.add_argument("--count", type=int, default=10_000, help="messages to send; 0 = until Ctrl-C")
    p.add_argument("--users", type=int, default=500, help="simulated users")
    p.add_argument("--seed", type=int, default=0, help="same seed and flags = same messages")
    p.add_argument(
        "--attack-share",
        type=float,
        default=0.0,
        help="share of messages belonging to injected, labelled incidents",
    )
    p.add_argument(
        "--malformed-share",
        type=float,
        default=0.0,
        help="share of malformed messages (every rejection reason is covered)",
    )
    p.add_argument(
        "--duplicate-share",
        type=float,
        default=0.0,
        help="share of byte-identical re-sends of earlier valid messages",
    )
    p.add_argument("--labels", help="write ground-truth labels (JSON lines) to this file")
    p.add_argument(
        "--span",
        type=float,
        default=None,
        help="simulated seconds the messages cover (default: count/rate, i.e. real "
        "time; with --rate 0: one event per user per minute, at least 900 s)",
    )
    p.add_argument(
        "--start",
        default=None,
        help="ISO-8601 timestamp (with zone) of the first event; fixes every byte. "
        "Default: the timeline ends when the last message is sent",
    )
    p.add_argument(
        "--no-create-topics",
        action="store_true",
        help="do not create the events topic when it is missing",
    )
    return p.parse_args(argv)  # fmt: skip


def timeline(args: argparse.Namespace, wall: float) -> tuple[float, float, float]:
    """(t0, span, scale): first timestamp, simulated span, and wall seconds per simulated second.

    Sending is paced so that an event with timestamp ``ts`` goes out at ``wall + (ts - t0) *
    scale``. When the span is at least the run's duration (count/rate), the timeline ends at the
    last send and every timestamp is in the past when sent; a shorter span starts at ``wall``.
    """
    duration = args.count / args.rate if args.rate > 0 else 0.0
    span = args.span if args.span is not None else (
        duration if args.rate > 0 else max(900.0, 60.0 * args.count / args.users)
    )  # fmt: skip
    if span <= 0:
        raise ValueError("--span must be positive")
    if args.start is not None:
        t0 = AWARE_DATETIME.validate_python(args.start).timestamp()
    else:
        t0 = wall - max(0.0, span - duration)
    return t0, span, duration / span


def messages_for(
    args: argparse.Namespace, wall: float
) -> tuple[Iterator[Message], Callable[[float], float] | None]:
    """The message stream and its pacing function for these arguments."""
    shares = Shares(args.attack_share, args.malformed_share, args.duplicate_share)
    mono = time.monotonic()
    if args.count == 0:
        if args.rate <= 0:
            raise ValueError("--count 0 (endless) needs --rate > 0: timestamps follow real time")
        t0 = wall if args.start is None else AWARE_DATETIME.validate_python(args.start).timestamp()
        return endless(
            args.users, args.seed, start=t0, rate=args.rate, shares=shares
        ), lambda ts: mono + ts - t0
    t0, span, scale = timeline(args, wall)
    if t0 + span > wall + args.count / max(args.rate, 1e-9) * (args.rate > 0) + MAX_FUTURE_SKEW:
        _say("warning: the timeline ends in the future; the pipeline rejects events more than "
             f"{MAX_FUTURE_SKEW:.0f} s ahead")  # fmt: skip
    config = SimConfig(args.count, args.users, args.seed, t0, span, shares)
    started = time.monotonic()
    generated = generate(config)
    _say(f"sim generated {len(generated)} messages in {time.monotonic() - started:.1f}s "
         f"(span {span:.0f}s from {datetime.fromtimestamp(t0).astimezone().isoformat()})")  # fmt: skip
    if args.rate <= 0:
        return iter(generated), None
    anchor = time.monotonic()
    return iter(generated), lambda ts: anchor + (ts - t0) * scale


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the simulator; 0 when done (or stopped with Ctrl-C in endless mode)."""
    args = parse_args(argv)
    brokers = os.environ.get("RTEP_KAFKA_BROKERS", "127.0.0.1:9092")
    topic = os.environ.get("RTEP_EVENTS_TOPIC", "activity.events")
    partitions = int(os.environ.get("RTEP_TOPIC_PARTITIONS", "4"))
    try:
        stream, pace = messages_for(args, time.time())
    except ValueError as exc:
        _say(f"sim: {exc}")
        return 2
    if not args.no_create_topics:
        ensure_topic(brokers, topic, partitions)
    with contextlib.ExitStack() as stack:
        labels: TextIO | None = None
        if args.labels:
            labels = stack.enter_context(open(args.labels, "w", encoding="utf-8"))
        sender = Sender(brokers, topic, labels)

        def stop(_sig: int, _frame: FrameType | None) -> None:
            sender.stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            tally = sender.run(stream, pace, Progress(total=args.count))
        except DeliveryFailed as exc:
            _say(f"sim: delivery failed: {exc}")
            return 1
        summary = tally.summary(interrupted=sender.stopping)
        if labels is not None:
            labels.write(json.dumps(summary, separators=(",", ":")) + "\n")
    _say("sim summary " + json.dumps(summary))
    return 130 if sender.stopping and args.count else 0


if __name__ == "__main__":
    raise SystemExit(main())
