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
from datetime import UTC, datetime
from types import FrameType
from typing import TextIO

from operators.schemas import AWARE_DATETIME
from sim.cli import command_parser
from sim.generator import Message, Shares, SimConfig, endless, generate
from sim.malformed import MAX_FUTURE_SKEW
from sim.producer import DeliveryFailed, Progress, Sender, ensure_topic
from sim.timeline import Timeline

EPILOG = """settings (environment variables; the simulator is a client and reads only these):
  RTEP_KAFKA_BROKERS=127.0.0.1:9092
      Kafka bootstrap servers (comma list).
  RTEP_EVENTS_TOPIC=activity.events
      The topic it produces to.
  RTEP_TOPIC_PARTITIONS=4
      Partitions when it creates the topic (unless --no-create-topics).

examples:
  {prog} --count 20000 --rate 0 --users 500 --seed 11 --attack-share 0.02 \\
      --malformed-share 0.02 --duplicate-share 0.01 --labels labels.jsonl
  {prog} --count 0 --rate 200 --users 500 --attack-share 0.02   # endless, real time"""


def parse_args(argv: list[str] | None = None, prog: str = "python -m sim") -> argparse.Namespace:
    """The command line of the contract (plus --span, --start, --no-create-topics)."""
    p = command_parser(prog, __doc__, EPILOG)
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
        "--population-seed",
        type=int,
        default=None,
        help="seed of the users' profiles (usual IPs and devices); default: --seed. Keep it and "
        "change --seed to send more traffic of the same users (new eventIds, same habits)",
    )
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
        # real time: an event goes out when the wall clock reaches its timestamp, so a --start in
        # the past is caught up at once (rtep run starts 6 min back: attacks show in seconds)
        return endless(
            args.users, args.seed, start=t0, rate=args.rate, shares=shares,
            population_seed=args.population_seed,
        ), lambda ts: mono + ts - wall  # fmt: skip
    start = None if args.start is None else AWARE_DATETIME.validate_python(args.start).timestamp()
    plan = Timeline.plan(count=args.count, rate=args.rate, users=args.users, wall=wall,
                         span=args.span, start=start)  # fmt: skip
    if plan.ends_in_future(wall, MAX_FUTURE_SKEW):
        _say("warning: the timeline ends in the future; the pipeline rejects events more than "
             f"{MAX_FUTURE_SKEW:.0f} s ahead")  # fmt: skip
    config = SimConfig(args.count, args.users, args.seed, plan.t0, plan.span, shares,
                       population_seed=args.population_seed)  # fmt: skip
    started = time.monotonic()
    generated = generate(config)
    _say(f"sim generated {len(generated)} messages in {time.monotonic() - started:.1f}s "
         f"(span {plan.span:.0f}s from {datetime.fromtimestamp(plan.t0, UTC).isoformat()})")  # fmt: skip
    if args.rate <= 0:
        return iter(generated), None
    anchor = time.monotonic()
    return iter(generated), lambda ts: anchor + plan.send_offset(ts)


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None, prog: str = "python -m sim") -> int:
    """Run the simulator; 0 when done (or stopped with Ctrl-C in endless mode)."""
    args = parse_args(argv, prog)
    brokers = os.environ.get("RTEP_KAFKA_BROKERS", "127.0.0.1:9092")
    topic = os.environ.get("RTEP_EVENTS_TOPIC", "activity.events")
    partitions = int(os.environ.get("RTEP_TOPIC_PARTITIONS", "4"))
    try:
        stream, pace = messages_for(args, time.time())
    except ValueError as exc:
        _say(f"sim: {exc}")
        return 2
    except KeyboardInterrupt:
        _say("sim: interrupted before sending anything")
        return 130
    if not args.no_create_topics:
        ensure_topic(brokers, topic, partitions)
    with contextlib.ExitStack() as stack:
        labels: TextIO | None = None
        if args.labels:
            labels = stack.enter_context(open(args.labels, "w", encoding="utf-8", buffering=1))
        sender = Sender(brokers, topic, labels)

        def stop(_sig: int, _frame: FrameType | None) -> None:
            sender.request_stop()

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
