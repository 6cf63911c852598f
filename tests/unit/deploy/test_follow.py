"""Trigger the deployed job and follow its run: the real SDK against the loopback stand-in."""

from __future__ import annotations

import re

import pytest
from fake_workspace import FAILURE_MESSAGE, WORKSPACE_ID

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.deploy.follow import (
    JobLookupError,
    JobRef,
    RunTimeoutError,
    find_job,
    follow_run,
    parse_parameters,
    run_job,
    start_run,
)
from retail_segmentation.deploy.workspace import WorkspaceError

JOBS = "/api/2.2/jobs"
DEV_NAME = "[dev jane_doe] retail_segmentation"


def _clockless(lines: list[str]) -> list[str]:
    """Lines with the elapsed time replaced: runs against the stand-in take no time."""
    return [re.sub(r"\d\d:\d\d", "mm:ss", line) for line in lines]


def _api_calls(workspace) -> list[tuple[str, str, dict]]:
    return [(r.method, r.path, r.query) for r in workspace.requests if r.path.startswith("/api/")]


def test_a_successful_run_is_followed_to_the_end(client, workspace):
    workspace.add_job(1001, DEV_NAME)
    run_id = workspace.script_run(
        [
            {"bronze": "PENDING", "silver": "BLOCKED"},
            {"bronze": "RUNNING", "silver": "BLOCKED"},
            {"bronze": "SUCCESS", "silver": "RUNNING"},
            {"bronze": "SUCCESS", "silver": "SUCCESS"},
        ]
    )
    lines = []

    outcome = run_job(
        client,
        parameters={"as_of_date": "2011-12-10", "k_range": "2..6"},
        poll_seconds=0,
        echo=lines.append,
    )

    assert (outcome.run_id, outcome.result, outcome.exit_code) == (run_id, "SUCCESS", 0)
    page = f"{workspace.url}/?o={WORKSPACE_ID}#job/1001/run/{run_id}"
    assert _clockless(lines) == [
        f"started run {run_id} of job 1001 ('{DEV_NAME}') with as_of_date=2011-12-10, k_range=2..6",
        f"run {run_id}: {page}",
        "[mm:ss] bronze    PENDING",
        "[mm:ss] silver    BLOCKED",
        "[mm:ss] bronze    RUNNING",
        "[mm:ss] bronze    TERMINATED   SUCCESS",
        "[mm:ss] silver    RUNNING",
        "[mm:ss] silver    TERMINATED   SUCCESS",
        f"run {run_id} SUCCESS after mm:ss: 2 task(s) succeeded",
    ]
    # exact name first (none), then every job for the dev-prefixed one, then run and poll
    run_get = ("GET", f"{JOBS}/runs/get", {"run_id": [str(run_id)]})
    assert _api_calls(workspace) == [
        ("GET", f"{JOBS}/list", {"name": ["retail_segmentation"]}),
        ("GET", f"{JOBS}/list", {"limit": ["100"]}),
        ("POST", f"{JOBS}/run-now", {}),
        run_get,
        run_get,
        run_get,
        run_get,
    ]
    (run_now,) = workspace.requests_to("POST", f"{JOBS}/run-now")
    assert run_now.json() == {
        "job_id": 1001,
        "job_parameters": {"as_of_date": "2011-12-10", "k_range": "2..6"},
    }
    assert run_now.headers["authorization"] == "Bearer dummy-token"
    assert run_now.headers["content-type"] == "application/json"


