"""Loading the configuration: all errors at once at file:line:col, values resolved as documented."""

from __future__ import annotations

import io
import re
import tempfile
from datetime import time, timedelta
from pathlib import Path
from textwrap import dedent
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from monitor.config import (
    Config,
    Delivery,
    Feed,
    Health,
    Poll,
    QuietHours,
    RateLimit,
    Rule,
    Target,
    default_config_path,
    load_config,
)
from monitor.errors import ConfigError, ConfigErrors, Location

SPEC_EXAMPLE = """\
state: ./monitor.db              # SQLite file (default); postgresql://... for a shared store
poll:
  interval: 10m                  # default per feed; "30s", "5m", "1h"
  timeout: 30s
  concurrency: 32                # feeds fetched at once
  max_size: 10MB                 # larger responses are cut off and reported
feeds:
  - url: https://example.org/world/rss.xml
    name: Example World          # default: the feed's own title
    interval: 5m
    tags: [world, ukraine]
  - url: https://wire.example.net/feed.json
targets:                         # name -> Apprise URL (or a list of them)
  desk-slack: "slack://${SLACK_TOKEN_A}/${SLACK_TOKEN_B}/${SLACK_TOKEN_C}/#ukraine-desk"
  desk-email: "mailtos://${SMTP_USER}:${SMTP_PASSWORD}@smtp.example.org?to=desk@example.org"
  phone: "ntfys://ntfy.sh/${NTFY_TOPIC}"
topics:                          # reusable named queries, referenced as @name
  ukraine-war: 'ukrain* OR kyiv OR russia*'
rules:
  - name: war-dead-repatriation
    query: '(bodies OR remains) NEAR/8 (soldiers OR troops OR defenders OR "war dead")'
    notify: [desk-slack, phone]
  - name: north-korean-troops
    query: '("north korean" OR DPRK) NEAR/5 (troops OR soldiers)'
    notify: [desk-email]
  - name: drone-barrage
    query: '@ukraine-war AND ((drone* OR shahed* OR UAV*) NEAR/4 (>=100 OR barrage))'
    feeds: {tags: [ukraine]}     # optional scope: by feed name or tag
    notify: [desk-slack]
    digest: 1h                   # optional: batch this rule's alerts per target
"""

SPEC_ENV = {
    "SLACK_TOKEN_A": "T1JJ3T3L2",
    "SLACK_TOKEN_B": "A1BRTD4JD",
    "SLACK_TOKEN_C": "TIiajkdnlazkcOXrIdevi7FQ",
    "SMTP_USER": "desk-robot",
    "SMTP_PASSWORD": "correct-horse-battery",
    "NTFY_TOPIC": "kyiv-desk-8e1f07",
}

MINIMAL = """\
feeds:
  - url: https://example.org/rss
targets:
  console: console://
rules:
  - name: everything
    query: news
    notify: console
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    """Every error load_config reports for ``path``, as printed, without the file name."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, env or {})
    found = caught.value.errors if isinstance(caught.value, ConfigErrors) else [caught.value]
    return [str(error).replace(f"{path}:", "") for error in found]


def test_several_mistakes_are_reported_together_at_their_positions(tmp_path: Path) -> None:
    """A misspelt key, bad duration, wrong type, unset variable, unknown target: all reported."""
    path = write(
        tmp_path,
        dedent("""\
        poll:
          intervall: 10m
          timeout: 10 minutes
          concurrency: many
        feeds:
          - url: https://example.org/rss
            name: World
        targets:
          desk-slack: "slack://${SLACK_TOKEN}/B/C"
          phone: console://
        rules:
          - name: war-dead
            query: bodies NEAR/8 soldiers
            notify: [desk-slak, phone]
            backfill: sometimes
        """),
    )
    assert errors_of(path) == [
        "2:3: poll: unknown key 'intervall'; did you mean 'interval'?",
        "3:12: poll.timeout: invalid duration '10 minutes': "
        "use a number and a unit s, m, h, d or w (e.g. 30s, 5m, 1h30m)",
        "4:16: poll.concurrency: expected a whole number, got 'many'",
        "9:15: targets.desk-slack: environment variable 'SLACK_TOKEN' is not set "
        "(set it, or give a default: ${SLACK_TOKEN:-default})",
        "14:14: rule 'war-dead': unknown target 'desk-slak'; did you mean 'desk-slack'?",
        "15:15: rules[0].backfill: expected true or false, got 'sometimes'",
    ]


