"""Scoring run names, segment assignment and the stamped output tables on literal rows."""

from __future__ import annotations

import datetime as dt

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality

from retail_segmentation.ml import scoring, segment_model
from retail_segmentation.ml.scoring import ScoringRun
from retail_segmentation.ml.segment_model import FeatureTransform, SegmentModel
from retail_segmentation.ml.sweep import model_requirements

RFM_DDL = (
    "customer_id string, recency_days int, frequency long, monetary double, tenure_days int, "
    "r_score int, f_score int, m_score int, rfm_segment string"
)
BEHAVIOR_DDL = (
    "customer_id string, avg_basket_value double, avg_items_per_invoice double, "
    "distinct_products long, cancellation_rate double, weekend_share double, country string"
)
ASSIGNED_DDL = (
    "customer_id string, segment_id int, membership_probability double, recency_days int, "
    "frequency long, monetary double, tenure_days int, r_score int, f_score int, m_score int, "
    "avg_basket_value double, avg_items_per_invoice double, distinct_products long, "
    "cancellation_rate double, weekend_share double"
)
RUN = ScoringRun(
    model_name="main.retail.customer_segmentation",
    model_version="3",
    as_of_date=dt.date(2011, 12, 10),
    scored_at=dt.datetime(2011, 12, 11, 6, 30, 0),
    run_id="score:main.retail.customer_segmentation@v3/1a2b3c4d:gold_customer_rfm@v2",
)


@pytest.fixture
def rfm_df(spark):
    return spark.createDataFrame(
        [
            ("a", 3, 12, 2400.5, 300, 5, 5, 5, "Champions"),
            ("b", 200, 1, -15.0, 200, 1, 1, 1, "Lost"),  # net returns: negative monetary
            ("c", 40, 2, 80.0, 41, 3, 2, 2, "Need Attention"),
        ],
        RFM_DDL,
    )


@pytest.fixture
def behavior_df(spark):
    return spark.createDataFrame(
        [
            ("a", 200.04, 30.5, 57, 0.0769, 0.25, "United Kingdom"),
            ("b", 12.0, 4.0, 3, 0.5, None, "France"),  # no weekend share known
            # c has no behaviour row; z has no RFM row (not a gold customer)
            ("z", 1.0, 1.0, 1, 0.0, 0.0, "Spain"),
        ],
        BEHAVIOR_DDL,
    )


def test_scoring_run_id_names_model_version_run_and_data():
    assert (
        scoring.scoring_run_id(
            "customer_segmentation",
            "3",
            "1a2b3c4d5e6f7a8b",
            "gold_customer_rfm@v2,gold_customer_behavior@v5",
        )
        == "score:customer_segmentation@v3/1a2b3c4d:gold_customer_rfm@v2,gold_customer_behavior@v5"
    )
    # A run id shorter than 8 characters (or none) is kept as it is.
    assert scoring.scoring_run_id("m", "1", "", "t@v0") == "score:m@v1/:t@v0"


def test_assign_segments_without_probabilities(spark, rfm_df, behavior_df):
    # What a KMeans model predicts: a segment, no probability.
    predicted_df = spark.createDataFrame(
        [("a", 0, None), ("b", 1, None), ("c", 1, None), ("y", 0, None)],  # y: no RFM row
        scoring.PREDICTIONS_DDL,
    )
    expected_df = spark.createDataFrame(
        [
            ("a", 0, None, 3, 12, 2400.5, 300, 5, 5, 5, 200.04, 30.5, 57, 0.0769, 0.25),
            ("b", 1, None, 200, 1, -15.0, 200, 1, 1, 1, 12.0, 4.0, 3, 0.5, None),
            ("c", 1, None, 40, 2, 80.0, 41, 3, 2, 2, None, None, None, None, None),
        ],
        ASSIGNED_DDL,
    )
    actual_df = scoring.assign_segments(predicted_df, rfm_df, behavior_df)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


