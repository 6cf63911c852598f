"""`retail-seg benchmark-silhouette` on a count small enough to run in a unit test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retail_segmentation import cli
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.ml import measures, silhouette_cost


def test_up_to_the_sample_size_the_sampled_silhouette_is_the_exact_one():
    (figures,) = silhouette_cost.run_benchmark([600])
    assert (figures.customers, figures.sample_size) == (600, 600)
    assert figures.sampled == pytest.approx(figures.exact, abs=1e-12)
    assert figures.difference == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < figures.exact < 1.0
    assert 0.0 < figures.sq_euclidean < 1.0
    assert min(figures.exact_seconds, figures.sampled_seconds, figures.sq_euclidean_seconds) >= 0
    assert figures.peak_rss_mib > 0


def test_blob_features_are_seeded_and_standardised():
    features, blobs = silhouette_cost.blob_features(1_000, seed=5)
    again, _ = silhouette_cost.blob_features(1_000, seed=5)
    assert features.shape == (1_000, silhouette_cost.FEATURES)
    assert features.dtype == np.float64
    np.testing.assert_array_equal(features, again)
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(features.std(axis=0, ddof=1), 1.0)
    assert set(blobs.tolist()) == set(range(len(silhouette_cost.BLOB_SHARES)))


def test_the_command_prints_the_table_and_writes_the_json(tmp_path, capsys):
    path = tmp_path / "silhouette-cost.json"
    assert cli.main(["benchmark-silhouette", "--customers", "600", "--json", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == silhouette_cost.HEADER
    assert out[1].split()[:2] == ["600", "600"]
    payload = json.loads(path.read_text())
    assert payload["sample_size"] == measures.SILHOUETTE_SAMPLE_SIZE
    (row,) = payload["figures"]
    assert (row["customers"], row["sample_size"]) == (600, 600)
    assert row["difference"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("text", ["", "5000,lots", "5000,3"])
def test_bad_customer_counts_name_the_parameter(text):
    with pytest.raises(ConfigError, match="parameter customers="):
        silhouette_cost.parse_customers(text)


def test_a_bad_count_is_one_sentence_on_the_command_line(capsys):
    assert cli.main(["benchmark-silhouette", "--customers", "many"]) == 2
    assert capsys.readouterr().err.startswith("error: parameter customers='many' is not valid")