def test_errors_print_as_file_line_column(tmp_path: Path) -> None:
    """The combined error prints one `file:line:col: message` line per problem, sorted."""
    path = write(tmp_path, MINIMAL.replace("query: news", "query: news\n    colour: red"))
    with pytest.raises(ConfigErrors) as caught:
        load_config(path, {})
    assert str(caught.value) == f"{path}:8:5: rules[0]: unknown key 'colour'"
    assert caught.value.errors[0].location == Location(str(path), 8, 5)


def test_spec_example_loads_with_its_values_and_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SPEC §3 example validates; units, scopes, expansion and defaults come out resolved."""
    monkeypatch.chdir(tmp_path)
    config = load_config(write(tmp_path, SPEC_EXAMPLE), SPEC_ENV)
    assert config.state == str(tmp_path / "monitor.db")
    assert config.poll.interval == timedelta(minutes=10)
    assert config.poll.max_size == 10_000_000
    assert (config.poll.per_host, config.poll.jitter) == (4, 0.1)
    assert config.poll.max_backoff == timedelta(hours=6)
    world, wire = config.feeds
    assert (world.name, world.interval, world.tags) == (
        "Example World",
        timedelta(minutes=5),
        ("world", "ukraine"),
    )
    assert (world.label, wire.label) == ("Example World", "wire.example.net")
    assert config.interval_for(wire) == timedelta(minutes=10)
    assert config.timeout_for(wire) == timedelta(seconds=30)
    assert config.targets["desk-slack"].urls == (
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ukraine-desk",
    )
    assert config.targets["phone"].name == "phone"
    assert config.topics == {"ukraine-war": "ukrain* OR kyiv OR russia*"}
    drone = config.rules[2]
    assert drone.digest == timedelta(hours=1)
    assert drone.notify == ("desk-slack",)
    assert [rule.name for rule in config.rules_for_feed(wire)] == [
        "war-dead-repatriation",
        "north-korean-troops",
    ]
    assert len(config.rules_for_feed(world)) == 3
    assert config.delivery.retry_for == timedelta(hours=24)
    assert config.delivery.max_age == timedelta(days=3)
    assert config.health.target_failing_after == timedelta(minutes=30)
    assert (config.log_level, config.http, config.http_address) == ("info", None, None)
    assert config.path == tmp_path / "monitor.yaml"
    assert config.location("rules", 2, "digest") == Location(str(config.path), 30, 13)


def test_configuration_is_frozen(tmp_path: Path) -> None:
    """Validated once at the door: the resolved models cannot be changed afterwards."""
    config = load_config(write(tmp_path, MINIMAL), {})
    with pytest.raises(ValueError, match="frozen"):
        config.poll.interval = timedelta(seconds=1)
    with pytest.raises(ValueError, match="frozen"):
        config.rules[0].query = "other"


def test_environment_defaults_and_escapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${VAR:-default} falls back when unset, $$ is a literal $, and state may use both."""
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path,
        MINIMAL
        + dedent("""\
        state: ${STATE_DIR:-data}/monitor.db
        poll:
          interval: ${POLL_INTERVAL:-2m}
          user_agent: "costs $$0 ${UA_SUFFIX:-}"
        log_level: ${LOG_LEVEL:-info}
        """),
    )
    config = load_config(path, {"LOG_LEVEL": "DEBUG"})
    assert config.state == str(tmp_path / "data" / "monitor.db")
    assert config.poll.interval == timedelta(minutes=2)
    assert config.poll.user_agent == "costs $0"
    assert config.log_level == "debug"
    config = load_config(path, {"STATE_DIR": "/srv/news", "POLL_INTERVAL": "45s"})
    assert (config.state, config.poll.interval) == ("/srv/news/monitor.db", timedelta(seconds=45))


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an env mapping, variables come from os.environ."""
    monkeypatch.setenv("NM_TEST_FEED_HOST", "feeds.example.com")
    path = write(tmp_path, MINIMAL.replace("example.org", "${NM_TEST_FEED_HOST}"))
    assert load_config(path).feeds[0].url == "https://feeds.example.com/rss"


def test_state_database_url_is_kept_as_written(tmp_path: Path) -> None:
    """A postgresql:// state is not resolved as a path."""
    path = write(tmp_path, MINIMAL + "state: postgresql://monitor@db.internal/monitor\n")
    assert load_config(path, {}).state == "postgresql://monitor@db.internal/monitor"


