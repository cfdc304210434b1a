"""Helpers for the scheduled areas (State Manager associations, maintenance
windows): the next minute as a cron, the length of a window "hour" in the
stack under test, and a shell line that leaves a mark in the node's own
state directory, with the time it ran."""

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fleet import LOCAL


def next_minute(min_lead=40, now=None):
    """The first minute boundary at least `min_lead` seconds from now (UTC)."""
    now = now or datetime.now(timezone.utc)
    t = now + timedelta(seconds=min_lead)
    due = t.replace(second=0, microsecond=0)
    if due < t:
        due += timedelta(minutes=1)
    return due


def daily_cron(due):
    """A cron that fires every day at `due`'s hour and minute (UTC):
    `cron(M H ? * * *)`."""
    return f"cron({due.minute} {due.hour} ? * * *)"


def control_plane_env(name):
    """`name` from the running control plane's environment (the process
    `make up` started), or None."""
    try:
        pid = int((LOCAL / "run" / "steward-local.pid").read_text().strip())
        for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            key, _, value = item.partition(b"=")
            if key.decode(errors="replace") == name:
                return value.decode(errors="replace")
    except (OSError, ValueError):
        pass
    return None


def window_hour_seconds():
    """The length of a maintenance window's "hour" (Duration, Cutoff) in the
    stack under test: STEWARD_WINDOW_HOUR_SECONDS as the tests see it, else
    as the control plane runs with it, else 60 (`make test`'s setting)."""
    value = os.environ.get("STEWARD_WINDOW_HOUR_SECONDS") or control_plane_env("STEWARD_WINDOW_HOUR_SECONDS") or "60"
    return int(value)


def mark_line(name, label):
    """A shell line that appends `label <epoch seconds>` to `name` in the
    agent's state directory (the command runs in <state dir>/runs/<id>/…)."""
    return f'echo "{label} $(date +%s.%N)" >> "${{PWD%/runs/*}}/{name}"'


def marks(agent, name):
    """The lines `mark_line` left in `agent`'s state directory: [(label, t)]."""
    path = Path(agent.state_dir) / name
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        label, _, t = line.rpartition(" ")
        out.append((label, float(t)))
    return out


def epoch(v):
    """A boto3 time (datetime) or an epoch number, as epoch seconds."""
    return v.timestamp() if isinstance(v, datetime) else float(v)


def steward(*args, check=True):
    """Runs the `steward` CLI on the steward profile, as a user's shell has it."""
    import subprocess

    from fleet import AWS_CONFIG, BIN

    env = dict(os.environ, AWS_CONFIG_FILE=str(AWS_CONFIG), AWS_PROFILE="steward")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(var, None)
    proc = subprocess.run([str(BIN / "steward"), *args], env=env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"steward {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc
