import json

import pandas as pd
import pytest

from nhssynth import DPVAESynthesizer
from nhssynth.datasets import load_example
from nhssynth.io import ModelFileError

COLS = ["age", "sex", "death", "edu", "income", "charges", "sno"]


@pytest.fixture(scope="module")
def fitted():
    df, md = load_example(return_metadata=True)
    df = df[COLS].iloc[:1500].reset_index(drop=True)
    return DPVAESynthesizer(epsilon=3.0, metadata=md.select(COLS), max_epochs=2, batch_size=100,
                            hidden_dims=(16,), latent_dim=4, random_state=0).fit(df)


def test_save_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.pt"]
    loaded = DPVAESynthesizer.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.sample(200, random_state=4), fitted.sample(200, random_state=4))
    assert loaded.get_params() == fitted.get_params()
    assert loaded.epsilon_ == fitted.epsilon_ and loaded.privacy_report() == fitted.privacy_report()
    # nothing from the rows: no DataFrame or pickled object in the manifest
    text = (tmp_path / "m" / "model.json").read_text()
    assert "__estimator__" in text and "pickle" not in text


def test_gpu_model_loads_on_cpu(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    manifest = tmp_path / "m" / "model.json"
    doc = json.loads(manifest.read_text())
    doc["estimator"]["state"]["device"] = "cuda:0"
    manifest.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="loading on the CPU"):
        loaded = DPVAESynthesizer.load(tmp_path / "m")
    assert loaded.device == "cpu" and len(loaded.sample(5, random_state=0)) == 5


def test_tampered_files_fail_safely(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        DPVAESynthesizer.load(tmp_path / "m")

    fitted.save(tmp_path / "n")
    manifest = tmp_path / "n" / "model.json"
    doc = json.loads(manifest.read_text())
    doc["estimator"]["__estimator__"] = "os:system"
    manifest.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="only nhssynth classes"):
        DPVAESynthesizer.load(tmp_path / "n")

    manifest.write_text("{not json")
    with pytest.raises(ModelFileError, match="corrupt"):
        DPVAESynthesizer.load(tmp_path / "n")
    with pytest.raises(ModelFileError, match="no model.json"):
        DPVAESynthesizer.load(tmp_path / "missing")


def test_unfitted_model_cannot_be_saved(tmp_path):
    from nhssynth.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        DPVAESynthesizer().save(tmp_path / "x")