def test_targets_take_three_forms_and_normalise_to_one(tmp_path: Path) -> None:
    """A URL, a list of URLs, or a mapping with options all become a Target with urls."""
    path = write(
        tmp_path,
        dedent("""\
        feeds: [{url: https://example.org/rss}]
        targets:
          one: json://127.0.0.1:8080/hook
          two: [json://127.0.0.1:8080/a, ntfy://127.0.0.1:8081/topic]
          three:
            urls: ntfy://127.0.0.1:8081/desk
            rate_limit: 20/min
            quiet_hours: {start: "22:00", end: "7:00", timezone: Europe/Kyiv}
            format: text
        rules: [{name: r, query: q, notify: [one, two, three]}]
        """),
    )
    targets = load_config(path, {}).targets
    assert targets["one"].urls == ("json://127.0.0.1:8080/hook",)
    assert targets["two"].urls == ("json://127.0.0.1:8080/a", "ntfy://127.0.0.1:8081/topic")
    three = targets["three"]
    assert (three.name, three.urls, three.format) == (
        "three",
        ("ntfy://127.0.0.1:8081/desk",),
        "text",
    )
    assert three.rate_limit == RateLimit(20, timedelta(minutes=1))
    assert three.quiet_hours is not None
    assert (three.quiet_hours.start, three.quiet_hours.end) == (time(22), time(7))
    assert three.quiet_hours.zone == ZoneInfo("Europe/Kyiv")
    assert targets["one"].rate_limit is None and targets["one"].quiet_hours is None


def test_target_option_errors_are_placed_and_suggested(tmp_path: Path) -> None:
    """Bad rates, times, zones, formats, target keys and services are each reported."""
    path = write(
        tmp_path,
        dedent("""\
        feeds: [{url: https://example.org/rss}]
        targets:
          a:
            url: json://127.0.0.1/x
          b:
            urls: [ntfy://127.0.0.1/t]
            rate_limit: lots
            quiet_hours: {start: "25:00", end: "07:00", timezone: Europe/Kiev-ish}
            format: html
          c: slak://T0/B0/XXXX
          d: just words
        rules: [{name: r, query: q, notify: [a, b, c, d]}]
        """),
    )
    assert errors_of(path) == [
        "3:3: targets.a: missing required key 'urls'",
        "4:5: targets.a: unknown key 'url'; did you mean 'urls'?",
        "7:17: targets.b.rate_limit: invalid rate limit 'lots': "
        "use COUNT/PERIOD (e.g. 20/min, 5/s, 100/h, 10/30s)",
        "8:26: targets.b.quiet_hours.start: invalid time '25:00': use HH:MM, e.g. 22:00",
        "8:59: targets.b.quiet_hours.timezone: unknown time zone 'Europe/Kiev-ish' "
        "(use a name like Europe/Kyiv)",
        "9:13: targets.b.format: expected one of 'markdown' or 'text', got 'html'",
        "10:6: target 'c': unknown notification service 'slak://'; did you mean 'slack://'?",
        "11:6: target 'd': not an Apprise URL: expected service://..., "
        "e.g. mailto://, slack://, ntfy://",
    ]


def test_cross_references_are_checked(tmp_path: Path) -> None:
    """Duplicate names and URLs, unknown scope names and tags, unknown health targets are errors."""
    path = write(
        tmp_path,
        dedent("""\
        feeds:
          - {url: https://example.org/rss, name: World, tags: [world, ukraine]}
          - {url: https://example.org/rss}
          - {url: https://other.example.org/rss, name: World}
        targets: {desk: console://}
        rules:
          - {name: r, query: q, notify: desk, feeds: {names: [Wrld], tags: [ukrain]}}
          - {name: r, query: q, notify: desk, feeds: {names: [Nothing]}}
        health:
          notify: [dsk]
        """),
    )
    assert errors_of(path) == [
        "3:11: feed URL 'https://example.org/rss' appears twice (first on line 2)",
        "4:48: feed name 'World' appears twice (first on line 2)",
        "7:55: rule 'r': feeds scope names no feed with feed name 'Wrld'; did you mean 'World'?",
        "7:69: rule 'r': feeds scope names no feed with tag 'ukrain'; did you mean 'ukraine'?",
        "8:12: rule name 'r' appears twice (first on line 7)",
        "8:55: rule 'r': feeds scope names no feed with feed name 'Nothing' (known: World)",
        "10:12: health.notify: unknown target 'dsk'; did you mean 'desk'?",
    ]


