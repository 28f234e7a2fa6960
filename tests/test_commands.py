"""SPEC §2 commands end to end: `demo`, `check`, `notify-test`, and output into a closed pipe.

Every test runs ``python -m monitor`` as a subprocess, in a temporary working
directory, with ``NEWS_MONITOR_CONFIG`` removed from the environment; targets
are local receivers, so nothing leaves the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from receivers import HTTPReceiver

from monitor.store.migrations import MIGRATIONS, SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent
DEMO_RULES = ("war-dead-repatriation", "north-korean-troops", "drone-barrage")


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NEWS_MONITOR_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def news_monitor(
    *argv: str, cwd: Path, env: Mapping[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m monitor ARGV`` (after ``prefix``, a wrapper command) to completion."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "monitor", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=_env(env),
    )


def db_files(*folders: Path) -> set[Path]:
    return {path for folder in folders for path in folder.glob("*.db*")}


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local TCP port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# -- demo ---------------------------------------------------------------------------------------


def _assert_demo_alerts(out: str) -> None:
    headers = [line for line in out.splitlines() if line.startswith("[")]
    for rule in DEMO_RULES:
        assert any(line.startswith(f"[{rule}] ") for line in headers), (rule, out)
        assert f"(rule {rule})" in out
    # The AP stories of 18 October 2024 are what each rule is there to catch...
    assert "[war-dead-repatriation] Russia returns the bodies of 501 soldiers" in out
    assert "[north-korean-troops] Ukraine says 11,000 North Korean troops" in out
    assert "[drone-barrage] Russia launches 135 Shahed drones overnight" in out
    # ...and the decoys, which share words with the rules, are not alerts.
    assert "Kenyan farmers" not in out
    assert "Bodybuilding" not in out
    assert "restaurant reopens" not in out
    assert f"{len(headers)} alerts sent to the terminal." in out


def test_demo_prints_an_alert_for_each_example_rule_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    """`demo` exits 0, prints the AP alert of each example rule, and writes no file anywhere."""
    cwd, scratch = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    scratch.mkdir()
    before = db_files(ROOT)
    done = news_monitor("demo", cwd=cwd, env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    _assert_demo_alerts(done.stdout)
    assert list(cwd.iterdir()) == []
    assert list(scratch.iterdir()) == []  # its temporary state directory is removed too
    assert db_files(ROOT) <= before


def _network_namespace() -> tuple[str, ...]:
    """A wrapper running a command with no network but loopback, or () when unavailable."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        return ()
    wrapper = (unshare, "-rn", "sh", "-c", f'{ip} link set lo up && exec "$@"', "sh")
    probe = subprocess.run([*wrapper, "true"], capture_output=True, check=False, timeout=30)
    return wrapper if probe.returncode == 0 else ()


def test_demo_needs_no_network(tmp_path: Path) -> None:
    """`demo` gives the same alerts in a network namespace that has nothing but loopback."""
    wrapper = _network_namespace()
    if not wrapper:
        pytest.skip("cannot make a network namespace here (unshare -rn and ip are needed)")
    done = news_monitor("demo", cwd=tmp_path, prefix=wrapper)
    assert done.returncode == 0, done.stderr
    # The demo logs warnings only; a feed it could not fetch (DNS, connect) would log one.
    assert done.stderr == ""
    _assert_demo_alerts(done.stdout)


# -- check --------------------------------------------------------------------------------------

VALID = """\
state: {state}
feeds:
  - url: http://127.0.0.1:9/world.xml
    name: Example World
    tags: [world]
  - url: http://127.0.0.1:9/kyiv.xml
targets:
  hook: "json://127.0.0.1:9/${{HOOK_TOKEN}}"
  terminal: "console://"
rules:
  - name: drone-barrage
    query: '(drone* OR shahed*) NEAR/4 >=100'
    notify: [hook, terminal]
"""

SECRET = "s3cr3t-T0ken-4f9a2c"


