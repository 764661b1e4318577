"""Many sites: each site a dynamic partition, its forecasts and accuracy partitioned by site x day.

Active when the operations YAML has a ``sites:`` block (``SitesConfig``):

* files land per site, ``<sites.landing>/<site>/<file>.csv`` (a folder or an S3 prefix per site);
* ``new_site_data_sensor`` lists the sites with pending files. A site it has not seen is added to
  the ``sites`` dynamic partitions (``SensorResult.dynamic_partitions_requests``), and every site
  with pending files gets one ``site_ingest_job`` run for its partition, one at a time per site;
* ``site_readings[site]`` validates each pending file and appends it to the site's stored series
  ``<sites.series_folder>/<site>.csv`` (the first file starts it), or quarantines it with its reason;
* ``site_forecast[day|site]`` forecasts the site's day with the global model
  (``sites.global_model``, one model for every site: :mod:`energy_forecast.models.global_boosted`,
  or a panel ensemble of them: :mod:`energy_forecast.models.global_ensemble`);
* ``site_accuracy[day|site]`` scores that forecast against the day's actuals.

Per-site runs are independent, so the run queue runs them in parallel up to its concurrency limit.
"""

import os

import dagster as dg
import numpy as np
import pandas as pd

from energy_forecast.backtest import local_bound
from energy_forecast.config import OperationsConfig, SitesConfig
from energy_forecast.data.ahead import extend_known_future
from energy_forecast.data.loading import load_series
from energy_forecast.frames import PREDICTION, TIMESTAMP
from energy_forecast.ingest import BadDelivery, Delivery, site_landings, start_series
from energy_forecast.metrics import score
from pipelines.defs.ingest import completed_days
from pipelines.logs import library_logs_to
from pipelines.resources import Operations

SITES = dg.DynamicPartitionsDefinition(name="sites")
SITE_INGEST_JOB = "site_ingest_job"
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def _sites(operations: Operations) -> SitesConfig:
    sites = operations.config.sites
    if sites is None:
        raise dg.Failure(f"{operations.config_path}: no sites: block; site assets need one")
    return sites


@dg.asset(partitions_def=SITES, group_name="sites", kinds={"csv"},
          description="A site's stored series: its pending files validated and appended, bad ones quarantined.")
def site_readings(context: dg.AssetExecutionContext, operations: Operations):
    sites = _sites(operations)
    site = context.partition_key
    landing = site_landings(sites.landing).get(site)
    data = sites.site_data(site)
    deliveries: list[Delivery] = []
    quarantined: list[dict[str, str]] = []
    with library_logs_to(context.log):
        for name in landing.pending() if landing else []:
            try:
                deliveries.append(start_series(data, name, landing.read(name)))
            except BadDelivery as error:
                quarantined.append({"file": name, "reason": str(error), "moved_to": landing.quarantine(name, str(error))})
                context.log.warning(f"{site}/{name} quarantined: {error}")
                continue
            landing.archive(name)
    days = completed_days(deliveries)
    metadata = {
        "site": dg.MetadataValue.text(site),
        "appended": dg.MetadataValue.int(sum(d.status == "appended" for d in deliveries)),
        "quarantined": dg.MetadataValue.json(quarantined),
        "completed_days": dg.MetadataValue.json(days),
        "series": dg.MetadataValue.path(str(data.path)),
    }
    if os.path.isfile(data.path):
        frame = load_series(data).frame
        metadata |= {"rows": dg.MetadataValue.int(len(frame)), "last_stamp": dg.MetadataValue.text(str(frame.index[-1]))}
    return dg.Output({"site": site, "completed_days": days}, metadata=metadata)


site_ingest_job = dg.define_asset_job(
    SITE_INGEST_JOB, selection=dg.AssetSelection.assets(site_readings),  # partitioned by SITES, as its asset
    description="Validate and append what arrived for one site (the new-site-data sensor's job).",
)


