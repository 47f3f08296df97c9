"""While mail is arriving, accepting it comes first (issue 18): after each batch the
ingest worker gives way to the SMTP listener, which shares its interpreter, for at most
ACCEPT_FIRST times the batch's own time, not at all when nothing is arriving, and not
for a while once a pause shows the pipeline keeping up (no wave)."""

from __future__ import annotations

import pytest

from inboxd.daemon.serve import ACCEPT_FIRST, ARRIVAL_LULL, give_way, is_wave

# A batch that ran from t=10.0 to t=10.1 (100 ms).
STARTED, ENDED = 10.0, 10.1


def test_nothing_arriving_during_the_batch_means_no_pause() -> None:
    assert give_way(STARTED, ENDED, last_arrival=9.0, now=ENDED) == 0.0
    assert give_way(STARTED, ENDED, last_arrival=0.0, now=ENDED) == 0.0


def test_a_message_begun_during_the_batch_gives_its_client_a_lull_to_send_the_next() -> None:
    assert give_way(STARTED, ENDED, last_arrival=10.05, now=ENDED) == pytest.approx(ARRIVAL_LULL)
    # Halfway through the lull with nothing new, the other half is left.
    half = ENDED + ARRIVAL_LULL / 2
    assert give_way(STARTED, ENDED, 10.05, now=half) == pytest.approx(ARRIVAL_LULL / 2)
    # The lull passed with nothing new: back to work.
    assert give_way(STARTED, ENDED, 10.05, now=ENDED + ARRIVAL_LULL) == 0.0


def test_while_mail_keeps_coming_the_pause_lasts_but_never_past_its_share() -> None:
    limit = ENDED + ACCEPT_FIRST * (ENDED - STARTED)
    now = ENDED
    while now < limit - 0.001:  # a message begins every 10 ms
        assert give_way(STARTED, ENDED, last_arrival=now, now=now) > 0
        now += 0.01
    assert give_way(STARTED, ENDED, last_arrival=limit, now=limit) == 0.0
    assert give_way(STARTED, ENDED, last_arrival=limit + 1, now=limit + 1) == 0.0


def test_a_wave_is_mail_coming_faster_than_the_pipeline_goes() -> None:
    # A batch of 8 took 80 ms (100/s); 20 messages began in the 50 ms pause after it.
    assert is_wave(arrived=20, paused=0.05, processed=8, busy=0.08)
    # A steady 50/s the pipeline keeps up with: 3 in a 50 ms pause is no wave, and the
    # worker stops giving way for a while (CALM_BATCHES).
    assert not is_wave(arrived=3, paused=0.05, processed=8, busy=0.08)
    assert not is_wave(arrived=0, paused=0.05, processed=2, busy=0.02)
