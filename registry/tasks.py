"""Background upkeep of the registry, on procrastinate's PostgreSQL queue."""

from procrastinate.contrib.django import app

from registry import statistics


@app.periodic(cron="*/10 * * * *", periodic_id="compact-tally")
@app.task(name="registry.compact_tally", queue="upkeep", pass_context=False)
def compact_tally(timestamp: int) -> int:
    """Fold the parcel tally's appended rows together (every ten minutes).

    Figures are the same before and after; reading them stays a scan of a few
    hundred rows however many status changes a busy day brings.
    """
    return statistics.tally_compact()