@dg.sensor(job=site_ingest_job, minimum_interval_seconds=int(os.environ.get("NEW_DATA_SENSOR_SECONDS", "10")), default_status=dg.DefaultSensorStatus.RUNNING)
def new_site_data_sensor(context: dg.SensorEvaluationContext, operations: Operations):
    """Add a partition for every site seen for the first time; one ingest run per site with pending files."""
    sites = operations.config.sites
    if sites is None:
        return dg.SkipReason("the operations YAML has no sites: block")
    pending = {site: names for site, landing in site_landings(sites.landing).items() if (names := landing.pending())}
    if not pending:
        return dg.SkipReason(f"nothing new under {sites.landing}")
    known = set(context.instance.get_dynamic_partitions(SITES.name))
    new = sorted(set(pending) - known)
    requests = []
    for site, names in sorted(pending.items()):
        active = context.instance.get_run_records(
            dg.RunsFilter(job_name=SITE_INGEST_JOB, statuses=ACTIVE, tags={"dagster/partition": site}), limit=1
        ) if site in known else []
        if active:
            context.log.info(f"{site}: {len(names)} file(s) wait for run {active[0].dagster_run.run_id}")
            continue
        requests.append(dg.RunRequest(partition_key=site, tags={"energy_forecast/files": ",".join(names)[:250]}))
    if new:
        context.log.info(f"new sites: {new}")
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=[SITES.build_add_request(new)] if new else [])


def site_day_partitions(sites: SitesConfig, timezone: str) -> dg.MultiPartitionsDefinition:
    days = dg.DailyPartitionsDefinition(start_date=sites.first_forecast_day.strftime("%Y-%m-%d"), timezone=timezone)
    return dg.MultiPartitionsDefinition({"day": days, "site": SITES})


def _site_frame(sites: SitesConfig, site: str, day: pd.Timestamp, horizon: int) -> tuple[pd.DataFrame, pd.Timestamp]:
    data = sites.site_data(site)
    frame = load_series(data).frame
    origin = local_bound(day, frame.index, "day")
    end = origin + (horizon - 1) * data.step
    if frame.index[-1] < end:
        frame, _ = extend_known_future(frame, data, end)
    return frame, origin


def site_definitions(operations: OperationsConfig) -> dict[str, list]:
    """The site assets, jobs and sensor; nothing when the operations YAML has no ``sites:``."""
    if operations.sites is None:
        return {"assets": [], "jobs": [], "sensors": []}
    partitions = site_day_partitions(operations.sites, operations.timezone or "UTC")
    by_site = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="site")

    @dg.asset(partitions_def=partitions, deps=[dg.AssetDep(site_readings, partition_mapping=by_site)], group_name="sites",
              description="The global model's forecast of one site's day, made at the day's 00:00.")
    def site_forecast(context: dg.AssetExecutionContext, operations: Operations) -> pd.DataFrame:
        from energy_forecast.models.global_ensemble import load_global_model

        sites = _sites(operations)
        keys = context.partition_key.keys_by_dimension
        site, day = keys["site"], pd.Timestamp(keys["day"])
        if sites.global_model is None:
            raise dg.Failure("sites.global_model is not set: train and save a global model first")
        with library_logs_to(context.log):
            model = load_global_model(sites.global_model)
            frame, origin = _site_frame(sites, site, day, model.problem.horizon)
            rows = model.predict({site: frame}, {site: pd.DatetimeIndex([origin])})
        context.add_output_metadata({"site": site, "origin": str(origin), "mean": float(rows[PREDICTION].mean()), "rows": len(rows)})
        return rows

    @dg.asset(partitions_def=partitions, group_name="sites",
              ins={"site_forecast": dg.AssetIn()}, deps=[dg.AssetDep(site_readings, partition_mapping=by_site)],
              description="One site's day: its forecast against the actuals.")
    def site_accuracy(context: dg.AssetExecutionContext, operations: Operations, site_forecast: pd.DataFrame) -> dict:
        sites = _sites(operations)
        site = context.partition_key.keys_by_dimension["site"]
        actual = load_series(sites.site_data(site)).target.reindex(pd.DatetimeIndex(site_forecast[TIMESTAMP]))
        if actual.isna().any():
            raise dg.Failure(f"{site}: {int(actual.isna().sum())} of the day's actuals are not stored yet")
        metrics = score(actual.to_numpy(), site_forecast[PREDICTION].to_numpy(), scale=1.0)
        result = {"site": site, **{k: v for k, v in metrics.items() if k != "mase"}}
        context.add_output_metadata({k: float(v) for k, v in result.items() if isinstance(v, float) and np.isfinite(v)})
        return result

    forecast_job = dg.define_asset_job("site_forecast_job", selection=dg.AssetSelection.assets(site_forecast, site_accuracy),
                                       description="Forecast (and score) one site's day.")
    return {"assets": [site_readings, site_forecast, site_accuracy], "jobs": [site_ingest_job, forecast_job], "sensors": [new_site_data_sensor]}
