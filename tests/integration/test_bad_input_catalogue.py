"""Every kind of bad input fails before any work starts, through the command line as users run it:
exit status 2, one clear message naming the file, the field (or row) and the fix, no stack trace
(``--debug`` adds it), and nothing written: no MLflow experiment or run, no Dagster run, no
forecast row.

Each case builds its files in a fresh folder and runs ``energy-forecast`` in this process
(``pipelines.cli.main``), against a local MLflow store and Dagster home in that folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from energy_forecast.data.synthetic import synthetic_steel_frame
from pipelines.logs import DEBUG_VARIABLE
from tests.conftest import CONFIGS, SMALL_SPLIT

pytestmark = pytest.mark.integration

STEEL = CONFIGS / "data" / "steel_industry.yaml"
TRAINING = CONFIGS / "training"


@dataclass
class Case:
    message: str
    """A regular expression the one-line message must match."""
    build: Callable[[Path], list[str]]
    """Writes the case's files into the folder; returns the command's arguments."""
    env: dict[str, str] | None = None


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def training(folder: Path, body: dict | str, name: str = "bad.yaml", base: str = "xgboost.yaml") -> Path:
    """A training YAML extending a real one, on the synthetic data's small split."""
    if isinstance(body, str):
        return write(folder / name, body)
    document = {"extends": str(TRAINING / base), "split": SMALL_SPLIT, "model": {"params": {"n_estimators": 5}} if base == "xgboost.yaml" else {}, **body}
    return write(folder / name, yaml.safe_dump(document, sort_keys=False))


def csv_rows(change: Callable[[list[str]], list[str]] | None = None, days: int = 70) -> bytes:
    text = synthetic_steel_frame(days=days, seed=3).to_csv(index=False, lineterminator="\r\n")
    lines = text.split("\r\n")
    return ("\r\n".join(change(lines) if change else lines)).encode("utf-8-sig")


def cell(lines: list[str], row: int, column: int, value: str) -> list[str]:
    cells = lines[row].split(",")
    cells[column] = value
    lines[row] = ",".join(cells)
    return lines


def data_case(change: Callable[[list[str]], list[str]] | None, message: str, *, raw: bytes | None = None, yaml_change: Callable[[str], str] | None = None) -> Case:
    """A training run on a broken data file (or data YAML)."""

    def build(folder: Path) -> list[str]:
        data = write(folder / "data.csv", raw if raw is not None else csv_rows(change))
        data_yaml = STEEL.read_text()
        if yaml_change:
            data_yaml = yaml_change(data_yaml)
        write(folder / "data.yaml", data_yaml.replace("${DATA_PATH:-../../data/raw/Steel_industry_data.csv}", str(data)))
        return ["train", str(training(folder, {"data": str(folder / "data.yaml")}))]

    return Case(message, build)


def config_case(body: dict | str, message: str, *, base: str = "xgboost.yaml", command: str = "train", env: dict[str, str] | None = None) -> Case:
    def build(folder: Path) -> list[str]:
        write(folder / "data.csv", csv_rows())
        return [command, str(training(folder, body, base=base))]

    return Case(message, build, {"DATA_PATH": "{folder}/data.csv", **(env or {})})


def cycle(folder: Path) -> Path:
    write(folder / "b.yaml", f"extends: {folder / 'a.yaml'}\n")
    return write(folder / "a.yaml", f"extends: {folder / 'b.yaml'}\n")


def deep(levels: int) -> str:
    return "model:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, levels)) + "  " * levels + "x: 1\n"


