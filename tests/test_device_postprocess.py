"""The device post-processing (a GPU runner's maps, where they are) runs torchvision's steps
in the device's own kernels. On the CPU it must give the host post-processing's detections
on maps whose candidate scores do not tie, and the same detections as a set where they do."""

import pytest
import torch

from retinaflow import device_postprocess
from retinaflow.device_postprocess import device_postprocess_detections
from retinaflow.model.architectures import anchor_generator
from retinaflow.postprocess import level_anchors, postprocess_detections

from .configs import postprocess_settings
from .test_postprocess import _map_sizes, _random_head_maps, _tied_head_maps

ORIGINALS = [(480, 640), (4000, 3000), (333, 250), (320, 320)]
# The host path scores each logit as torch.sigmoid does over the whole map, where a few
# positions per thread chunk take the scalar loop (std::exp), one ulp from the vector lanes
# (postprocess.py); the device path calls sigmoid (and exp in decoding) on the candidates
# alone. Scores and boxes may thus differ by an ulp or two: 4 ulps of float32 (2**-21
# relative) bound that and are far below any difference a wrong row or box would make.
ULPS = 2.0**-21


def _both(class_maps, box_maps, size, settings, originals):
    anchors = level_anchors(anchor_generator("demo"), (size, size), _map_sizes(size))
    args = (class_maps, box_maps, anchors, (size, size), originals, settings)
    return device_postprocess_detections(*args), postprocess_detections(*args)


def test_equals_the_host_where_no_scores_tie():
    class_maps, box_maps = _random_head_maps(3, 6, _map_sizes(320), 5)
    ours, reference = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:3])
    for mine, ref in zip(ours, reference, strict=True):
        assert len(ref["scores"]) == 300  # every image fills its 300: the cut is tested
        assert torch.equal(mine["labels"], ref["labels"])
        torch.testing.assert_close(mine["scores"], ref["scores"], rtol=ULPS, atol=0)
        torch.testing.assert_close(mine["boxes"], ref["boxes"], rtol=ULPS, atol=1e-4)


def test_tied_scores_give_the_same_detections_as_a_set():
    """Quantised maps with thousands of ties: which of the equal scores fill the last places
    of a top-k or of the 300 is the kernels' choice, so compare what cannot depend on it:
    the count, and the scores in order (a multiset of values); the empty image stays empty."""
    class_maps, box_maps = _tied_head_maps(4, 6, _map_sizes(320), 3, plateau_locations=400)
    ours, reference = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS)
    assert [len(r["scores"]) for r in reference] == [len(m["scores"]) for m in ours]
    assert ours[2]["boxes"].shape == (0, 4) and ours[2]["labels"].dtype == torch.int64
    for mine, ref in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine["scores"], ref["scores"], rtol=ULPS, atol=0)


def test_all_below_threshold_is_empty():
    class_maps, box_maps = _random_head_maps(2, 6, _map_sizes(320), 7)
    class_maps = [torch.full_like(m, -20.0) for m in class_maps]
    ours, _ = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:2])
    assert all(d["boxes"].shape == (0, 4) and d["scores"].numel() == 0 for d in ours)


def test_detector_takes_the_device_path_for_tensors():
    """A runner that hands torch tensors (maps on its device) gets the device path by
    default; numpy maps keep the host path. On maps without ties both agree (above)."""
    from retinaflow.detector import Detector

    class_maps, box_maps = _random_head_maps(2, 6, _map_sizes(320), 11)
    detector = Detector(None, "demo", 320, postprocess_settings())
    assert detector.device_postprocess is device_postprocess_detections
    tensors = detector.postprocess_maps(class_maps + box_maps, ORIGINALS[:2])
    arrays = detector.postprocess_maps([m.numpy() for m in class_maps + box_maps], ORIGINALS[:2])
    for mine, host in zip(tensors, arrays, strict=True):
        assert (mine["labels"] == host["labels"]).all()
        torch.testing.assert_close(
            torch.from_numpy(mine["scores"]), torch.from_numpy(host["scores"]), rtol=ULPS, atol=0
        )


@pytest.mark.parametrize("prefix", [50, 400, 100_000])
def test_nms_on_the_best_candidates_first_gives_the_whole_lists_result(prefix, monkeypatch):
    """NMS over an image's `prefix` best candidates is the whole list's NMS when it keeps 300
    or more (greedy NMS decides its first 300 from the boxes before the 300th kept); 50
    keeps fewer and must fall back to the whole list, 100,000 is more than there are."""
    monkeypatch.setattr(device_postprocess, "NMS_PREFIX", prefix)
    class_maps, box_maps = _random_head_maps(2, 6, _map_sizes(320), 5)
    ours, reference = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:2])
    for mine, ref in zip(ours, reference, strict=True):
        assert len(ref["scores"]) == 300
        assert torch.equal(mine["labels"], ref["labels"])
        torch.testing.assert_close(mine["boxes"], ref["boxes"], rtol=ULPS, atol=1e-4)
