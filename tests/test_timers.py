"""timers.StageTimers: ms per image over the whole run and since a snapshot."""

from retinaflow.timers import StageTimers


def test_rates_since_a_snapshot_leave_out_what_came_before():
    """A first batch of 2 images that took 10 s (compiling), then 4 images in 0.2 s: the
    whole run says 1,700 ms an image, the steady state 50; a stage added only after the
    snapshot counts whole, one with nothing new is left out."""
    timers = StageTimers()
    timers.add("inference", 10.0, 2)
    timers.add("postprocess", 0.5, 2)
    first = timers.snapshot()
    timers.add("inference", 0.2, 4)
    timers.add("preprocess_wait", 0.4, 4)
    assert timers.ms_per_image() == {
        "inference": 1700.0,
        "postprocess": 250.0,
        "preprocess_wait": 100.0,
    }
    assert timers.ms_per_image(since=first) == {"inference": 50.0, "preprocess_wait": 100.0}