CASES: dict[str, Case] = {
    # -- the config file itself
    "config missing": Case(r"missing\.yaml: config file not found", lambda f: ["train", str(f / "missing.yaml")]),
    "config not UTF-8": Case(r"bad\.yaml: not UTF-8 text \(byte 0xe9 at offset \d+\)", lambda f: ["train", str(write(f / "bad.yaml", b"name: caf\xe9\n"))]),
    "config not YAML": Case(r"bad\.yaml: not valid YAML: .*line 2", lambda f: ["train", str(write(f / "bad.yaml", "model:\n  type: [xgboost\n"))]),
    "config a list": Case(r"bad\.yaml: expected a mapping at the top level, got list", lambda f: ["train", str(write(f / "bad.yaml", "- a\n- b\n"))]),
    "duplicate key": Case(r"bad\.yaml: not valid YAML: .*duplicate key 'seed' \(first at line 1\)", lambda f: ["train", str(write(f / "bad.yaml", "seed: 1\nseed: 2\n"))]),
    "absurdly deep": Case(r"bad\.yaml: not valid YAML: .*nested more than 40 levels deep", lambda f: ["train", str(write(f / "bad.yaml", deep(60)))]),
    "unknown top-level field": config_case({"modle": {}}, r"bad\.yaml: modle: unknown field; valid fields here: .*model"),
    "unknown nested field": config_case({"features": {"lagz": [1]}}, r"bad\.yaml: features\.lagz: unknown field; valid fields here: .*origin_lags"),
    "wrong type": config_case({"seed": "abc"}, r"bad\.yaml: seed: Input should be a valid integer"),
    "unknown model type": config_case({"model": {"type": "randomforest"}}, r"bad\.yaml: model\.type: unknown model type 'randomforest'; valid types: .*xgboost"),
    "unknown model parameter": config_case({"model": {"params": {"trees": 5}}}, r"bad\.yaml: model\.params: unknown parameter 'trees' for xgboost; valid parameters: "),
    "parameter out of range": config_case({"model": {"params": {"learning_rate": -1}}}, r"bad\.yaml: model\.params: learning_rate: Input should be greater than 0"),
    "fine-tuning field in zero-shot": config_case({"model": {"params": {"num_steps": 3}}}, r"model\.params: .*num_steps only apply to mode: finetune", base="chronos2_zeroshot.yaml"),
    "extends cycle": Case(r"'extends' forms a cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml", lambda f: ["train", str(cycle(f))]),
    "extends missing": config_case({"extends": "nowhere.yaml"}, r"nowhere\.yaml: config file not found"),
    "data file reference missing": config_case({"data": "../data/none.yaml"}, r"bad\.yaml: data: file not found: .*none\.yaml"),
    "task file reference missing": config_case({"task": "none.yaml"}, r"bad\.yaml: task: file not found: .*none\.yaml"),
    "unset variable": config_case({"tracking": {"experiment": "${NOT_SET_ANYWHERE}"}}, r"bad\.yaml: tracking\.experiment: \$\{NOT_SET_ANYWHERE\} is used but the environment variable NOT_SET_ANYWHERE is not set"),
    "variable holding ': '": config_case({}, r"x: y\.csv: data file not found\.", env={"DATA_PATH": "{folder}/x: y.csv"}),
    "variable holding ' #'": config_case({}, r"x #y\.csv: data file not found\.", env={"DATA_PATH": "{folder}/x #y.csv"}),
    "variable holding a newline": config_case({}, r"x\ny\.csv: data file not found\.", env={"DATA_PATH": "{folder}/x\ny.csv"}),
    "split not increasing": config_case({"split": {"train_end": "2018-02-26", "validation_end": "2018-02-12", "test_end": "2018-03-12"}}, r"bad\.yaml: split: train_end \(2018-02-26 00:00:00\) must come before validation_end"),
    "split mixes offsets": config_case({"split": {"train_end": "2018-02-12T00:00:00+09:00", "validation_end": "2018-02-26", "test_end": "2018-03-12"}}, r"bad\.yaml: split: train_end carry a UTC offset and the other bounds do not"),
    "split beyond the data": config_case({"split": {"train_end": "2018-03-01", "validation_end": "2018-04-01", "test_end": "2018-05-01"}}, r"bad\.yaml: split\.validation_end=2018-04-01 00:00:00: no data after it to test on \(data ends 2018-03-11 23:45:00\)"),
    "training period too short": config_case({"split": {"train_end": "2018-01-05", "validation_end": "2018-02-26", "test_end": "2018-03-12"}}, r"bad\.yaml: split\.train_end=2018-01-05 00:00:00: the training period has 384 rows; the features need more than 2688"),
    "seasonal lag shorter than the horizon": config_case({"features": {"seasonal_lags": [48]}}, r"bad\.yaml: \(top level\): features\.seasonal_lags / seasonal_means lags \[48\] are shorter than the horizon \(96\)"),
    "unknown covariate": config_case({"covariates": ["Load_Typ"]}, r"bad\.yaml: \(top level\): covariates \['Load_Typ'\] are not declared in data 'steel_industry'"),
    "template field unknown": config_case({"tracking": {"registered_model": "{data}-{horizon}"}}, r"bad\.yaml: tracking\.registered_model: '\{data\}-\{horizon\}' uses \['horizon'\]; a name template can only fill in \{data\} and \{task\}"),
    "registered name with a slash": config_case({"tracking": {"registered_model": "plants/{data}"}}, r"bad\.yaml: tracking\.registered_model: 'plants/\{data\}' is not a plain name once filled in"),
    "empty experiment": config_case({"tracking": {"experiment": ""}}, r"bad\.yaml: tracking\.experiment: '' is not a plain name"),
    "experiment leaving the store": config_case({"tracking": {"experiment": "../../etc"}}, r"bad\.yaml: tracking\.experiment: '\.\./\.\./etc' is not a plain name"),
    "unknown promotion metric": config_case({"tracking": {"promotion_metric": "r2"}}, r"bad\.yaml: tracking\.promotion_metric: Input should be 'rmse', 'mae', 'mase' or 'smape' \(got 'r2'\)"),
    "device misspelled": config_case({"model": {"device": "gpu"}}, r"bad\.yaml: model\.device: Input should be 'auto', 'cpu' or 'cuda' \(got 'gpu'\)"),
    "cuda without a GPU": config_case({"model": {"device": "cuda"}}, r"model\.device is 'cuda' but no GPU is usable"),
    "cuda without a GPU, validate": config_case({"model": {"device": "cuda"}}, r"model\.device is 'cuda' but no GPU is usable", command="validate"),
    "calendar feature unknown": config_case({"features": {"calendar": ["season"]}}, r"bad\.yaml: features\.calendar\.0: Input should be 'slot_of_day'"),
    "interval bands zero": config_case({"intervals": {"step_bands": 0}}, r"bad\.yaml: intervals\.step_bands: Input should be greater than or equal to 1"),
    "ensemble member unknown": config_case({"model": {"type": "voting", "params": {"members": [{"type": "xgboost"}, {"type": "gbm"}]}}}, r"model\.params: members\.1\.type: unknown model type 'gbm'"),
    "ensemble member a baseline": config_case({"model": {"type": "voting", "params": {"members": [{"type": "xgboost"}, {"type": "last_value"}]}}}, r"members\.1\.type: 'last_value' cannot be an ensemble member"),
    "ensemble member YAML missing": config_case({"model": {"type": "voting", "params": {"members": [{"config": "none.yaml"}, {"type": "lightgbm"}]}}}, r"bad\.yaml: model\.params\.members\.0\.config: file not found: .*none\.yaml"),
    "lag not a whole number of steps": config_case({"features": {"origin_lags": ["20min"]}}, r"bad\.yaml: \(top level\): features\.origin_lags: 20min is not a whole number of 15-minute steps"),
    "duration unreadable": config_case({"features": {"rolling_windows": ["a while"]}}, r"bad\.yaml: features\.rolling_windows: 'a while' is neither a number of steps nor a duration"),
    "split offsets against naive data": config_case(
        {"split": {key: f"{value}T00:00:00+09:00" if key.endswith("_end") else value for key, value in SMALL_SPLIT.items()}},
        r"bad\.yaml: split\.test_end=2018-03-12 00:00:00\+09:00 carries a UTC offset but the data's stamps are naive",
    ),
    # -- the task and the data YAML
    "horizon zero": Case(r"task\.yaml: horizon: must be positive, got 0", lambda f: ["train", str(training(f, {"task": str(write(f / "task.yaml", "name: t\nhorizon: 0\n"))}))], {"DATA_PATH": "{folder}/data.csv"}),
    "origin time invalid": Case(r"task\.yaml: origin_time: '25:00' is not a time of day written HH:MM", lambda f: ["train", str(training(f, {"task": str(write(f / "task.yaml", "name: t\nhorizon: 96\norigin_time: '25:00'\n"))}))]),
    "origin spacing invalid": Case(r"task\.yaml: origin_every: 'soon' is not a fixed pandas offset", lambda f: ["train", str(training(f, {"task": str(write(f / "task.yaml", "name: t\nhorizon: 96\norigin_every: soon\n"))}))]),
    "quantile level outside (0, 1)": Case(r"task\.yaml: quantile_levels: quantile levels must lie strictly between 0 and 1", lambda f: ["train", str(training(f, {"task": str(write(f / "task.yaml", "name: t\nhorizon: 96\nquantile_levels: [0.1, 1.5]\n"))}))]),
    "unknown encoding": data_case(None, r"data\.yaml: encoding: 'utf-9' is not an encoding Python knows", yaml_change=lambda t: t.replace("encoding: utf-8-sig", "encoding: utf-9")),
    "frequency invalid": data_case(None, r"data\.yaml: frequency: 'often' is not a pandas frequency", yaml_change=lambda t: t.replace("frequency: 15min", "frequency: often")),
    "target also a covariate": data_case(None, r"data\.yaml: \(top level\): the target 'Usage_kWh' cannot also be a covariate", yaml_change=lambda t: t.replace("{name: NSM,", "{name: Usage_kWh,")),
    "covariate declared twice": data_case(None, r"data\.yaml: \(top level\): covariates declared twice: \['WeekStatus'\]", yaml_change=lambda t: t.replace("{name: Day_of_week,", "{name: WeekStatus,")),
    "ahead rule unknown": data_case(None, r"data\.yaml: covariates\.5: .*ahead 'calendar:moon' is not one of", yaml_change=lambda t: t.replace('"calendar:seconds_since_midnight_end"', '"calendar:moon"')),
    "ahead on a past covariate": data_case(None, r"data\.yaml: covariates\.2: .*ahead applies to role: future only", yaml_change=lambda t: t.replace("{name: CO2(tCO2), role: past, kind: numeric}", "{name: CO2(tCO2), role: past, kind: numeric, ahead: same_slot_last_week}")),
    "sha256 malformed": data_case(None, r"data\.yaml: sha256: 'abc' is not a sha256", yaml_change=lambda t: t.replace("${DATA_SHA256-9b1cee6f9cb9cd9df2b95814ca90a9a2ff15b7f5f1fba0fae3c643e82072eacc}", "abc")),
    "data set name with a slash": data_case(None, r"data\.yaml: name: String should match pattern", yaml_change=lambda t: t.replace("name: steel_industry", "name: steel/industry")),
    "unknown time zone": data_case(None, r"data\.yaml: timezone: 'Europe/Atlantis' is not an IANA time zone", yaml_change=lambda t: t.replace("frequency: 15min", "timezone: Europe/Atlantis\nfrequency: 15min")),
    # -- the data file
    "zero-byte CSV": data_case(None, r"data\.csv: the file is empty", raw=b""),
    "header only": data_case(lambda lines: lines[:1], r"data\.csv: the file has a header but no data rows"),
    "one row": data_case(lambda lines: lines[:2], r"split\.train_end=2018-02-12 00:00:00: the training period has 1 rows"),
    "missing column": data_case(lambda lines: [",".join(line.split(",")[:-1]) for line in lines], r"data\.csv: missing columns \['Load_Type'\]"),
    "duplicated target column": data_case(lambda lines: [lines[0].replace("NSM", "Usage_kWh"), *lines[1:]], r"data\.csv: the header names a column more than once: \{'Usage_kWh': \[2, 8\]\}"),
    "unparseable stamp": data_case(lambda lines: cell(lines, 10, 0, "31/02/2018 02:30"), r"data\.csv: column 'date': row 10 \(line 11\): cannot parse '31/02/2018 02:30'"),
    "duplicate stamp": data_case(lambda lines: cell(lines, 11, 0, lines[10].split(",")[0]), r"data\.csv: column 'date': duplicate timestamp"),
    "gap too long": data_case(lambda lines: lines[:200] + lines[300:], r"data\.csv: column 'date': gap of 100 missing step\(s\)"),
    "non-numeric target": data_case(lambda lines: cell(lines, 5, 1, "n/a"), r"data\.csv: target column 'Usage_kWh': row 5 \(line 6\): non-numeric value 'n/a'"),
    "missing target": data_case(lambda lines: cell(lines, 5, 1, ""), r"data\.csv: target column 'Usage_kWh': row 5 \(line 6\): missing value"),
    "negative target": data_case(lambda lines: cell(lines, 5, 1, "-2.5"), r"data\.csv: target column 'Usage_kWh': row 5 \(line 6\): negative value -2\.5"),
    "infinite target": data_case(lambda lines: cell(lines, 5, 1, "inf"), r"data\.csv: target column 'Usage_kWh': row 5 \(line 6\): value 'inf' is infinite or beyond \+-1e\+12"),
    "minus infinite covariate": data_case(lambda lines: cell(lines, 5, 2, "-inf"), r"covariate column 'Lagging_Current_Reactive\.Power_kVarh': row 5 \(line 6\): value '-inf' is infinite"),
    "1e308": data_case(lambda lines: cell(lines, 5, 1, "1e308"), r"target column 'Usage_kWh': row 5 \(line 6\): value '1e308' is infinite or beyond"),
    "constant target": data_case(lambda lines: [lines[0], *[cell([line], 0, 1, "5.0")[0] if line else line for line in lines[1:]]], r"data\.csv: target column 'Usage_kWh' is constant \(5\) over the whole training period"),
    "pinned sha256 mismatch": data_case(None, r"data\.csv: sha256 [0-9a-f]{64} differs from the data YAML's pinned sha256 9b1cee6f", yaml_change=lambda t: t.replace("${DATA_SHA256-", "${DATA_SHA256_UNSET_HERE-")),
    "not the declared encoding": data_case(lambda lines: lines, r"data\.csv: cannot be read as utf-8-sig \(byte 0xe9", raw=csv_rows().replace(b"Weekday", "Wéekday".encode("latin-1"), 1)),
    "an ISO stamp among day-first ones": data_case(lambda lines: cell(lines, 4, 0, "2018-01-01T01:00:00+09:00"), r"data\.csv: column 'date': row 4 \(line 5\): cannot parse '2018-01-01T01:00:00\+09:00' as a timestamp \(format '%d/%m/%Y %H:%M'\)"),
    "stamps with offsets, no zone declared": data_case(
        lambda lines: [lines[0], *[with_offset(line, "+0900") for line in lines[1:]]],
        r"data\.csv: column 'date': the stamps carry UTC offsets \(e\.g\. 2018-01-01 00:15:00\+09:00\) but the data YAML declares no time zone",
        yaml_change=lambda t: t.replace('format: "%d/%m/%Y %H:%M"', 'format: "%d/%m/%Y %H:%M%z"'),
    ),
    "mixed offsets in one column": data_case(
        lambda lines: [lines[0], *[with_offset(line, "+0900" if number % 2 else "+0100") for number, line in enumerate(lines[1:])]],
        r"data\.csv: column 'date': the stamps carry UTC offsets .* declares no time zone: set `timezone:`",
        yaml_change=lambda t: t.replace('format: "%d/%m/%Y %H:%M"', 'format: "%d/%m/%Y %H:%M%z"'),
    ),
    # -- the tuning: block (energy-forecast tune): nothing runs, no study is created
    "tuning without a block": config_case(
        {"model": {"type": "catboost", "params": {"iterations": 5}}}, r"bad\.yaml: tuning: no tuning block; add one", command="tune", base="catboost.yaml"
    ),
    "tuning unknown parameter": config_case(
        {"tuning": {"search_space": {"max_leaves": {"type": "int", "low": 2, "high": 9}}}},
        r"bad\.yaml: tuning\.search_space\.max_leaves: xgboost has no parameter 'max_leaves'; valid parameters: .*max_depth", command="tune",
    ),
    "tuning bound the family refuses": config_case(
        {"tuning": {"search_space": {"subsample": {"type": "float", "low": 0.5, "high": 1.5}}}},
        r"bad\.yaml: tuning\.search_space\.subsample: 1\.5 is not a valid subsample \(subsample: Input should be less than or equal to 1\)", command="tune",
    ),
    "tuning low above high": config_case(
        {"tuning": {"search_space": {"max_depth": {"type": "int", "low": 9, "high": 3}}}},
        r"bad\.yaml: tuning\.search_space\.max_depth\.int: low \(9\) must be below high \(3\)", command="tune",
    ),
    "tuning log scale from zero": config_case(
        {"tuning": {"search_space": {"reg_alpha": {"type": "float", "low": 0, "high": 1, "log": True}}}},
        r"bad\.yaml: tuning\.search_space\.reg_alpha\.float: log: true needs low > 0", command="tune",
    ),
    "tuning unknown range type": config_case(
        {"tuning": {"search_space": {"max_depth": {"type": "uniform", "low": 3, "high": 9}}}},
        r"bad\.yaml: tuning\.search_space\.max_depth: .*'int', 'float', 'categorical'", command="tune",
    ),
    "tuning without a budget": config_case(
        {"tuning": {"trials": None, "timeout": None}}, r"bad\.yaml: tuning: give a budget: trials .* and/or timeout", command="tune",
    ),
    "tuning storage not a database URL": config_case(
        {"tuning": {"storage": "optuna.db"}}, r"bad\.yaml: tuning\.storage: 'optuna\.db' is not a database URL", command="tune",
    ),
    "tuning storage unreachable": config_case(
        {"tuning": {"storage": "postgresql+psycopg2://postgres@127.0.0.1:9/optuna"}},
        r"bad\.yaml: tuning\.storage: cannot open postgresql\+psycopg2://postgres@127\.0\.0\.1:9/optuna: .*refused", command="tune",
    ),
}


