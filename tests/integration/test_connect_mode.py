"""The Spark Connect suite (tests/connect) in its own process with SPARK_REMOTE=local[2]: the
graph from raw data to offers and the report on a local Spark Connect server with Delta,
under the guard that refuses what serverless refuses. A pytest process is either classic or
Spark Connect, so the suite cannot share this one's session; it starts with the session and
runs beside the tests before this one (tests/connect_suite.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from connect_suite import ConnectSuite

pytestmark = pytest.mark.integration

EXPECTED = {
    "test_the_session_is_spark_connect_with_the_guard",
    "test_keeping_a_frame_the_classic_way_is_refused[persist]",
    "test_keeping_a_frame_the_classic_way_is_refused[cache]",
    "test_keeping_a_frame_the_classic_way_is_refused[checkpoint]",
    "test_keeping_a_frame_the_classic_way_is_refused[localCheckpoint]",
    "test_cache_table_is_refused",
    "test_the_jvm_and_rdds_are_out_of_reach",
    "test_only_serverless_conf_keys_may_be_set",
    "test_intermediates_go_to_scratch_delta_tables",
    "test_delta_history_and_the_ledger_upsert_work_through_sql",
    "test_python_batches_run_in_the_venv_workers",
    "test_a_classic_session_asked_for_in_a_connect_process_is_one_sentence",
    "test_joining_a_server_checks_that_it_has_delta",
    "test_raw_data_to_offers_under_the_serverless_guard",
    "test_maintenance_between_two_runs_recomputes_nothing",
    "test_excel_parquet_whitespace_and_gzip_over_spark_connect",
    "test_an_increment_over_spark_connect_equals_a_full_refresh",
}


def test_the_spark_connect_suite_passes_under_the_serverless_guard(tmp_path):
    done = ConnectSuite.outcome(tmp_path)  # usually started with the session (tests/conftest.py)
    assert done.returncode == 0, done.output[-12000:]
    cases = ET.parse(done.report).getroot().iter("testcase")
    outcomes = {
        case.get("name"): [child.tag for child in case if child.tag != "system-out"]
        for case in cases
    }
    assert set(outcomes) == EXPECTED
    assert all(not problems for problems in outcomes.values()), outcomes
