"""Entry points of the ML tasks (python_wheel_task / console scripts), in job order:

    sweep -> register -> score ---+
    recommend --------------------+-> offers

Each reads its inputs at pinned Delta versions, writes its tables in one Delta commit each,
records the run in the ledger last, and does nothing when that run is already recorded
(`--force` redoes it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from retail_segmentation.common.config import (
    TableConfig,
    add_table_arguments,
    table_config_from_args,
)
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.ledger import (
    LedgerEntry,
    has_finished,
    record_ledger,
    recorded_detail,
)
from retail_segmentation.common.materialize import Intermediates
from retail_segmentation.common.spark import get_spark
from retail_segmentation.common.tables import (
    GOLD_CUSTOMER_BEHAVIOR,
    GOLD_CUSTOMER_RFM,
    GOLD_CUSTOMER_SEGMENTS,
    GOLD_PRODUCT_RECOMMENDATIONS,
    GOLD_SEGMENT_HISTORY,
    GOLD_SEGMENT_PROFILES,
    GOLD_SEGMENTED_OFFERS,
    SILVER_PRODUCTS,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.gold.increment import changed_silver_rows, silver_rewrites
from retail_segmentation.gold.offers import (
    load_offer_catalogue,
    offer_catalogue_df,
    segmented_offers,
)
from retail_segmentation.ml.clustering import ALGORITHMS, SweepParams
from retail_segmentation.ml.features import FEATURE_SETS, FeatureSpec, customer_features_input
from retail_segmentation.ml.recommend import (
    FIT,
    AlsParams,
    FitState,
    RefitPolicy,
    plan_recommendations,
    purchase_matrix,
    recommend_products,
    refresh_recommendations,
)
from retail_segmentation.ml.registry import CHAMPION, RegisterConfig, register_winner
from retail_segmentation.ml.retrain_policy import RetrainPolicy
from retail_segmentation.ml.scoring import (
    DRIVER_SCORING_MAX_CUSTOMERS,
    ScoringRun,
    assign_segments,
    customer_segments,
    predict_segments,
    profiles_with_personas,
    scoring_run_id,
    stamped_profiles,
)
from retail_segmentation.ml.sweep import (
    SweepConfig,
    gold_commits,
    gold_versions_tag,
    run_sweep,
)
from retail_segmentation.ml.tracking import (
    MlflowConfig,
    add_mlflow_arguments,
    mlflow_config_from_args,
)
from retail_segmentation.silver.options import parse_flag


def _parser(prog: str, description: str, mlflow: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_table_arguments(parser)
    if mlflow:
        add_mlflow_arguments(parser)
    parser.add_argument("--force", action="store_true", help="redo the run even if recorded")
    return parser


def _session(tables: TableConfig) -> tuple[SparkSession, Lakehouse]:
    spark = get_spark(warehouse_dir=f"{tables.lakehouse_dir}/spark-warehouse")
    return spark, Lakehouse.attach(spark, tables)


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _gold_as_of(lakehouse: Lakehouse, rfm_version: int) -> dt.date:
    as_of = (
        lakehouse.read(GOLD_CUSTOMER_RFM, version=rfm_version).agg(F.max("as_of_date")).first()[0]
    )
    if as_of is None:
        raise ConfigError(f"{lakehouse.name(GOLD_CUSTOMER_RFM)} is empty: no customer to score")
    return as_of


def _ints(value: str, parameter: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in value.split("..", 1))
    except ValueError:
        raise ConfigError(
            f"parameter {parameter}={value!r} is not a range: expected LOW..HIGH, e.g. 2..8"
        ) from None
    return low, high


# --- sweep -------------------------------------------------------------------------------


def parse_sweep_args(argv: list[str] | None = None) -> SweepConfig:
    """Job parameters -> SweepConfig."""
    parser = _parser("retail-seg-sweep", "KMeans and GaussianMixture over a k range, in MLflow.")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), help="default: kmeans,gmm")
    parser.add_argument("--k-range", default="2..8", help="LOW..HIGH k to try (default: 2..8)")
    parser.add_argument(
        "--feature-set",
        default="rfm",
        choices=sorted(FEATURE_SETS),
        help="features the models see (default: rfm)",
    )
    parser.add_argument("--pca-components", type=int, default=0, help="0 = no PCA (default: 0)")
    parser.add_argument("--seed", type=int, default=42, help="seed of every fit (default: 42)")
    parser.add_argument("--max-iter", type=int, default=50, help="iterations per fit (default: 50)")
    parser.add_argument(
        "--min-cluster-share",
        type=float,
        default=0.02,
        help="a fit whose smallest cluster holds less than this share of customers cannot win "
        "(default: 0.02)",
    )
    parser.add_argument(
        "--truth-path",
        default="",
        help="CSV customer_id,profile of known profiles (generated data): logs the adjusted "
        "Rand index (default: none)",
    )
    parser.add_argument(
        "--engine",
        default="auto",
        choices=("auto", "sklearn", "spark"),
        help="what fits the candidates: scikit-learn on the driver, Spark MLlib, or auto "
        "(scikit-learn on serverless and up to 500,000 customers; default: auto)",
    )
    parser.add_argument(
        "--parallelism",
        type=int,
        default=4,
        help="Spark engine: candidates fitted at once; results do not depend on it (default: 4)",
    )
    parser.add_argument(
        "--git-commit", default="", help="commit to tag runs with (default: git rev-parse HEAD)"
    )
    defaults = RetrainPolicy()
    parser.add_argument(
        "--retrain",
        nargs="?",
        const="true",
        default="false",
        help="fit even when the retraining policy keeps the champion; true/false, alone: true",
    )
    parser.add_argument(
        "--max-model-age-days",
        type=int,
        default=defaults.max_age_days,
        help="retrain when the champion's data is this many days older than today's "
        f"(default: {defaults.max_age_days}; 0: never on age)",
    )
    parser.add_argument(
        "--max-new-customer-share",
        type=float,
        default=defaults.max_new_customer_share,
        help="retrain when more than this share of customers is new to the champion "
        f"(default: {defaults.max_new_customer_share})",
    )
    parser.add_argument(
        "--max-psi",
        type=float,
        default=defaults.max_psi,
        help="retrain when a feature's population stability index against the champion's "
        f"training data exceeds this (default: {defaults.max_psi})",
    )
    args = parser.parse_args(argv)
    k_min, k_max = _ints(args.k_range, "k_range")
    tables = table_config_from_args(args)
    params = SweepParams(
        algorithms=tuple(a.strip() for a in args.algorithms.split(",") if a.strip()),
        k_min=k_min,
        k_max=k_max,
        seed=args.seed,
        max_iter=args.max_iter,
        min_cluster_share=args.min_cluster_share,
        features=FeatureSpec(args.feature_set, args.pca_components),
    )
    return SweepConfig(
        tables=tables,
        mlflow=mlflow_config_from_args(args, tables),
        params=params,
        truth_path=args.truth_path or None,
        git_commit=args.git_commit,
        parallelism=args.parallelism,
        engine=args.engine,
        policy=RetrainPolicy(args.max_model_age_days, args.max_new_customer_share, args.max_psi),
        retrain=parse_flag(args.retrain, "retrain"),
    )


def sweep_main(argv: list[str] | None = None) -> None:
    """Entry point of the sweep task."""
    config = parse_sweep_args(argv)
    spark, lakehouse = _session(config.tables)
    outcome = run_sweep(spark, lakehouse, config)
    if outcome.kept:
        reasons = "; ".join(outcome.decision.reasons if outcome.decision else ())
        print(f"sweep: the champion stays, the retraining policy does not fire ({reasons})")
        return
    if outcome.decision is not None:
        print(f"sweep: retraining ({'; '.join(outcome.decision.reasons)})")
    if outcome.reused:
        print(f"sweep: up to date ({outcome.sweep_key}), nothing to do")
    for r in outcome.results:
        ari = "" if r.adjusted_rand_index is None else f"  ARI {r.adjusted_rand_index:.3f}"
        print(
            f"  {r.name:<10} silhouette {r.silhouette:.4f}  smallest cluster "
            f"{r.smallest_cluster_share:.1%}{ari}"
        )
    w = outcome.winner
    print(
        f"sweep: winner {w.name} (silhouette {w.silhouette:.4f}) of {len(outcome.results)} fits "
        f"with {outcome.engine} in {outcome.seconds:.1f}s; MLflow run {outcome.parent_run_id}"
    )


# --- register ----------------------------------------------------------------------------


def register_main(argv: list[str] | None = None) -> None:
    """Entry point of the register task."""
    parser = _parser("retail-seg-register", "Register the sweep's winner; move champion if better.")
    parser.add_argument(
        "--min-improvement",
        type=float,
        default=0.0,
        help="silhouette the winner must gain over the champion to replace it (default: 0)",
    )
    args = parser.parse_args(argv)
    tables = table_config_from_args(args)
    config = RegisterConfig(tables, mlflow_config_from_args(args, tables), args.min_improvement)
    spark, lakehouse = _session(tables)
    outcome = register_winner(spark, lakehouse, config)
    if outcome.kept is not None:
        print(
            f"register: {outcome.model_name} v{outcome.version} stays @{outcome.alias}, no new "
            f"sweep ({outcome.kept})"
        )
        return
    versus = (
        ""
        if outcome.champion_silhouette is None or outcome.champion_version == outcome.version
        else f" (champion v{outcome.champion_version}: {outcome.champion_silhouette:.4f} on the "
        "same data)"
    )
    print(
        f"register: {outcome.model_name} v{outcome.version} silhouette "
        f"{outcome.winner_silhouette:.4f} -> @{outcome.alias}{versus}"
    )


# --- score -------------------------------------------------------------------------------

SCORE_TABLES = (GOLD_CUSTOMER_SEGMENTS, GOLD_SEGMENT_PROFILES, GOLD_SEGMENT_HISTORY)


def score_customers(
    spark: SparkSession,
    lakehouse: Lakehouse,
    mlflow_config: MlflowConfig,
    force: bool = False,
    driver_max_customers: int = DRIVER_SCORING_MAX_CUSTOMERS,
) -> dict[str, int] | None:
    """Score every gold customer with the champion, on the driver up to
    `driver_max_customers` and in Spark beyond; None when this run is already recorded."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    mlflow_config.activate()
    name = mlflow_config.model_name
    try:
        champion = mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        raise ConfigError(
            f"model {name} has no @{CHAMPION} alias: run the sweep and register tasks first"
        ) from None
    commits = gold_commits(lakehouse)
    versions = {table: commit.version for table, commit in commits.items()}
    run_id = scoring_run_id(
        name, champion.version, champion.run_id or "", gold_versions_tag(versions)
    )
    done = all(lakehouse.exists(t) for t in SCORE_TABLES) and has_finished(lakehouse, run_id)
    if done and not force:
        return None

    rfm_version = commits[GOLD_CUSTOMER_RFM].latest_version
    # gold rewrites the customer table whole, one row per customer: its commit's rows
    customers = commits[GOLD_CUSTOMER_RFM].rows
    rfm_df = lakehouse.read(GOLD_CUSTOMER_RFM, version=rfm_version)
    behavior_df = lakehouse.read(
        GOLD_CUSTOMER_BEHAVIOR, version=commits[GOLD_CUSTOMER_BEHAVIOR].latest_version
    )
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    predicted_df = predict_segments(
        model,
        customer_features_input(rfm_df, behavior_df),
        on_driver=customers <= driver_max_customers,
    )
    run = ScoringRun(
        model_name=name,
        model_version=str(champion.version),
        as_of_date=_gold_as_of(lakehouse, rfm_version),
        # timezone-aware: Spark converts it to the session zone instead of reading a naive
        # UTC time as local time
        scored_at=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
        run_id=run_id,
    )
    with Intermediates(lakehouse, "score") as intermediates:
        # read by the profiles and by the segments: the model runs once
        assigned_df = intermediates.keep(
            assign_segments(predicted_df, rfm_df, behavior_df), "assigned"
        )
        profiles_df = profiles_with_personas(assigned_df)  # one row per segment
        segments_df = customer_segments(assigned_df, profiles_df, run)
        lakehouse.overwrite_all(
            {
                GOLD_SEGMENT_PROFILES: stamped_profiles(profiles_df, run),
                GOLD_CUSTOMER_SEGMENTS: segments_df,
            }
        )
    # History reads the table just written, not the model again: the same rows twice, in
    # one file a run (a customer-sized table), compacted as the runs add up.
    lakehouse.replace_where(
        lakehouse.read(GOLD_CUSTOMER_SEGMENTS).coalesce(1),
        GOLD_SEGMENT_HISTORY,
        "scoring_run_id",
        run_id,
    )
    rows = {t: lakehouse.last_commit_rows(t) for t in SCORE_TABLES}
    record_ledger(
        lakehouse,
        [
            LedgerEntry(
                run_id,
                "ml",
                step,
                table,
                rows_in=customers,
                rows_out=count,
                detail={
                    "model": f"{name}@v{champion.version}",
                    **{t: v for t, v in versions.items()},
                },
            )
            for step, (table, count) in enumerate(rows.items(), start=1)
        ],
    )
    lakehouse.compact_if_fragmented(GOLD_SEGMENT_HISTORY)
    return rows


