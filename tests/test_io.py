"""write_json: the text json.dump writes, written atomically."""

import io
import json

import numpy as np
import pytest

from retinaflow.io import write_json


@pytest.mark.parametrize("indent", [None, 2])
def test_write_json_writes_json_dumps_text(tmp_path, indent):
    """The same bytes as json.dump's streaming encoder (what write_json used before), on the
    floats that need every digit of repr, ints, nesting, unicode and empty containers."""
    rng = np.random.default_rng(0)
    obj = [
        {
            "image_id": i,
            "bbox": [float(v) for v in rng.uniform(-1e6, 1e6, 4)],
            "score": float(np.float32(rng.uniform())),
            "name": "café ✓",
            "empty": [[], {}],
        }
        for i in range(50)
    ] + [1e-320, 5e-324, 1.7976931348623157e308, -0.0, 0.1, True, None]
    expected = io.StringIO()
    json.dump(obj, expected, indent=indent)
    write_json(tmp_path / "out.json", obj, indent=indent)
    assert (tmp_path / "out.json").read_text() == expected.getvalue() + "\n"
    assert not list(tmp_path.glob(".tmp-*"))


def test_write_json_leaves_the_old_file_when_the_object_does_not_encode(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert not list(tmp_path.glob(".tmp-*"))