def test_unknown_keys_at_every_level_suggest_the_closest(tmp_path: Path) -> None:
    """Misspelt keys at the top, in feeds, rules, scopes and sections each get a did-you-mean."""
    path = write(
        tmp_path,
        dedent("""\
        feed: []
        feeds:
          - {url: https://example.org/rss, tag: [x]}
        targets: {c: console://}
        rules:
          - {name: r, query: q, notify: c, feeds: {tag: [x]}, notfy: c}
        delivery: {retry_fro: 1h}
        health: {feed_failing: 1h}
        """),
    )
    assert errors_of(path) == [
        "1:1: unknown key 'feed'; did you mean 'feeds'?",
        "3:36: feeds[0]: unknown key 'tag'; did you mean 'tags'?",
        "6:44: rules[0].feeds: unknown key 'tag'; did you mean 'tags'?",
        "6:55: rules[0]: unknown key 'notfy'; did you mean 'notify'?",
        "7:12: delivery: unknown key 'retry_fro'; did you mean 'retry_for'?",
        "8:10: health: unknown key 'feed_failing'; did you mean 'feed_failing_after'?",
    ]


def test_http_address_forms(tmp_path: Path) -> None:
    """http: takes HOST:PORT, :PORT or PORT, the host defaulting to 127.0.0.1."""
    cases = {
        '":9108"': ("127.0.0.1", 9108),
        "9108": ("127.0.0.1", 9108),
        "0.0.0.0:80": ("0.0.0.0", 80),
        '"[::1]:9108"': ("::1", 9108),
        "localhost:0": ("localhost", 0),
    }
    for written, address in cases.items():
        config = load_config(write(tmp_path, MINIMAL + f"http: {written}\n"), {})
        assert config.http_address == address, written
    for bad in ("host:port", '"127.0.0.1:99999"', "true"):
        assert errors_of(write(tmp_path, MINIMAL + f"http: {bad}\n"))[0].startswith("9:7: http: ")


def test_missing_and_empty_sections(tmp_path: Path) -> None:
    """Empty poll/delivery/health/topics mean defaults; empty feeds, targets, rules are errors."""
    path = write(tmp_path, MINIMAL + "poll:\ndelivery:\nhealth:\ntopics:\n")
    assert load_config(path, {}).poll.concurrency == 32
    path = write(tmp_path, "feeds:\ntargets: {}\nrules: []\npoll: 5\n")
    assert errors_of(path) == [
        "1:1: feeds: no value given (null)",
        "2:10: targets: must not be empty",
        "3:8: rules: must not be empty",
        "4:7: poll: expected a mapping (key: value lines), got 5",
    ]
    assert errors_of(write(tmp_path, "state: x.db\n")) == [
        "1:1: missing required key 'feeds'",
        "1:1: missing required key 'targets'",
        "1:1: missing required key 'rules'",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "1:1: the configuration file is empty"),
        ("# nothing here\n", "1:1: the configuration file is empty"),
        ("- feeds\n- rules\n", "1:1: the configuration must be a mapping of settings"),
        ("just text\n", "1:1: the configuration must be a mapping of settings"),
        ("feeds: [a\nrules: 1\n", "2:6: YAML syntax error: expected ',' or ']'"),
        ("rules: 1\nrules: 2\n", '2:1: YAML syntax error: duplicate key "rules"'),
        ("\tfeeds: 1\n", "1:1: YAML syntax error: found character '\\t'"),
        ('a: "unterminated\n', "2:1: YAML syntax error: found unexpected end of stream"),
        ("a: 1\n---\nb: 2\n", "2:1: YAML syntax error: but found another document"),
    ],
)
def test_unreadable_yaml_is_one_positioned_error(
    tmp_path: Path, content: str, expected: str
) -> None:
    """Syntax errors, empty files and non-mapping documents give one ConfigError at a position."""
    (error,) = errors_of(write(tmp_path, content))
    assert error.startswith(expected)


