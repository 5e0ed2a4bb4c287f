import numpy as np
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.npyio import load_user_npy


def test_loads_arrays_and_names_bad_files(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(3))
    assert load_user_npy(tmp_path / "a.npy", "test").tolist() == [0, 1, 2]
    with pytest.raises(UserError, match="no such reference embeddings file"):
        load_user_npy(tmp_path / "missing.npy", "reference embeddings")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(UserError, match="text.npy: not a numpy .npy file"):
        load_user_npy(tmp_path / "text.npy", "test")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="not a numpy .npy file"):
        load_user_npy(tmp_path / "objects.npy", "test")