def test_assign_segments_keeps_the_gmm_membership_probability(spark, rfm_df, behavior_df):
    predicted_df = spark.createDataFrame(
        [("a", 0, 0.9), ("b", 1, 1.0), ("c", 1, 0.5)], scoring.PREDICTIONS_DDL
    )
    expected_df = spark.createDataFrame(
        [
            ("a", 0, 0.9, 3, 12, 2400.5, 300, 5, 5, 5, 200.04, 30.5, 57, 0.0769, 0.25),
            ("b", 1, 1.0, 200, 1, -15.0, 200, 1, 1, 1, 12.0, 4.0, 3, 0.5, None),
            ("c", 1, 0.5, 40, 2, 80.0, 41, 3, 2, 2, None, None, None, None, None),
        ],
        ASSIGNED_DDL,
    )
    actual_df = scoring.assign_segments(predicted_df, rfm_df, behavior_df)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


def test_customer_segments_add_persona_model_and_run(spark):
    assigned_df = spark.createDataFrame(
        [("a", 0, 0.9, 3), ("b", 1, None, 200), ("c", 1, 0.5, 40)],  # b: a KMeans-style null
        "customer_id string, segment_id int, membership_probability double, recency_days int",
    )
    profiles_df = spark.createDataFrame(
        [(0, 1, "VIP"), (1, 2, "Churned")], "segment_id int, customers long, persona string"
    )
    model, version, as_of, at, run_id = (
        RUN.model_name,
        "3",
        dt.date(2011, 12, 10),
        dt.datetime(2011, 12, 11, 6, 30),
        RUN.run_id,
    )
    expected_df = spark.createDataFrame(
        [
            ("a", 0, "VIP", 0.9, model, version, as_of, at, run_id),
            ("b", 1, "Churned", None, model, version, as_of, at, run_id),
            ("c", 1, "Churned", 0.5, model, version, as_of, at, run_id),
        ],
        "customer_id string, segment_id int, persona string, membership_probability double, "
        "model_name string, model_version string, as_of_date date, scored_at timestamp, "
        "scoring_run_id string",
    )
    actual_df = scoring.customer_segments(assigned_df, profiles_df, RUN)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


def test_stamped_profiles_keep_every_column_and_add_the_model(spark):
    profiles_df = spark.createDataFrame(
        [(0, 1, 0.3333, 200.04, "VIP"), (1, 2, 0.6667, None, "Churned")],  # no behaviour means
        "segment_id int, customers long, share double, mean_basket_value double, persona string",
    )
    expected_df = spark.createDataFrame(
        [
            (0, 1, 0.3333, 200.04, "VIP", RUN.model_name, "3", RUN.as_of_date, RUN.scored_at),
            (1, 2, 0.6667, None, "Churned", RUN.model_name, "3", RUN.as_of_date, RUN.scored_at),
        ],
        "segment_id int, customers long, share double, mean_basket_value double, persona string, "
        "model_name string, model_version string, as_of_date date, scored_at timestamp",
    )
    actual_df = scoring.stamped_profiles(profiles_df, RUN)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


# --- the registered pyfunc scoring in Spark ---------------------------------------------

GOLD_DDL = "customer_id string, recency_days int, frequency long, monetary double"
GOLD_ROWS = [
    ("a", 3, 12, 2400.5),
    ("b", 200, 1, -15.0),  # net returns: enters as ln(1 + 0)
    ("c", 40, None, 80.0),  # an unknown frequency enters as 0
    ("d", 5, 10, 2000.0),
    ("e", 190, 2, 30.0),
]


def _pyfunc(tmp_path, model: SegmentModel):
    """`model` logged and loaded back the way the sweep logs it (pickled by value)."""
    import cloudpickle
    from mlflow.models import infer_signature

    example = pd.DataFrame([[10.0, 3.0, 500.0]], columns=list(model.input_columns))
    cloudpickle.register_pickle_by_value(segment_model)
    try:
        path = tmp_path / "model"
        mlflow.pyfunc.save_model(
            str(path),
            python_model=model,
            signature=infer_signature(example, model.predict(None, example)),
            pip_requirements=model_requirements(),
        )
    finally:
        cloudpickle.unregister_pickle_by_value(segment_model)
    return mlflow.pyfunc.load_model(str(path))