def test_file_errors_name_the_path(tmp_path: Path) -> None:
    """A missing file, a directory and a non-UTF-8 file are ConfigErrors naming the file."""
    assert errors_of(tmp_path / "absent.yaml") == [
        f"configuration file not found: {tmp_path / 'absent.yaml'}"
    ]
    assert errors_of(tmp_path) == [f"configuration path is a directory, not a file: {tmp_path}"]
    binary = tmp_path / "latin1.yaml"
    binary.write_bytes("feeds:\n  - name: Käse\n".encode("latin-1"))
    assert errors_of(binary) == ["2:12: not UTF-8 text (byte 0xe4); save the file as UTF-8"]


def test_template_errors_point_at_the_bad_line(tmp_path: Path) -> None:
    """A rule template that does not compile is reported at its line inside a | block."""
    template = "    template: |\n      {{ title }}\n      {% for s in sources %}{{ s.feed }\n"
    path = write(tmp_path, MINIMAL + template)
    assert errors_of(path) == ["11:7: rule 'everything': template error: unexpected '}'"]


def test_query_errors_point_into_the_query(tmp_path: Path) -> None:
    """A query syntax error is reported at the file column of the offending character."""
    pytest.importorskip("monitor.query", reason="the rule language package is not there yet")
    path = write(
        tmp_path,
        MINIMAL.replace("query: news", "query: 'drones AND (shahed OR'")
        + "topics:\n  broken: (kyiv\n",
    )
    errors = errors_of(path)
    assert len(errors) == 2
    for error, line, start in zip(errors, (7, 10), (13, 11), strict=True):
        column = int(re.search(r"\(column (\d+) of the query\)", error).group(1))  # type: ignore[union-attr]
        assert error.startswith(f"{line}:{start + column - 1}: ")
    assert "rule 'everything'" in errors[0] and "topic 'broken'" in errors[1]


def test_invalid_values_after_failed_expansion_are_not_reported_twice(tmp_path: Path) -> None:
    """A value whose variable is unset gets one error, not a second one for its empty result."""
    path = write(tmp_path, MINIMAL.replace("https://example.org/rss", "${FEED_URL}"))
    assert errors_of(path) == [
        "2:10: feeds[0].url: environment variable 'FEED_URL' is not set "
        "(set it, or give a default: ${FEED_URL:-default})"
    ]


def test_malformed_reference_is_an_error(tmp_path: Path) -> None:
    """A ${...} that is not ${NAME} or ${NAME:-default} is reported with how to write one."""
    path = write(tmp_path, MINIMAL.replace("query: news", "query: ${bad name}"))
    assert errors_of(path) == [
        "7:12: rules[0].query: malformed reference '${bad name}': "
        "write ${NAME} or ${NAME:-default}, and $$ for a literal $"
    ]


def test_default_config_path() -> None:
    """--config defaults to $NEWS_MONITOR_CONFIG, else config/monitor.yaml (SPEC §2)."""
    assert default_config_path({}) == Path("config/monitor.yaml")
    assert default_config_path({"NEWS_MONITOR_CONFIG": ""}) == Path("config/monitor.yaml")
    assert default_config_path({"NEWS_MONITOR_CONFIG": "/etc/nm.yaml"}) == Path("/etc/nm.yaml")


def test_repository_configs_are_valid() -> None:
    """The shipped config/*.yaml files load with an empty environment (every variable has a
    default), so a newcomer can `check` them before setting anything."""
    configs = sorted((Path(__file__).resolve().parents[1] / "config").glob("*.yaml"))
    assert configs
    for path in configs:
        assert isinstance(load_config(path, {}), Config), path


# -- nothing crashes ---------------------------------------------------------------