def test_a_failed_task_fails_the_run_and_is_named_with_its_error(client, workspace):
    workspace.add_job(1001, "retail_segmentation")
    run_id = workspace.script_run(
        [
            {"bronze": "RUNNING", "silver": "BLOCKED", "gold": "BLOCKED"},
            {"bronze": "SUCCESS", "silver": "FAILED", "gold": "UPSTREAM_FAILED"},
        ],
        errors={
            "silver": "LedgerImbalanceError: bronze 1000 != silver 990 + quarantine 5 + "
            "duplicates 4"
        },
    )
    lines = []

    outcome = run_job(client, poll_seconds=0, echo=lines.append)

    assert (outcome.result, outcome.exit_code) == ("FAILED", 1)
    silver_run = run_id * 100 + 2
    assert _clockless(lines) == [
        f"started run {run_id} of job 1001 ('retail_segmentation') with default parameters",
        f"run {run_id}: {workspace.url}/?o={WORKSPACE_ID}#job/1001/run/{run_id}",
        "[mm:ss] bronze    RUNNING",
        "[mm:ss] silver    BLOCKED",
        "[mm:ss] gold      BLOCKED",
        "[mm:ss] bronze    TERMINATED   SUCCESS",
        f"[mm:ss] silver    TERMINATED   FAILED: {FAILURE_MESSAGE}",
        "[mm:ss] gold      TERMINATED   UPSTREAM_FAILED: Upstream task(s) failed.",
        f"run {run_id} FAILED after mm:ss: Task silver failed with message: {FAILURE_MESSAGE}.",
        "  silver: FAILED: LedgerImbalanceError: bronze 1000 != silver 990 + quarantine 5 + "
        "duplicates 4",
        f"    {workspace.url}/?o={WORKSPACE_ID}#job/1001/run/{silver_run}",
        "  not run: gold (UPSTREAM_FAILED)",
    ]
    # no parameters given: the job's defaults apply, none are sent
    (run_now,) = workspace.requests_to("POST", f"{JOBS}/run-now")
    assert run_now.json() == {"job_id": 1001}
    (output,) = workspace.requests_to("GET", f"{JOBS}/runs/get-output")
    assert output.query == {"run_id": [str(silver_run)]}


def test_runs_without_the_status_field_are_read_from_the_deprecated_state(client, workspace):
    # older API versions: a failed run's life_cycle_state is INTERNAL_ERROR, a final state
    workspace.add_job(7, "retail_segmentation")
    workspace.script_run([{"bronze": "RUNNING"}, {"bronze": "FAILED"}], with_status=False)
    run_id = start_run(client, JobRef(7, "retail_segmentation"), {})
    lines = []
    outcome = follow_run(client, run_id, poll_seconds=0, echo=lines.append)
    assert (outcome.result, outcome.exit_code) == ("FAILED", 1)
    assert _clockless(lines)[1:3] == [
        "[mm:ss] bronze    RUNNING",
        f"[mm:ss] bronze    TERMINATED   FAILED: {FAILURE_MESSAGE}",
    ]


def test_a_canceled_run_has_its_own_exit_code(client, workspace):
    workspace.add_job(7, "retail_segmentation")
    workspace.script_run([{"bronze": "RUNNING"}, {"bronze": "CANCELED"}])
    run_id = start_run(client, JobRef(7, "retail_segmentation"), {})
    outcome = follow_run(client, run_id, poll_seconds=0, echo=lambda _: None)
    assert (outcome.result, outcome.exit_code) == ("CANCELED", 3)


def test_elapsed_time_and_polling_follow_the_clock(client, workspace):
    workspace.add_job(7, "retail_segmentation")
    workspace.script_run(
        [{"bronze": "QUEUED"}, {"bronze": "RUNNING"}, {"bronze": "RUNNING"}, {"bronze": "SUCCESS"}]
    )
    run_id = start_run(client, JobRef(7, "retail_segmentation"), {})
    now = [0.0]
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    lines = []
    follow_run(
        client, run_id, poll_seconds=30, echo=lines.append, clock=lambda: now[0], sleep=sleep
    )
    assert sleeps == [30, 30, 30]
    assert lines[1:] == [
        "[00:00] bronze    QUEUED",
        "[00:30] bronze    RUNNING",
        "[01:30] bronze    TERMINATED   SUCCESS",
        f"run {run_id} SUCCESS after 01:30: 1 task(s) succeeded",
    ]


