"""`retail-seg upload` and `retail-seg run-job`: auth from the environment or a profile,
output, exit codes and one-sentence errors, against the loopback stand-in."""

from __future__ import annotations

import re

from fake_workspace import WORKSPACE_ID

from retail_segmentation import cli

LANDING = "/Volumes/main/retail/landing"
CSV = b"Invoice,StockCode,Quantity\n489434,85048,12\n"


def test_upload_with_environment_auth(cli_env, tmp_path, capsys):
    workspace = cli_env
    (tmp_path / "2010.csv").write_bytes(CSV)

    code = cli.main(["upload", str(tmp_path / "2010.csv")])

    assert code == 0
    assert workspace.files == {f"{LANDING}/2010.csv": CSV}
    assert capsys.readouterr().out.splitlines() == [
        f"uploaded  {tmp_path / '2010.csv'}  ->  {LANDING}/2010.csv  (43 bytes)",
        f"1 file -> {LANDING}: 1 uploaded (43 bytes)",
    ]
    (put,) = workspace.requests_to("PUT", "/api/2.0/fs/files")
    assert put.headers["authorization"] == "Bearer dummy-token"


def test_upload_with_a_profile(workspace, monkeypatch, tmp_path, capsys):
    config = tmp_path / "databrickscfg"
    config.write_text(f"[dev]\nhost = {workspace.url}\ntoken = profile-token\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    workspace.add_volume("dev", "retail", "landing")
    (tmp_path / "2010.csv").write_bytes(CSV)

    argv = ["upload", str(tmp_path / "2010.csv"), "--catalog", "dev", "--schema", "retail"]
    code = cli.main([*argv, "--profile", "dev"])

    assert code == 0, capsys.readouterr().err
    (put,) = workspace.requests_to("PUT", "/api/2.0/fs/files")
    assert put.path == "/api/2.0/fs/files/Volumes/dev/retail/landing/2010.csv"
    assert put.headers["authorization"] == "Bearer profile-token"


def test_upload_errors_are_one_sentence(cli_env, tmp_path, capsys):
    (tmp_path / "2010.csv").write_bytes(CSV)
    cases = [
        (
            ["upload", str(tmp_path / "nope")],
            f"error: local path '{tmp_path / 'nope'}': no such file or folder",
        ),
        (
            ["upload", str(tmp_path), "--volume-path", "/Volumes/main"],
            "error: parameter volume_path='/Volumes/main' is not a volume path: expected "
            "/Volumes/<catalog>/<schema>/<volume>[/<folder>]",
        ),
        (
            ["upload", str(tmp_path), "--schema", "retail_prod"],
            "error: volume /Volumes/main/retail_prod/landing was not found (Not Found): deploy "
            "the bundle first (databricks bundle deploy creates the landing volume), or pass "
            "the path of an existing volume",
        ),
    ]
    for argv, expected in cases:
        assert cli.main(argv) == 2
        assert capsys.readouterr().err.strip() == expected


def test_missing_credentials_are_one_sentence(workspace, tmp_path, capsys):
    (tmp_path / "2010.csv").write_bytes(CSV)
    assert cli.main(["upload", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: cannot connect to a Databricks workspace with DATABRICKS_HOST / "
        "DATABRICKS_TOKEN: no credentials found; set DATABRICKS_HOST and DATABRICKS_TOKEN, "
        "or pass --profile NAME from ~/.databrickscfg"
    )


def test_run_job_exits_0_on_success(cli_env, capsys):
    workspace = cli_env
    workspace.add_job(1001, "[dev jane_doe] retail_segmentation")
    run_id = workspace.script_run([{"bronze": "RUNNING"}, {"bronze": "SUCCESS"}])

    params = ["--param", "as_of_date=2011-12-10", "--param", "k_range=2..6"]
    code = cli.main(["run-job", *params, "--poll-seconds", "0"])

    assert code == 0
    out = re.sub(r"\d\d:\d\d", "mm:ss", capsys.readouterr().out)
    assert out.splitlines() == [
        f"started run {run_id} of job 1001 ('[dev jane_doe] retail_segmentation') with "
        "as_of_date=2011-12-10, k_range=2..6",
        f"run {run_id}: {workspace.url}/?o={WORKSPACE_ID}#job/1001/run/{run_id}",
        "[mm:ss] bronze    RUNNING",
        "[mm:ss] bronze    TERMINATED   SUCCESS",
        f"run {run_id} SUCCESS after mm:ss: 1 task(s) succeeded",
    ]
    (run_now,) = workspace.requests_to("POST", "/api/2.2/jobs/run-now")
    assert run_now.json()["job_parameters"] == {"as_of_date": "2011-12-10", "k_range": "2..6"}


def test_run_job_exits_1_when_a_task_fails(cli_env, capsys):
    workspace = cli_env
    workspace.add_job(1001, "retail_segmentation")
    run_id = workspace.script_run(
        [{"bronze": "FAILED", "silver": "UPSTREAM_FAILED"}],
        errors={"bronze": "IngestError: sales.csv: missing required column Invoice"},
    )

    code = cli.main(["run-job", "--job-id", "1001", "--poll-seconds", "0"])

    assert code == 1
    out = re.sub(r"\d\d:\d\d", "mm:ss", capsys.readouterr().out).splitlines()
    assert out[-4:] == [
        f"run {run_id} FAILED after mm:ss: Task bronze failed with message: Workload failed, "
        "see run output for details.",
        "  bronze: FAILED: IngestError: sales.csv: missing required column Invoice",
        f"    {workspace.url}/?o={WORKSPACE_ID}#job/1001/run/{run_id * 100 + 1}",
        "  not run: silver (UPSTREAM_FAILED)",
    ]


def test_run_job_exits_4_after_its_timeout(cli_env, capsys):
    workspace = cli_env
    workspace.add_job(1001, "retail_segmentation")
    run_id = workspace.script_run([{"bronze": "RUNNING"}])

    code = cli.main(["run-job", "--poll-seconds", "0.05", "--timeout-minutes", "0.002"])

    assert code == 4
    assert capsys.readouterr().err.strip() == (
        f"error: run {run_id} is still RUNNING after 0.002 minute(s) (--timeout-minutes); it "
        f"goes on in the workspace: follow it at {workspace.url}/?o={WORKSPACE_ID}#job/1001/run/"
        f"{run_id} or stop it with `databricks jobs cancel-run {run_id}`"
    )


def test_run_job_lookup_errors_are_one_sentence(cli_env, capsys):
    workspace = cli_env
    workspace.add_job(11, "[dev jane_doe] retail_segmentation")
    workspace.add_job(12, "[dev bob] retail_segmentation")
    assert cli.main(["run-job"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: 2 jobs answer to the name 'retail_segmentation': '[dev jane_doe] "
        "retail_segmentation' (job 11), '[dev bob] retail_segmentation' (job 12); pass "
        "--job-id to choose one"
    )
    assert cli.main(["run-job", "--param", "k_range"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: parameter --param 'k_range' is not KEY=VALUE (e.g. k_range=2..6)"
    )
    assert workspace.requests_to("POST", "/api/2.2/jobs/run-now") == []


def test_deploy_command_defaults():
    upload = cli.build_parser().parse_args(["upload", "data"])
    assert (upload.volume_path, upload.catalog, upload.schema, upload.volume) == (
        None,
        None,
        None,
        None,
    )
    assert (upload.overwrite, upload.profile) == (False, None)
    run = cli.build_parser().parse_args(["run-job"])
    assert (run.job_id, run.job_name, run.param, run.poll_seconds, run.timeout_minutes) == (
        None,
        "retail_segmentation",
        [],
        10.0,
        None,
    )
