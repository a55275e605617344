"""When webhook-ingest reports a user's session as in use (`activity.py`): pure, no broker."""

from datetime import UTC, datetime, timedelta

from fleet_shared.contracts import envelope
from fleet_shared.contracts.events import MessageAck, MessageReceived, MessageSent
from webhook_ingest.activity import ActivityReports

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
CHAT = "15550000000@c.us"


def later_than_every_message() -> datetime:
    """The clock of tests whose messages are all in the past (the one about a clock ahead sets its own)."""
    return T0 + timedelta(days=1)


def message(user: str, n: int, at: datetime, *, sent: bool = False):
    model = MessageSent if sent else MessageReceived
    data = model(id=f"false_{CHAT}_M{n}", chat_id=CHAT, from_me=sent, timestamp=int(at.timestamp()))
    return envelope(data, user, session=f"wf_{user}", correlation_id=f"evt_{n}", occurred_at=at)


def report_after(reports: ActivityReports, env):
    report = reports.due(env)
    if report is not None:
        reports.published(report)
    return report


def test_one_report_per_interval_per_user_at_the_messages_time():
    reports = ActivityReports(timedelta(seconds=60), clock=later_than_every_message)
    first = report_after(reports, message("alice", 1, T0))
    assert (first.type, first.user_id, first.session, first.correlation_id) == ("session.active", "alice", "wf_alice", "evt_1")
    assert (first.occurred_at, first.data.message_id) == (T0, f"false_{CHAT}_M1")
    assert report_after(reports, message("alice", 2, T0 + timedelta(seconds=60), sent=True)) is None
    assert report_after(reports, message("bob", 3, T0 + timedelta(seconds=1))) is not None  # each user their own
    later = report_after(reports, message("alice", 4, T0 + timedelta(seconds=61), sent=True))
    assert later.occurred_at == T0 + timedelta(seconds=61)
    # An older message (a late delivery, history) is no news.
    assert report_after(reports, message("alice", 5, T0 + timedelta(seconds=30))) is None


def test_acks_are_not_reports_and_an_unpublished_report_is_due_again():
    reports = ActivityReports(timedelta(seconds=60), clock=later_than_every_message)
    ack = envelope(MessageAck(id=f"true_{CHAT}_M1", chat_id=CHAT, ack=3), "alice", occurred_at=T0)
    assert reports.due(ack) is None
    pending = reports.due(message("alice", 1, T0))
    # The broker did not confirm it (the webhook got 503): the retry reports again, with the same id.
    again = reports.due(message("alice", 1, T0))
    assert again is not None and again.id == pending.id


def test_a_phone_clock_ahead_counts_as_now_and_does_not_silence_the_next_reports():
    now = [T0]
    reports = ActivityReports(timedelta(seconds=60), clock=lambda: now[0])
    ahead = report_after(reports, message("alice", 1, T0 + timedelta(days=1)))
    assert ahead.occurred_at == T0
    now[0] = T0 + timedelta(seconds=61)
    assert report_after(reports, message("alice", 2, now[0])) is not None


def test_a_forgotten_user_is_reported_again():
    reports = ActivityReports(timedelta(seconds=60), memory=10, clock=later_than_every_message)
    report_after(reports, message("u0", 0, T0))
    for n in range(1, 11):
        report_after(reports, message(f"u{n}", n, T0))
    assert report_after(reports, message("u0", 11, T0 + timedelta(seconds=1))) is not None


def test_a_lid_sender_is_asked_for_once_per_user_and_lid():
    from fleet_shared.contracts import envelope
    from fleet_shared.contracts.events import MessageReceived
    from webhook_ingest.lids import LidsSeen

    def message(user: str, lid: str | None, phone: str | None = None):
        data = MessageReceived(id=f"false_{lid or '1@c.us'}_3EB0", chat_id=lid or "1@c.us", from_me=False, timestamp=1,
                               from_lid=lid, from_phone=phone)
        return envelope(data, user)

    lids = LidsSeen(memory=10)
    first = lids.due(message("alice", "1692@lid"))
    assert first is not None and first.type == "contact.lid_seen" and first.data.lid == "1692@lid"
    lids.published(first)
    assert lids.due(message("alice", "1692@lid")) is None
    assert lids.due(message("bob", "1692@lid")) is not None  # another user's own lookup
    assert lids.due(message("alice", None)) is None
    assert lids.due(message("alice", "1693@lid", phone="4915111111111@c.us")) is None  # known already