def with_offset(line: str, offset: str) -> str:
    stamp, rest = line.split(",", 1) if line else ("", "")
    return f"{stamp}{offset},{rest}" if line else line


def run_cli(arguments: list[str], env: dict[str, str], monkeypatch, capsys) -> tuple[int, str]:
    from pipelines.cli import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    return int(exited.value.code), capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_fails_before_any_work_with_one_clear_line(name, tmp_path, monkeypatch, capsys):
    case = CASES[name]
    env = {
        "DAGSTER_HOME": str(tmp_path / "dagster"), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "DATA_PATH": str(tmp_path / "data.csv"),
        "FORECAST_STORE_URL": f"sqlite:///{tmp_path / 'forecasts.db'}",
        **{key: value.replace("{folder}", str(tmp_path)) for key, value in (case.env or {}).items()},
    }
    monkeypatch.chdir(tmp_path)
    arguments = case.build(tmp_path)

    code, err = run_cli(arguments, env, monkeypatch, capsys)

    assert code == 2, err
    message = [line for line in err.splitlines() if line.startswith("error: ")]
    assert message, err

    assert re.search(case.message, err), f"expected /{case.message}/ in:\n{err}"
    assert "Traceback" not in err
    assert not (tmp_path / "mlflow.db").exists()  # not even an empty store: nothing started
    assert not (tmp_path / "dagster").exists() or not list((tmp_path / "dagster").rglob("*.db"))
    assert not (tmp_path / "forecasts.db").exists()
    assert not (tmp_path / "optuna.db").exists()  # no Optuna study either