def score_main(argv: list[str] | None = None) -> None:
    """Entry point of the score task."""
    args = _parser("retail-seg-score", "Score every customer with the champion model.").parse_args(
        argv
    )
    tables = table_config_from_args(args)
    mlflow_config = mlflow_config_from_args(args, tables)  # checked before Spark starts
    spark, lakehouse = _session(tables)
    rows = score_customers(spark, lakehouse, mlflow_config, args.force)
    if rows is None:
        print("score: up to date (same champion, same gold tables), nothing to do; --force redoes")
        return
    print("score: " + ", ".join(f"{t} {n}" for t, n in rows.items()))


# --- recommend ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecommendResult:
    """Rows written, and whether ALS was fitted (FIT) or the last lists refreshed, and why."""

    rows: int
    mode: str
    reason: str


def _fit_state(lakehouse: Lakehouse) -> FitState | None:
    """The ledger's record of the run that wrote the recommendations table's current data."""
    version = lakehouse.data_version(GOLD_PRODUCT_RECOMMENDATIONS)
    detail = recorded_detail(
        lakehouse, "ml", GOLD_PRODUCT_RECOMMENDATIONS, "recommendations_version", version
    )
    if detail is None:
        return None
    return FitState(
        int(detail["silver_version"]),
        dt.date.fromisoformat(detail["as_of_date"]),
        dt.date.fromisoformat(detail["fitted_as_of"]),
        int(detail["fitted_customers"]),
        detail["als_digest"],
    )


