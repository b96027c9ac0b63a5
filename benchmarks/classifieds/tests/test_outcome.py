from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.classifieds.outcome import Outcome, read_outcome
from livepages.datastar import events
from livepages.responses import error_event, success_event, validation_event


def test_a_redirect_is_read_from_its_script() -> None:
    body = (success_event() + events.redirect('/chats/12?x="y"')).decode()
    assert read_outcome(body) == Outcome(redirect='/chats/12?x="y"')


def test_a_plain_success_has_no_redirect_and_no_error() -> None:
    body = (success_event(("text",)) + events.patch_signals({"text": ""})).decode()
    assert read_outcome(body) == Outcome()


def test_an_empty_answer_is_a_success() -> None:
    assert read_outcome("") == Outcome()  # a 204


def test_a_reported_error_is_a_failure() -> None:
    outcome = read_outcome(error_event(404, "you have no conversation 3").decode())
    assert outcome.error == "404 you have no conversation 3"


def test_a_refused_field_is_a_failure_and_empty_messages_are_not() -> None:
    refused = validation_event({"email": "is already registered"}, ("email", "name"))
    assert read_outcome(refused.decode()).error == "refused: email: is already registered"
    cleared = validation_event({}, ("email", "name"))
    assert read_outcome(cleared.decode()).error is None


def test_unreadable_signals_are_a_failure() -> None:
    body = "event: datastar-patch-signals\ndata: signals {not json\n\n"
    assert read_outcome(body).error == "unreadable signals in the answer"


@given(st.text())
def test_any_text_gives_an_outcome(body: str) -> None:
    outcome = read_outcome(body)
    assert outcome.redirect is None or isinstance(outcome.redirect, str)
    assert outcome.error is None or isinstance(outcome.error, str)


@given(
    st.recursive(
        st.none() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_any_signals_give_an_outcome(signals: object) -> None:
    body = events.patch_signals({"_error": signals, "errors": signals}).decode()
    assert isinstance(read_outcome(body), Outcome)


def test_deeply_nested_signals_give_an_outcome() -> None:
    body = "event: datastar-patch-signals\ndata: signals " + "[" * 100_000 + "\n\n"
    assert read_outcome(body).error == "unreadable signals in the answer"