def test_debug_adds_the_stack_trace(tmp_path, monkeypatch, capsys):
    write(tmp_path / "data.csv", csv_rows(lambda lines: cell(lines, 5, 1, "n/a")))
    path = training(tmp_path, {})
    monkeypatch.setenv(DEBUG_VARIABLE, "")  # --debug sets it in os.environ: restored (removed) after this test
    code, err = run_cli(["--debug", "train", str(path)], {"DATA_PATH": str(tmp_path / "data.csv"), "DAGSTER_HOME": str(tmp_path / "dagster")}, monkeypatch, capsys)
    assert code == 2 and "Traceback (most recent call last)" in err and "non-numeric value 'n/a'" in err


def test_a_variable_inside_a_comment_is_never_read(tmp_path, monkeypatch, capsys):
    write(tmp_path / "data.csv", csv_rows())
    path = write(tmp_path / "ok.yaml", yaml.safe_dump({"extends": str(TRAINING / "xgboost.yaml"), "split": SMALL_SPLIT}) + "# ${UNSET_IN_A_COMMENT} is only a comment\n")
    monkeypatch.setenv("DATA_PATH", str(tmp_path / "data.csv"))
    from pipelines.cli import main

    main(["validate", str(path)])
    assert capsys.readouterr().out.startswith(f"ok  {path}")


def test_validate_checks_every_file_and_names_each_bad_one(tmp_path, monkeypatch, capsys):
    """As a linter: a bad file does not hide the files after it; the command fails at the end."""
    write(tmp_path / "data.csv", csv_rows())
    bad = training(tmp_path, {"model": {"params": {"max_depht": 4}}}, name="typo.yaml")
    good = training(tmp_path, {}, name="good.yaml")
    worse = training(tmp_path, {"split": {**SMALL_SPLIT, "validation_windows": 0}}, name="windows.yaml")
    code, err = run_cli(["validate", str(bad), str(good), str(worse)], {"DATA_PATH": str(tmp_path / "data.csv")}, monkeypatch, capsys)
    assert code == 2
    assert re.search(rf"error: {re.escape(str(bad))}: .*max_depht", err)
    assert re.search(rf"error: {re.escape(str(worse))}: .*validation_windows", err)
    assert f"2 of 3 training YAMLs failed validation: {bad}, {worse}" in err
    assert "Traceback" not in err


def test_the_catalogue_is_at_least_sixty_distinct_cases():
    assert len(CASES) >= 60