def build_recommendations(
    lakehouse: Lakehouse,
    params: AlsParams,
    force: bool = False,
    policy: RefitPolicy | None = None,
    refit: bool = False,
) -> RecommendResult | None:
    """Write `gold_product_recommendations` for every gold customer, fitting ALS when the
    policy says so and refreshing the last fit's lists otherwise; None when up to date."""
    for table in (SILVER_TRANSACTIONS, SILVER_PRODUCTS, GOLD_CUSTOMER_RFM):
        if not lakehouse.exists(table):
            raise ConfigError(
                f"table {lakehouse.name(table)} does not exist: run the pipeline first"
            )
    silver = lakehouse.data_commit(SILVER_TRANSACTIONS)
    products = lakehouse.data_commit(SILVER_PRODUCTS)
    rfm = lakehouse.data_commit(GOLD_CUSTOMER_RFM)
    digest = _digest(asdict(params))
    run_id = f"recommend:silver_v{silver.version}:rfm_v{rfm.version}:als_{digest}"
    exists = lakehouse.exists(GOLD_PRODUCT_RECOMMENDATIONS)
    if not force and not refit and exists and has_finished(lakehouse, run_id):
        return None
    as_of = _gold_as_of(lakehouse, rfm.latest_version)
    state = _fit_state(lakehouse) if exists else None
    plan = plan_recommendations(
        state,
        digest,
        as_of,
        rfm.rows,
        policy or RefitPolicy(),
        lambda since: silver_rewrites(lakehouse, since),
        refit,
    )
    silver_df = lakehouse.read(SILVER_TRANSACTIONS, version=silver.latest_version)
    customers_df = lakehouse.read(GOLD_CUSTOMER_RFM, version=rfm.latest_version)
    products_df = lakehouse.read(SILVER_PRODUCTS, version=products.latest_version)
    with Intermediates(lakehouse, "recommend") as intermediates:
        purchases_df = intermediates.keep(purchase_matrix(silver_df, as_of), "purchases")
        if plan.mode == FIT:
            recommendations_df = recommend_products(
                purchases_df, customers_df, products_df, params, keep=intermediates.keep
            )
        else:
            assert plan.since is not None
            recommendations_df = refresh_recommendations(
                lakehouse.read(
                    GOLD_PRODUCT_RECOMMENDATIONS,
                    version=lakehouse.version(GOLD_PRODUCT_RECOMMENDATIONS),
                ),
                purchases_df,
                customers_df,
                changed_silver_rows(lakehouse, plan.since, silver.latest_version),
                products_df,
                params.top_n,
                keep=intermediates.keep,
            )
        lakehouse.overwrite(
            recommendations_df.select("*", F.lit(as_of).cast("date").alias("as_of_date")),
            GOLD_PRODUCT_RECOMMENDATIONS,
        )
    commit = lakehouse.data_commit(GOLD_PRODUCT_RECOMMENDATIONS)
    if plan.mode == FIT or state is None:
        fitted_as_of, fitted_customers = as_of, rfm.rows
    else:
        fitted_as_of, fitted_customers = state.fitted_as_of, state.fitted_customers
    record_ledger(
        lakehouse,
        [
            LedgerEntry(
                run_id,
                "ml",
                1,
                GOLD_PRODUCT_RECOMMENDATIONS,
                rows_in=rfm.rows,
                rows_out=commit.rows,
                detail={
                    "als": asdict(params),
                    "als_digest": digest,
                    "silver_version": silver.version,
                    "as_of_date": as_of,
                    "mode": plan.mode,
                    "reason": plan.reason,
                    "fitted_as_of": fitted_as_of,
                    "fitted_customers": fitted_customers,
                    "recommendations_version": commit.version,
                },
            )
        ],
    )
    return RecommendResult(commit.rows, plan.mode, plan.reason)