def test_following_ends_with_a_clear_error_after_the_timeout(client, workspace):
    workspace.add_job(7, "retail_segmentation")
    workspace.script_run([{"bronze": "RUNNING"}])
    run_id = start_run(client, JobRef(7, "retail_segmentation"), {})
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(RunTimeoutError) as caught:
        follow_run(
            client,
            run_id,
            poll_seconds=25,
            timeout_minutes=1,
            echo=lambda _: None,
            clock=lambda: now[0],
            sleep=sleep,
        )
    assert str(caught.value) == (
        f"run {run_id} is still RUNNING after 1 minute(s) (--timeout-minutes); it goes on in "
        f"the workspace: follow it at {workspace.url}/?o={WORKSPACE_ID}#job/7/run/{run_id} or "
        f"stop it with `databricks jobs cancel-run {run_id}`"
    )
    # polls at 0, 25, 50 and, the last sleep cut to the deadline, at 60 seconds
    assert len(workspace.requests_to("GET", f"{JOBS}/runs/get")) == 4


def test_the_exact_name_wins_over_dev_prefixed_ones(client, workspace):
    workspace.add_job(1, DEV_NAME)
    workspace.add_job(2, "retail_segmentation")
    assert find_job(client) == JobRef(2, "retail_segmentation")
    assert len(workspace.requests_to("GET", f"{JOBS}/list")) == 1


def test_the_dev_prefixed_job_is_found_across_pages(client, workspace):
    for job_id in range(1, 151):
        workspace.add_job(job_id, f"other_job_{job_id}")
    workspace.add_job(151, DEV_NAME)
    workspace.add_job(152, "retail_segmentation_backfill")
    assert find_job(client) == JobRef(151, DEV_NAME)
    pages = [r.query for r in workspace.requests_to("GET", f"{JOBS}/list")]
    assert pages == [
        {"name": ["retail_segmentation"]},
        {"limit": ["100"]},
        {"limit": ["100"], "page_token": ["100"]},
    ]


def test_several_dev_jobs_are_listed_and_none_is_chosen(client, workspace):
    workspace.add_job(11, DEV_NAME)
    workspace.add_job(12, "[dev bob] retail_segmentation")
    with pytest.raises(JobLookupError) as caught:
        find_job(client)
    assert str(caught.value) == (
        "2 jobs answer to the name 'retail_segmentation': '[dev jane_doe] retail_segmentation' "
        "(job 11), '[dev bob] retail_segmentation' (job 12); pass --job-id to choose one"
    )


def test_no_job_with_the_name_says_to_deploy(client, workspace):
    workspace.add_job(3, "nightly_etl")
    with pytest.raises(JobLookupError) as caught:
        find_job(client, name="retail_segmentation")
    assert str(caught.value) == (
        "no job named 'retail_segmentation' or '[dev <user>] retail_segmentation' in the "
        "workspace: deploy the bundle first (databricks bundle deploy), or pass --job-id"
    )


def test_a_job_id_is_looked_up_and_a_missing_one_named(client, workspace):
    workspace.add_job(1001, DEV_NAME)
    assert find_job(client, job_id=1001) == JobRef(1001, DEV_NAME)
    assert workspace.requests_to("GET", f"{JOBS}/get")[0].query == {"job_id": ["1001"]}
    with pytest.raises(WorkspaceError) as caught:
        find_job(client, job_id=42)
    assert str(caught.value) == (
        "job 42 was not found (Job 42 does not exist): deploy the bundle first "
        "(databricks bundle deploy), or check --job-id"
    )


def test_parameters_are_key_value_pairs():
    assert parse_parameters(["as_of_date=2011-12-10", "k_range=2..6", "x=a=b", "empty="]) == {
        "as_of_date": "2011-12-10",
        "k_range": "2..6",
        "x": "a=b",
        "empty": "",
    }
    with pytest.raises(ConfigError) as caught:
        parse_parameters(["as_of_date"])
    assert str(caught.value) == (
        "parameter --param 'as_of_date' is not KEY=VALUE (e.g. k_range=2..6)"
    )
    with pytest.raises(ConfigError, match="parameter --param k_range is given twice"):
        parse_parameters(["k_range=2..6", "k_range=3..4"])


def test_bad_polling_settings_are_refused_before_any_request(client, workspace):
    with pytest.raises(ConfigError, match=r"parameter poll_seconds=-1: expected 0 or more"):
        run_job(client, poll_seconds=-1)
    with pytest.raises(ConfigError, match=r"parameter timeout_minutes=0: expected a positive"):
        run_job(client, timeout_minutes=0)
    assert _api_calls(workspace) == []
