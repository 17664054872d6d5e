from tasks.pool import forecast


def test_pace_and_full_at_from_a_steady_rise():
    samples = []
    for t, used in ((0, 10), (60, 20), (120, 30)):
        samples = forecast.add(samples, 1000 + t, used)
    assert forecast.pace(samples) == 10 / 60
    assert forecast.full_at(samples) == 1120 + 70 / (10 / 60)
    assert forecast.reach_at(samples, 90) == 1120 + 60 / (10 / 60)


def test_no_forecast_without_a_rise_or_past_the_reset():
    flat = forecast.add(forecast.add([], 0, 40), 60, 40)
    assert forecast.pace(flat) is None and forecast.full_at(flat) is None
    rising = forecast.add(forecast.add([], 0, 10), 10, 20)
    assert forecast.full_at(rising, resets_at=50) is None  # the window resets before it fills
    assert forecast.full_at(rising, resets_at=500) == 90


def test_a_drop_is_a_reset_and_starts_a_new_run():
    samples = forecast.add(forecast.add([], 0, 80), 10, 90)
    samples = forecast.add(samples, 20, 0)
    assert samples == [(20, 0)]


def test_already_there_is_now_and_history_is_bounded():
    samples = forecast.add([], 5, 95)
    assert forecast.reach_at(samples, 90) == 5
    for t in range(200):
        samples = forecast.add(samples, 10 + t, 95 + t * 0.001)
    assert len(samples) == forecast.MAX_SAMPLES


def test_phrase():
    assert forecast.phrase("5h", 78.0, 1000.0, clock="15:40") == "5h window 78 %, full at ~15:40 at this pace"
    assert forecast.phrase("weekly", 12.5, None) == "weekly window 12.5 %"