def recommend_main(argv: list[str] | None = None) -> None:
    """Entry point of the recommend task."""
    parser = _parser("retail-seg-recommend", "ALS product recommendations.", mlflow=False)
    defaults = AlsParams()
    parser.add_argument("--top-n", type=int, default=defaults.top_n, help="default: 5")
    parser.add_argument(
        "--rank", type=int, default=defaults.rank, help="latent factors (default: 10)"
    )
    parser.add_argument("--max-iter", type=int, default=defaults.max_iter, help="default: 10")
    parser.add_argument("--reg-param", type=float, default=defaults.reg_param, help="default: 0.1")
    parser.add_argument(
        "--alpha", type=float, default=defaults.alpha, help="implicit confidence (default: 1.0)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="default: 42")
    policy = RefitPolicy()
    parser.add_argument(
        "--refit", action="store_true", help="fit ALS whatever the refit policy says"
    )
    parser.add_argument(
        "--refit-after-days",
        type=int,
        default=policy.refit_after_days,
        help="fit ALS again once the last fit is this many days old; between fits, refresh "
        f"its lists (0: fit on every run; default: {policy.refit_after_days})",
    )
    parser.add_argument(
        "--max-new-customer-share",
        type=float,
        default=policy.max_new_customer_share,
        help="fit ALS again once customers it never saw pass this share "
        f"(default: {policy.max_new_customer_share})",
    )
    args = parser.parse_args(argv)
    params = AlsParams(
        rank=args.rank,
        max_iter=args.max_iter,
        reg_param=args.reg_param,
        alpha=args.alpha,
        top_n=args.top_n,
        seed=args.seed,
    )
    policy = RefitPolicy(args.refit_after_days, args.max_new_customer_share)
    _, lakehouse = _session(table_config_from_args(args))
    result = build_recommendations(lakehouse, params, args.force, policy, args.refit)
    if result is None:
        print("recommend: up to date, nothing to do; --force redoes")
    else:
        done = "ALS fitted" if result.mode == FIT else "the last fit's lists refreshed"
        print(f"recommend: {done}: {result.reason}")
        print(f"recommend: {GOLD_PRODUCT_RECOMMENDATIONS} {result.rows}")


# --- offers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OffersResult:
    """Rows written to gold_segmented_offers, or None when up to date."""

    rows: int | None
    run_id: str


def build_offers(
    lakehouse: Lakehouse, catalogue_path: str | None = None, force: bool = False
) -> OffersResult:
    """Join every segmented customer to their persona's offer and their top products."""
    for table in (GOLD_CUSTOMER_SEGMENTS, GOLD_PRODUCT_RECOMMENDATIONS):
        if not lakehouse.exists(table):
            raise ConfigError(
                f"table {lakehouse.name(table)} does not exist: run the score and recommend tasks "
                "first"
            )
    offers = load_offer_catalogue(catalogue_path)
    segments = lakehouse.data_commit(GOLD_CUSTOMER_SEGMENTS)
    recommendations = lakehouse.data_commit(GOLD_PRODUCT_RECOMMENDATIONS)
    run_id = (
        f"offers:segments_v{segments.version}:recommendations_v{recommendations.version}:"
        f"catalogue_{_digest([asdict(o) for o in offers])}"
    )
    if not force and lakehouse.exists(GOLD_SEGMENTED_OFFERS) and has_finished(lakehouse, run_id):
        return OffersResult(None, run_id)
    segments_df = lakehouse.read(GOLD_CUSTOMER_SEGMENTS, version=segments.latest_version)
    offers_df = segmented_offers(
        segments_df,
        offer_catalogue_df(lakehouse.spark, offers),
        lakehouse.read(GOLD_PRODUCT_RECOMMENDATIONS, version=recommendations.latest_version),
    )
    stamps = segments_df.select("customer_id", "model_name", "model_version", "as_of_date")
    lakehouse.overwrite(offers_df.join(stamps, "customer_id"), GOLD_SEGMENTED_OFFERS)
    rows = lakehouse.last_commit_rows(GOLD_SEGMENTED_OFFERS)
    customers = segments.rows
    record_ledger(
        lakehouse,
        [LedgerEntry(run_id, "gold", 1, GOLD_SEGMENTED_OFFERS, rows_in=customers, rows_out=rows)],
    )
    return OffersResult(rows, run_id)


def offers_main(argv: list[str] | None = None) -> None:
    """Entry point of the offers task."""
    parser = _parser(
        "retail-seg-offers", "Personalised offers per segmented customer.", mlflow=False
    )
    parser.add_argument(
        "--offer-catalogue",
        default="",
        help="YAML offer catalogue (default: the one packaged in retail_segmentation.gold)",
    )
    args = parser.parse_args(argv)
    _, lakehouse = _session(table_config_from_args(args))
    result = build_offers(lakehouse, args.offer_catalogue or None, args.force)
    if result.rows is None:
        print("offers: up to date, nothing to do; --force redoes")
    else:
        print(f"offers: {GOLD_SEGMENTED_OFFERS} {result.rows}")
