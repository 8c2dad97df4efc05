"""Open data: every dataset parses as CSV and JSON, matches its dictionary, and holds no personal
data; reports also as Open311 GeoReport v2."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime

import pytest
from starlette.testclient import TestClient

from bot.storage.reports import CATEGORIES
from bot.web.open_data import DATASETS, Column
from tests import public_data
from tests.public_data import ANSWER, COMMUNE, MONTHS, QUESTION, SECRETS

seeded, client = public_data.seeded, public_data.client  # the shared fixtures

NAMES = [d.name for d in DATASETS]


def fits(column: Column, value: object) -> bool:
    """Whether a JSON value is of the column's declared type (None: an empty cell)."""
    if value is None:
        return True
    if column.type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if column.type == "boolean":
        return isinstance(value, bool)
    if column.type == "date":
        return isinstance(value, str) and bool(date.fromisoformat(value))
    if column.type == "datetime":
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    return isinstance(value, str)


@pytest.mark.parametrize("name", NAMES)
def test_each_dataset_parses_and_matches_its_dictionary(client: TestClient, name: str) -> None:
    dataset = next(d for d in DATASETS if d.name == name)
    columns = [c.name for c in dataset.columns]
    as_json = client.get(f"/du-lieu/{name}.json")
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    records = as_json.json()
    as_csv = client.get(f"/du-lieu/{name}.csv")
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    table = list(csv.reader(io.StringIO(as_csv.text)))
    assert table[0] == columns
    assert len(table) - 1 == len(records)
    for record, row in zip(records, table[1:], strict=True):
        assert list(record) == columns
        for column in dataset.columns:
            assert fits(column, record[column.name]), (column, record[column.name])
        cells = [
            "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
            for v in record.values()
        ]
        assert row == cells
    assert records, name


def test_the_dictionary_page_lists_every_dataset_with_a_licence(client: TestClient) -> None:
    page = client.get("/du-lieu?lang=en").text
    assert "CC BY 4.0" in page and "Data dictionary" in page
    for dataset in DATASETS:
        assert f'href="/du-lieu/{dataset.name}.csv"' in page
        for column in dataset.columns:
            assert f"<code>{column.name}</code>" in page


def test_no_personal_data_in_any_dataset_or_page(client: TestClient) -> None:
    answers = [client.get(f"/du-lieu/{n}.{fmt}").text for n in NAMES for fmt in ("csv", "json")]
    answers += [
        client.get(p).text for p in ("/open311/v2/requests.json", "/open311/v2/services.json")
    ]
    answers += [
        client.get(p).text for p in ("/", f"/xa/{COMMUNE}", "/du-lieu", f"/xa/{COMMUNE}?lang=en")
    ]
    everything = "\n".join(answers)
    # JSON escapes nothing here (ensure_ascii off), but look for the escaped form too.
    everything += json.dumps(everything)
    for secret in SECRETS:
        assert secret not in everything, secret
    assert "photo-file-id-1" not in everything and "22.15" not in everything


def test_contributions_are_summed_per_campaign_and_village(client: TestClient) -> None:
    rows = client.get("/du-lieu/dong-gop.json").json()
    money = [r for r in rows if r["village"] == "Nà Làng" and r["kind"] == "money"]
    # The sample's two gifts (2.000.000 and 500.000) and the test's two of 300.000 each.
    assert money == [
        {
            "campaign_id": money[0]["campaign_id"],
            "village": "Nà Làng",
            "kind": "money",
            "unit": "",
            "material": "",
            "amount": 3_100_000,
            "households": 4,
        }
    ]


def test_poll_results_only_once_closed_with_villages(client: TestClient) -> None:
    rows = client.get("/du-lieu/bieu-quyet.json").json()
    assert {r["question"] for r in rows} == {QUESTION, MONTHS}  # never the one in words
    months = {
        r["option_text"]: r["votes"] for r in rows if r["question"] == MONTHS and r["group"] == ""
    }
    assert months == {"Tháng 1": 3, "Tháng 2": 3, "Tháng 3": 3}
    assert {r["voters"] for r in rows if r["question"] == MONTHS and r["group"] == ""} == {6}
    rows = [r for r in rows if r["question"] == QUESTION]
    whole = {r["option_text"]: r["votes"] for r in rows if r["group"] == ""}
    assert whole == {"Đường": 6, "Nhà văn hóa": 6}
    villages = {(r["group"], r["option_text"]): r["votes"] for r in rows if r["group"]}
    assert villages[("Nà Làng", "Đường")] + villages[("Bản Cuôn", "Đường")] == 6


def test_open311_requests_have_the_georeport_shape(client: TestClient) -> None:
    requests = client.get("/open311/v2/requests.json").json()
    assert len(requests) == 2  # the third, marked spam, is not public
    assert "security" not in {r["service_code"] for r in requests}
    for r in requests:
        assert r["status"] in ("open", "closed")
        assert r["service_request_id"].startswith("PA-")
        assert r["service_code"] in CATEGORIES
        for moment in (r["requested_datetime"], r["updated_datetime"]):
            assert datetime.fromisoformat(moment).tzinfo is not None
        assert {"service_name", "status_notes", "agency_responsible"} <= set(r)
        assert not {"description", "lat", "long", "media_url", "email", "phone"} & set(r)
    closed = client.get("/open311/v2/requests.json", params={"status": "closed"}).json()
    assert [(r["service_code"], r["status_notes"]) for r in closed] == [("roads", ANSWER)]
    water = client.get("/open311/v2/requests.json", params={"service_code": "water"}).json()
    assert [r["status"] for r in water] == ["open"]
    later = client.get("/open311/v2/requests.json", params={"start_date": "2031-01-01T00:00:00Z"})
    assert later.json() == []


def test_open311_services_are_the_report_categories(client: TestClient) -> None:
    services = client.get("/open311/v2/services.json", params={"lang": "en"}).json()
    assert [s["service_code"] for s in services] == list(CATEGORIES)
    assert all(s["type"] == "realtime" and s["metadata"] is False for s in services)
    assert services[0]["service_name"] == "Roads"


def test_an_unknown_dataset_is_404(client: TestClient) -> None:
    assert client.get("/du-lieu/nguoi-dan.csv").status_code == 404
    assert client.get("/du-lieu/xa.xml").status_code == 404