def test_check_summarises_a_valid_configuration_with_secrets_masked(tmp_path: Path) -> None:
    """`check` exits 0 listing feeds, rules and targets; a secret from ${VAR} is never printed."""
    config = tmp_path / "monitor.yaml"
    config.write_text(VALID.format(state=tmp_path / "state.db"))
    done = news_monitor("check", "--config", str(config), cwd=tmp_path,
                        env={"HOOK_TOKEN": SECRET})  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "2 feeds:" in out
    assert re.search(r"^  Example World +http://127\.0\.0\.1:9/world\.xml ", out, re.M), out
    assert "http://127.0.0.1:9/kyiv.xml" in out
    assert "1 rule:" in out and "  drone-barrage -> hook, terminal" in out
    assert "query: (drone* OR shahed*) NEAR/4 >=100" in out
    assert "2 targets:" in out and "  hook:" in out and "  terminal:" in out
    assert "json://127.0.0.1:9/" in out  # the target is shown, its secret path is not
    assert SECRET not in out + done.stderr
    assert SECRET[:8] not in out + done.stderr
    assert out.rstrip().endswith("configuration OK")
    assert not (tmp_path / "state.db").exists()  # check opens no store


BROKEN = """\
state: {state}
pol:
  interval: 10m
feeds:
  - url: http://127.0.0.1:9/world.xml
    intervall: 5m
targets:
  hook: "json://127.0.0.1:9/path"
rules:
  - name: drone-barrage
    query: '(drone* OR shahed*'
    notify: [hoook]
    digest: 10 parsecs
"""


def test_check_reports_every_mistake_at_its_position_with_suggestions(tmp_path: Path) -> None:
    """`check` exits 2 listing all mistakes at once as PATH:LINE:COL, with "did you mean"."""
    config = tmp_path / "monitor.yaml"
    config.write_text(BROKEN.format(state=tmp_path / "state.db"))
    done = news_monitor("check", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    expected = [
        f"{config}:2:1: unknown key 'pol'; did you mean 'poll'?",
        f"{config}:6:5: feeds[0]: unknown key 'intervall'; did you mean 'interval'?",
        f"{config}:11:31: rule 'drone-barrage': expected ')' to close '(' at column 1",
        f"{config}:12:14: rule 'drone-barrage': unknown target 'hoook'; did you mean 'hook'?",
        f"{config}:13:13: rules[0].digest: invalid duration '10 parsecs'",
    ]
    for message in expected:
        assert any(line.startswith(f"error: {message}") for line in errors), (message, errors)
    assert len(errors) == len(expected), errors
    assert all(re.match(rf"error: {re.escape(str(config))}:\d+:\d+: ", e) for e in errors)
    assert f"{len(expected)} error(s) in the configuration" in done.stderr


# -- notify-test --------------------------------------------------------------------------------

TARGETS = """\
state: {state}
feeds:
  - url: http://127.0.0.1:9/world.xml
targets:
  live: "{live}"
  dead: "json://127.0.0.1:{port}/${{DEAD_TOKEN}}"
rules:
  - name: anything
    query: 'drones'
    notify: [live, dead]
"""

DEAD_TOKEN = "d3ad-T0ken-81c7e5"


def _targets_config(tmp_path: Path, hook: HTTPReceiver, port: int) -> Path:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        TARGETS.format(state=tmp_path / "state.db", live=hook.json_url("/live"), port=port)
    )
    return config


def test_notify_test_reports_each_target_and_fails_for_a_dead_one(
    tmp_path: Path, closed_port: int
) -> None:
    """`notify-test` sends once to the live target, reports the dead one's error, and exits 1."""
    with HTTPReceiver() as hook:
        config = _targets_config(tmp_path, hook, closed_port)
        done = news_monitor("notify-test", "--config", str(config), cwd=tmp_path,
                            env={"DEAD_TOKEN": DEAD_TOKEN})  # fmt: skip
        requests = hook.requests
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert "live: ok" in lines
    [dead] = [line for line in lines if line.startswith("dead: ")]
    assert dead.startswith("dead: FAILED: ") and f"127.0.0.1:{closed_port}" in dead
    assert DEAD_TOKEN not in done.stdout + done.stderr  # the error names the target, not its secret
    [request] = requests
    assert request.method == "POST" and request.path == "/live"
    assert request.json["title"] == "news-monitor test message"