_KEYS = [
    # Every key of the schema, so the fuzzer reaches deep shapes, and two that are not.
    *Config.model_fields,
    *Poll.model_fields,
    *Feed.model_fields,
    *Target.model_fields,
    *QuietHours.model_fields,
    *Rule.model_fields,
    *Delivery.model_fields,
    *Health.model_fields,
    "names",
    "intervall",
    "0",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "10m",
            "10 minutes",
            "1h30m",
            "10MB",
            "20/min",
            "22:00",
            "Europe/Kyiv",
            "https://example.org/rss",
            "console://",
            "slack://a/b/c",
            "json://127.0.0.1/x",
            "${VAR}",
            "${VAR:-5m}",
            "${",
            "$$",
            "{{ title }",
            "(a OR",
            "@topic",
            "",
            ":9108",
        ]
    ),
    st.text(max_size=20),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)


def _dump(data: object) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, stream)
    return stream.getvalue()


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=8))
def test_any_structure_gives_a_config_or_config_errors(data: dict[str, object]) -> None:
    """Whatever shape the YAML has, loading returns a Config or raises ConfigError, nothing else."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(_dump(data), encoding="utf-8")
        try:
            load_config(path, {"VAR": "value"})
        except ConfigError as exc:
            assert str(exc)


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_text_gives_a_config_or_config_errors(text: str) -> None:
    """Arbitrary file content never escapes as anything but a ConfigError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        with pytest.raises(ConfigError):
            load_config(path, {})


CONFIG_FILES = sorted((Path(__file__).parents[1] / "config").glob("*.yaml"))
TRICKY_SCALARS = """\
state: ./x.db
poll: {interval: 10m, per_host: 0o10, max_size: 1_000KB, jitter: 0.25}
feeds:
  - url: https://example.org/${SECTION:-world}.xml
    name: "yes"
  - {url: "https://example.org/b.xml", name: on, enabled: true}
  - url: https://example.org/c.xml
    name: 22:00
    headers: {X-Token: "${FEED_TOKEN}"}
targets:
  desk: "json://${HOOK_HOST}/hook"
defaults: &shared
  notify: [desk]
rules:
  - name: drones
    <<: *shared
    query: >
      drone* NEAR/5
      (barrage OR swarm)
    template: |
      {{ title }}
"""


@pytest.mark.parametrize(
    "text",
    [SPEC_EXAMPLE, TRICKY_SCALARS, *(p.read_text() for p in CONFIG_FILES)],
    ids=["spec-example", "tricky-scalars", *(p.name for p in CONFIG_FILES)],
)
def test_fast_reading_agrees_with_the_positioned_one(text: str, tmp_path: Path) -> None:
    """The C-parser reading a correct file goes through gives exactly the data and secrets
    of the round-trip reading that keeps positions (YAML 1.2 both: ``on`` and ``22:00``
    stay text, ``0o10`` is 8, anchors merge)."""
    from monitor.config.source import read_document, read_plain

    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    env = {**SPEC_ENV, "FEED_TOKEN": "s3cr3t-token", "HOOK_HOST": "127.0.0.1:9"}
    plain, located = read_plain(path, env), read_document(path, env)
    assert plain is not None
    assert plain.data == located.data
    assert plain.secrets == located.secrets
    assert not located.errors
    if text == TRICKY_SCALARS:
        assert plain.secrets == {"s3cr3t-token", "127.0.0.1:9"}  # target URLs are secret
        assert plain.data["feeds"][2]["name"] == "22:00"
        assert plain.data["rules"][0]["notify"] == ["desk"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state: x.db\nfeeds: [{url: '${NOPE}'}]\n", "feeds[0].url: environment variable"),
        ("state: x.db\nfeeds: [{url: 2026-01-01}]\n", "feeds[0].url: "),
        ("state: x.db\nstate: y.db\n", "duplicate key"),
        ("state: x.db\n1: 2\n", "keys must be text"),
    ],
)
def test_mistakes_found_by_the_fast_reading_still_say_where(
    text: str, expected: str, tmp_path: Path
) -> None:
    """Whatever the fast reading cannot take, the positioned reading reports at file:line:col."""
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    with pytest.raises((ConfigError, ConfigErrors)) as caught:
        load_config(path, {})
    errors = caught.value.errors if isinstance(caught.value, ConfigErrors) else [caught.value]
    assert any(expected in error.message for error in errors), errors
    assert all(error.location.line >= 1 and error.location.file == str(path) for error in errors)
    assert any(error.location.line == 2 for error in errors), errors
