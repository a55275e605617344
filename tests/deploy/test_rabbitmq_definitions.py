"""deploy/rabbitmq: one least-privilege user per service, and policies that agree with the queues'
own arguments.

The permission checks replay RabbitMQ's access-control table over what each service really does
(declare the whole topology at start-up, then publish and consume its own part), computed from
`fleet_shared.topology`, so a new queue or exchange there fails here until the definitions cover
it. The integration test runs the four services as processes, each logged in as its own user,
through a whole conversation on the real broker."""

import json
import re

import pytest

from fleet_shared.topology import DELIVERY_LIMIT, Topology

from .conftest import DEFINITIONS, SERVICES, deploy_secrets, render_definitions

PREFIX = "wa"
TOPOLOGY = Topology(PREFIX, partitions=16)
DEFS = json.loads(DEFINITIONS.read_text())
VHOST = "waha-fleet"
LIVE_QUEUE = "amq.gen-JzTY20BRgKO-HjmUJj0wLg"  # a server-named queue, as RabbitMQ names them
DEFAULT_EXCHANGE = "amq.default"  # what RabbitMQ checks for a publish to "" (replies to direct reply-to)


def declare_topology_needs(topology: Topology) -> set[tuple[str, str]]:
    """(permission, resource) pairs that `declare_topology` needs, per RabbitMQ's access control:
    exchange.declare: configure; queue.declare: configure, plus with a DLX argument write on the DLX
    and read on the queue; queue.bind / exchange.bind (and their unbinds): write on the destination,
    read on the source."""
    needs = {("configure", ex.name) for ex in topology.exchanges()}
    for q in topology.queues():
        needs.add(("configure", q.name))
        if dlx := q.arguments.get("x-dead-letter-exchange"):
            needs |= {("write", dlx), ("read", q.name)}
    for b in [*topology.bindings(), *topology.retired_bindings()]:
        needs |= {("write", b.destination), ("read", b.source)}
    return needs


def own_needs(service: str, t: Topology) -> set[tuple[str, str]]:
    """What each service does besides declaring: what it publishes to and consumes from."""
    if service == "gateway":
        # Commands and queries (replies come back on direct reply-to: no permission needed), and the
        # live per-user event streams: a server-named queue bound to <p>.events.
        return {
            ("write", t.commands),
            ("write", t.queries),
            ("configure", LIVE_QUEUE),
            ("write", LIVE_QUEUE),
            ("read", LIVE_QUEUE),
            ("read", t.stream),
        }
    if service == "session-orchestrator":
        consumed = [*t.orchestrator_command_queues, t.orchestrator_queries]
        if hasattr(t, "orchestrator_activity"):
            consumed.append(t.orchestrator_activity)
        return {("read", q) for q in consumed} | {("write", t.events), ("write", DEFAULT_EXCHANGE)}
    if service == "webhook-ingest":
        return {("write", t.events), ("write", t.parked)}
    if service == "persister":
        return {
            ("read", t.persister_events), ("read", t.persister_queries), ("write", t.stream), ("write", DEFAULT_EXCHANGE)
        }
    if service == "webhook-dispatcher":
        # Its queues; the persister's `event.list` (replies on direct reply-to), dead letters; and
        # binding a user's stream to its queue.
        return {
            ("read", t.webhooks_stream), ("read", t.webhooks_requests), ("write", t.queries), ("write", DEFAULT_EXCHANGE),
            ("write", t.dlx), ("read", t.stream), ("write", t.webhooks_stream),
        }
    raise AssertionError(service)


FORBIDDEN = {
    # Publishing where another service speaks, or straight into queues through the default exchange.
    "gateway": {
        ("write", TOPOLOGY.events), ("write", TOPOLOGY.stream), ("write", TOPOLOGY.parked), ("write", DEFAULT_EXCHANGE)
    },
    "session-orchestrator": {
        ("write", TOPOLOGY.commands),
        ("write", TOPOLOGY.queries),
        ("write", TOPOLOGY.parked),
        ("write", TOPOLOGY.stream),
        ("configure", LIVE_QUEUE),
    },
    "webhook-ingest": {
        ("write", TOPOLOGY.commands),
        ("write", TOPOLOGY.queries),
        ("write", DEFAULT_EXCHANGE),
        ("write", TOPOLOGY.stream),
        ("configure", LIVE_QUEUE),
    },
    "webhook-dispatcher": {
        ("write", TOPOLOGY.commands),
        ("write", TOPOLOGY.events),
        ("write", TOPOLOGY.stream),
        ("write", TOPOLOGY.parked),
        ("configure", LIVE_QUEUE),
    },
    "persister": {
        ("write", TOPOLOGY.commands),
        ("write", TOPOLOGY.queries),
        ("write", TOPOLOGY.events),
        ("write", TOPOLOGY.parked),
        ("configure", LIVE_QUEUE),
    },
}
# Names outside the topology nobody of the four may create, bind or read: a new queue of its own
# to copy traffic into, another subscriber's queue, anything outside the prefix.
FOREIGN = ["wa.spy", "wa.sub.billing", "wa.sub.billing.dlq", "other.commands", "amq.topic"]


