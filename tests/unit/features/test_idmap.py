import numpy as np
import pytest

from recops.errors import UnknownIdError
from recops.features.idmap import IdMap


def test_round_trip_and_unknowns() -> None:
    ids = IdMap(np.array(["b", "a", "c"], dtype=object), kind="user")
    assert ids.lookup(["a", "zz"]).tolist() == [1, -1]
    assert ids.to_external(np.array([[2, -1]])).tolist() == [["c", None]]
    with pytest.raises(UnknownIdError, match=r"unknown user id\(s\) \['zz'\]"):
        ids.to_internal(["a", "zz"])


def test_duplicates_refused() -> None:
    with pytest.raises(ValueError, match="duplicate item ids"):
        IdMap(np.array(["a", "a"], dtype=object), kind="item")