def test_notify_test_of_one_target_sends_only_to_it(tmp_path: Path, closed_port: int) -> None:
    """`notify-test live` tests only that target: one message, one line, exit 0."""
    with HTTPReceiver() as hook:
        config = _targets_config(tmp_path, hook, closed_port)
        done = news_monitor("notify-test", "live", "--config", str(config), cwd=tmp_path,
                            env={"DEAD_TOKEN": DEAD_TOKEN})  # fmt: skip
        requests = hook.requests
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout == "live: ok\n"
    assert len(requests) == 1


def test_notify_test_of_an_unknown_target_is_bad_usage(tmp_path: Path, closed_port: int) -> None:
    """An unknown target name exits 2, sends nothing, and names the target meant."""
    with HTTPReceiver() as hook:
        config = _targets_config(tmp_path, hook, closed_port)
        done = news_monitor("notify-test", "liv", "--config", str(config), cwd=tmp_path,
                            env={"DEAD_TOKEN": DEAD_TOKEN})  # fmt: skip
        requests = hook.requests
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert requests == []
    [message] = done.stderr.splitlines()
    assert message == "error: no target named 'liv'; did you mean 'live'? (targets: live, dead)"


# -- output into a closed pipe ------------------------------------------------------------------


def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    """A reader that stops early (`check | head`) gets no traceback; the command exits 1."""
    feeds = "".join(
        f"  - url: http://127.0.0.1:9/feed-{i:05d}.xml\n    name: Feed number {i}\n"
        for i in range(3000)
    )  # about 200 kB of summary: more than a pipe holds, so the writer must block
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"state: {tmp_path / 'state.db'}\nfeeds:\n{feeds}targets:\n  terminal: 'console://'\n"
        "rules:\n  - name: anything\n    query: drones\n    notify: [terminal]\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "check", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        head = proc.stdout.read(64)
        proc.stdout.close()
        stderr = proc.stderr.read().decode("utf-8", "replace")
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert head.startswith(b"configuration: ")
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr  # nothing left to flush at exit either
    # 1, as Python's "Note on SIGPIPE" does; 0 would mean the pipe never broke (no test).
    assert code == 1, stderr


# -- migrate ------------------------------------------------------------------------------------


def test_migrate_brings_an_old_state_file_up_to_date_and_refuses_a_newer_one(
    tmp_path: Path,
) -> None:
    """`migrate` upgrades a version 1 file to the current schema and says so; a file from a
    newer news-monitor is a runtime error naming it, and stays as it was."""
    state = tmp_path / "state.db"
    with sqlite3.connect(state) as raw:
        for statement in MIGRATIONS[0]:
            raw.execute(statement)
        raw.execute("PRAGMA user_version = 1")
    config = tmp_path / "monitor.yaml"
    config.write_text(VALID.format(state=state))
    env = {"HOOK_TOKEN": SECRET}
    done = news_monitor("migrate", "--config", str(config), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{state}: schema version {SCHEMA_VERSION}, up to date\n"
    with sqlite3.connect(state) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    done = news_monitor("migrate", "--config", str(config), cwd=tmp_path, env=env)
    assert done.returncode == 1
    assert "newer news-monitor" in done.stderr and str(state) in done.stderr
    assert "Traceback" not in done.stderr


# -- start-up -----------------------------------------------------------------------------------

# Libraries `run --once` has no use for in its main process (start-up time): APScheduler
# drives only the long-running `run`, Jinja2 only rules with a template, and feedparser
# runs in the parse pool.
_UNUSED_BY_RUN_ONCE = ("apscheduler", "feedparser", "jinja2")
_LOADED = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('loaded:', *sorted({m.split('.')[0] for m in sys.modules}"
    f" & {set(_UNUSED_BY_RUN_ONCE)!r}), file=sys.stderr))\n"
    "from monitor.cli import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)


def test_run_once_leaves_the_scheduler_templates_and_parser_out_of_its_main_process(
    tmp_path: Path, closed_port: int
) -> None:
    """`run --once` polls and exits without importing APScheduler, Jinja2 or feedparser."""
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"state: {tmp_path / 'state.db'}\n"
        f"feeds: [{{url: 'http://127.0.0.1:{closed_port}/feed.xml'}}]\n"
        f"targets: {{hook: 'json://127.0.0.1:{closed_port}/hook'}}\n"
        "rules: [{name: drones, query: drone, notify: hook}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, "run", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "feed.polled" in done.stderr  # it did poll
    assert "loaded:\n" in done.stderr, done.stderr