def permissions(user: str) -> dict[str, str]:
    [p] = [p for p in DEFS["permissions"] if p["user"] == user and p["vhost"] == VHOST]
    return p


def allowed(user: str, permission: str, resource: str) -> bool:
    # RabbitMQ matches the resource name against the regex (Erlang re, unanchored like re.search).
    return re.search(permissions(user)[permission], resource) is not None


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_user_may_do_what_its_service_does(service):
    _, user, _ = SERVICES[service]
    needs = declare_topology_needs(TOPOLOGY) | own_needs(service, TOPOLOGY)
    missing = sorted(n for n in needs if not allowed(user, *n))
    assert not missing, f"{user} lacks {missing}"


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_user_may_not_do_another_services_job(service):
    _, user, _ = SERVICES[service]
    granted = sorted(n for n in FORBIDDEN[service] if allowed(user, *n))
    assert not granted, f"{user} may {granted}"
    for name in FOREIGN:
        for permission in ("configure", "write", "read"):
            assert not allowed(user, permission, name), f"{user} may {permission} {name}"


def test_the_permissions_hold_for_any_partition_count():
    for partitions in (1, 16, 64):
        topology = Topology(PREFIX, partitions=partitions)
        for service, (_, user, _) in SERVICES.items():
            needs = declare_topology_needs(topology) | own_needs(service, topology)
            assert all(allowed(user, *n) for n in needs), (service, partitions)


def test_one_user_per_service_plus_an_administrator_and_no_guest():
    users = {u["name"]: u for u in DEFS["users"]}
    assert set(users) == {"admin", *(user for _, user, _ in SERVICES.values())}
    assert users["admin"]["tags"] == ["administrator"]
    for _, user, password_var in SERVICES.values():
        assert users[user]["tags"] == []
        assert users[user]["password"] == "${" + password_var + "}"
    assert [v["name"] for v in DEFS["vhosts"]] == [VHOST]


def policy(name: str) -> dict:
    [p] = [p for p in DEFS["policies"] if p["name"] == name]
    return p


def test_the_work_queue_policy_covers_exactly_the_quorum_work_queues():
    pattern = policy("wa-work-queues")["pattern"]
    work = {q.name for q in TOPOLOGY.work_queues()}
    if hasattr(TOPOLOGY, "subscriber_queue"):
        work.add(TOPOLOGY.subscriber_queue("billing"))
    others = {q.name for q in TOPOLOGY.queues()} - work
    assert all(re.search(pattern, q) for q in work)
    assert not [q for q in others if re.search(pattern, q)]


def test_policies_add_what_declarations_lack_and_never_fight_them():
    """x-arguments win over a policy for the dead-letter target and overflow, and for the delivery
    limit the lower value applies: so the policy carries no dead-letter target (each queue has its
    own routing key), the same delivery limit, and the at-least-once strategy with reject-publish,
    which quorum queues need for at-least-once dead-lettering."""
    work = policy("wa-work-queues")
    assert work["apply-to"] == "queues"
    d = work["definition"]
    assert d["dead-letter-strategy"] == "at-least-once" and d["overflow"] == "reject-publish"
    assert d["delivery-limit"] == DELIVERY_LIMIT
    assert not {"dead-letter-exchange", "dead-letter-routing-key"} & set(d)
    for q in TOPOLOGY.work_queues():
        assert q.arguments["x-queue-type"] == "quorum"
        assert q.arguments["x-delivery-limit"] == DELIVERY_LIMIT
        assert q.arguments["x-dead-letter-exchange"] == TOPOLOGY.dlx
        assert "x-overflow" not in q.arguments and "x-dead-letter-strategy" not in q.arguments
    queries = policy("wa-query-queues")
    assert {
        q for q in (TOPOLOGY.orchestrator_queries, TOPOLOGY.persister_queries) if re.search(queries["pattern"], q)
    } == {TOPOLOGY.orchestrator_queries, TOPOLOGY.persister_queries}
    assert queries["definition"]["overflow"] == "reject-publish" and queries["definition"]["max-length"] > 0


def test_rendering_fills_in_every_password(tmp_path):
    env = deploy_secrets()
    out = tmp_path / "definitions.json"
    result = render_definitions(env, out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "${" not in text
    users = {u["name"]: u["password"] for u in json.loads(text)["users"]}
    assert users["admin"] == env["RABBITMQ_ADMIN_PASSWORD"]
    for _, user, var in SERVICES.values():
        assert users[user] == env[var]
    assert out.stat().st_mode & 0o077 == 0, "the rendered file holds passwords: owner-only"


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (None, "is not set"),
        ("short", "shorter than"),
        ("has/slash-and-more-chars", "may hold only"),
        ("has@at-sign-and-more-chars", "may hold only"),
    ],
)
def test_rendering_refuses_bad_passwords(tmp_path, value, complaint):
    env = deploy_secrets()
    if value is None:
        del env["RABBITMQ_GATEWAY_PASSWORD"]
    else:
        env["RABBITMQ_GATEWAY_PASSWORD"] = value
    out = tmp_path / "definitions.json"
    result = render_definitions(env, out)
    assert result.returncode != 0
    assert "RABBITMQ_GATEWAY_PASSWORD" in result.stderr and complaint in result.stderr
    assert not out.exists()
