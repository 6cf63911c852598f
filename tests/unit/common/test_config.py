"""Parameters that reach SQL are validated first."""

from __future__ import annotations

import datetime as dt

import pytest

from retail_segmentation.common.config import TableConfig, parse_date, validate_identifier
from retail_segmentation.common.errors import ConfigError


@pytest.mark.parametrize("name", ["retail", "main", "_dev_jane", "Gold2"])
def test_valid_identifiers_pass(name):
    assert validate_identifier(name, "schema") == name


@pytest.mark.parametrize(
    "name",
    ["", "retail; DROP TABLE x", "a.b", "`x`", "x'--", "1abc", "with space", "a" * 256, None],
)
def test_sql_metacharacters_are_rejected_naming_the_parameter(name):
    with pytest.raises(ConfigError, match=r"parameter schema=.* is not a valid name"):
        validate_identifier(name, "schema")


def test_table_config_validates_catalog_and_schema():
    with pytest.raises(ConfigError, match="parameter catalog="):
        TableConfig(catalog="main; --")
    with pytest.raises(ConfigError, match="parameter schema="):
        TableConfig(schema="retail.x")


def test_parse_date():
    assert parse_date("2011-12-09", "as_of_date") == dt.date(2011, 12, 9)
    with pytest.raises(ConfigError, match=r"parameter as_of_date='09/12/2011'.*YYYY-MM-DD"):
        parse_date("09/12/2011", "as_of_date")