def _features() -> FeatureTransform:
    return FeatureTransform(
        ("recency_days", "frequency", "monetary"),
        (False, True, True),
        mean=np.array([100.0, 1.5, 5.0]),
        std=np.array([100.0, 1.0, 2.5]),
    )


def test_a_kmeans_pyfunc_scores_the_same_on_the_driver_and_in_spark_in_any_partitioning(
    spark, tmp_path
):
    model = SegmentModel(
        _features(), "kmeans", "sklearn", centers=np.array([[-0.8, 0.9, 1.0], [0.9, -1.0, -1.2]])
    )
    pyfunc = _pyfunc(tmp_path, model)
    gold_df = spark.createDataFrame(GOLD_ROWS, GOLD_DDL)
    expected_df = spark.createDataFrame(
        [("a", 0, None), ("b", 1, None), ("c", 1, None), ("d", 0, None), ("e", 1, None)],
        scoring.PREDICTIONS_DDL,
    )
    for partitions in (1, 3):
        actual_df = scoring.predict_segments(pyfunc, gold_df.repartition(partitions))
        assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    actual_df = scoring.predict_segments(pyfunc, gold_df.repartition(3), on_driver=True)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    # no customers: no rows, the same columns
    empty_df = scoring.predict_segments(pyfunc, gold_df.limit(0), on_driver=True)
    assert_df_equality(empty_df, expected_df.limit(0), ignore_nullable=True)


def test_a_gmm_pyfunc_gives_segment_and_rounded_probability(spark, tmp_path):
    model = SegmentModel(
        _features(),
        "gmm",
        "spark",
        weights=np.array([0.5, 0.5]),
        means=np.array([[-0.8, 0.9, 1.0], [0.9, -1.0, -1.2]]),
        covariances=np.array([np.eye(3), np.eye(3)]),
    )
    pyfunc = _pyfunc(tmp_path, model)
    gold_df = spark.createDataFrame(GOLD_ROWS, GOLD_DDL)
    # what the model says in pandas is what Spark writes, batch by batch
    expected = model.predict(None, gold_df.toPandas())
    assert expected["membership_probability"].between(0.5, 1.0).all()
    expected_df = spark.createDataFrame(
        [
            (c, int(s), float(p))
            for c, s, p in zip(
                [r[0] for r in GOLD_ROWS],
                expected["segment_id"],
                expected["membership_probability"],
                strict=True,
            )
        ],
        scoring.PREDICTIONS_DDL,
    )
    for on_driver in (False, True):
        actual_df = scoring.predict_segments(pyfunc, gold_df.repartition(2), on_driver=on_driver)
        assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    assert expected["segment_id"].tolist() == [0, 1, 1, 0, 1]


def test_the_logged_model_loads_and_predicts_without_this_package(tmp_path):
    """The model is pickled by value: a consumer needs MLflow, numpy and pandas, not the
    retail_segmentation wheel (here its import is blocked in a fresh interpreter)."""
    import subprocess
    import sys
    import textwrap

    model = SegmentModel(
        _features(), "kmeans", "sklearn", centers=np.array([[-0.8, 0.9, 1.0], [0.9, -1.0, -1.2]])
    )
    _pyfunc(tmp_path, model)
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["retail_segmentation"] = None  # any import of the package fails
        import mlflow.pyfunc, pandas as pd
        model = mlflow.pyfunc.load_model({str(tmp_path / "model")!r})
        rows = pd.DataFrame({{"recency_days": [3.0, 200.0], "frequency": [12.0, 1.0],
                              "monetary": [2400.5, -15.0]}})
        print(model.predict(rows)["segment_id"].tolist())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[0, 1]"
