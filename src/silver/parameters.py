"""`silver_rule_parameters`: the fitted parameters of the silver rules, versioned.

The IQR bounds of quantity and price and the modal price of every stock code are fitted on all
the data silver has seen. A daily run cleans its new lines with the current version instead of
refitting, so lines of earlier days keep the values they were cleaned with; every silver and
quarantine row records the version (`_rule_version`). A refit appends a new version and
reprocesses the whole of bronze with it (see `silver.task`).

One row per (version, name, key): scalar parameters have a null key, modal prices the stock
code as key. Text-valued entries (the options digest, the reason) use `text`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_segmentation.common.tables import SILVER_RULE_PARAMETERS, Lakehouse
from retail_segmentation.silver.rules import IqrBounds

PARAMETERS_SCHEMA = "version int, name string, key string, value double, text string"
MODAL_PRICE = "modal_price"


@dataclass(frozen=True)
class RuleParameters:
    """One version of the fitted silver parameters (modal prices stay in the table).

    Attributes:
        version: 1, 2, ... in the order they were fitted.
        quantity, price: the IQR bounds lines are clipped into.
        clipped_share: share of the kept product lines the bounds clipped when fitted (the
            baseline the drift measure is compared with).
        fitted_lines: kept product lines the bounds were fitted on.
        fitted_through: day of the newest invoice in the fitted data (the schedule counts from it).
        bronze_version: the bronze data version fitted on.
        options_digest: digest of the rule options (multiplier, codes, date formats, null
            tokens); other options need another fit.
        reason: why this version was fitted.
    """

    version: int
    quantity: IqrBounds
    price: IqrBounds
    clipped_share: float
    fitted_lines: int
    fitted_through: dt.date | None
    bronze_version: int
    options_digest: str
    reason: str

    def scalar_rows(self) -> list[tuple]:
        """The version's rows other than modal prices."""
        v = self.version
        return [
            (v, "iqr_multiplier", None, self.quantity.multiplier, None),
            (v, "quantity_q1", None, self.quantity.q1, None),
            (v, "quantity_q3", None, self.quantity.q3, None),
            (v, "price_q1", None, self.price.q1, None),
            (v, "price_q3", None, self.price.q3, None),
            (v, "clipped_share", None, self.clipped_share, None),
            (v, "fitted_lines", None, float(self.fitted_lines), None),
            (v, "bronze_version", None, float(self.bronze_version), None),
            (
                v,
                "fitted_through",
                None,
                None,
                self.fitted_through.isoformat() if self.fitted_through else None,
            ),
            (v, "options_digest", None, None, self.options_digest),
            (v, "reason", None, None, self.reason),
        ]

    def as_detail(self) -> dict[str, object]:
        """For the ledger and the log."""
        return {
            "rule_version": self.version,
            "reason": self.reason,
            "fitted_through": self.fitted_through,
            "clipped_share": round(self.clipped_share, 6),
        }


def _from_rows(version: int, rows: dict[str, tuple[float | None, str | None]]) -> RuleParameters:
    def value(name: str) -> float:
        return float(rows[name][0])

    multiplier = value("iqr_multiplier")
    through = rows["fitted_through"][1]
    return RuleParameters(
        version=version,
        quantity=IqrBounds(
            "quantity", value("quantity_q1"), value("quantity_q3"), multiplier, floor=1.0
        ),
        price=IqrBounds("price", value("price_q1"), value("price_q3"), multiplier, floor=0.0),
        clipped_share=value("clipped_share"),
        fitted_lines=int(value("fitted_lines")),
        fitted_through=dt.date.fromisoformat(through) if through else None,
        bronze_version=int(value("bronze_version")),
        options_digest=str(rows["options_digest"][1]),
        reason=str(rows["reason"][1]),
    )


def current_parameters(lakehouse: Lakehouse) -> RuleParameters | None:
    """The newest version, or None before the first fit (one Spark action)."""
    if not lakehouse.exists(SILVER_RULE_PARAMETERS):
        return None
    rows = (
        lakehouse.read(SILVER_RULE_PARAMETERS)
        .where(F.col("name") != MODAL_PRICE)
        .select("version", "name", "value", "text")
        .collect()
    )  # a dozen rows per version
    if not rows:
        return None
    newest = max(r["version"] for r in rows)
    return _from_rows(
        newest, {r["name"]: (r["value"], r["text"]) for r in rows if r["version"] == newest}
    )


def modal_prices(lakehouse: Lakehouse, version: int) -> DataFrame:
    """stock_code, modal_price of one version."""
    return (
        lakehouse.read(SILVER_RULE_PARAMETERS)
        .where((F.col("version") == version) & (F.col("name") == MODAL_PRICE))
        .select(F.col("key").alias("stock_code"), F.col("value").alias("modal_price"))
    )


def parameters_df(
    spark: SparkSession, parameters: RuleParameters, modal_price_df: DataFrame
) -> DataFrame:
    """The rows of one version: its scalars and its modal prices."""
    scalars = spark.createDataFrame(parameters.scalar_rows(), PARAMETERS_SCHEMA)
    prices = modal_price_df.select(
        F.lit(parameters.version).alias("version"),
        F.lit(MODAL_PRICE).alias("name"),
        F.col("stock_code").alias("key"),
        F.col("modal_price").cast("double").alias("value"),
        F.lit(None).cast("string").alias("text"),
    )
    return scalars.unionByName(prices)


def save_parameters(
    lakehouse: Lakehouse, parameters: RuleParameters, modal_price_df: DataFrame
) -> None:
    """Write one version in one Delta commit; writing the same version again replaces it."""
    lakehouse.replace_where_condition(
        parameters_df(lakehouse.spark, parameters, modal_price_df),
        SILVER_RULE_PARAMETERS,
        f"version = {int(parameters.version)}",
    )
