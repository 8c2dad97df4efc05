"""Open data: each dataset as CSV and JSON with its dictionary, and the reports as Open311
GeoReport v2 (`/open311/v2/services.json`, `/open311/v2/requests.json`).

Nothing here names a person: contributions are summed per campaign and village, poll results
are counts once a poll has closed (villages under five voters merged, as in the chat), and
reports carry no reporter, no text of theirs, no photo and no place beyond the village.
Rows are kept DATA_TTL seconds: at most one entry per dataset.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.app.services import Services
from bot.content.reference import CURRENT_ERA
from bot.domain.i18n import N_, _, use_locale
from bot.storage.polls import Poll
from bot.storage.reports import CATEGORIES, OPEN
from bot.web.projects import project_rows
from bot.web.site import DATA_TTL, Site, language
from handlers.reports import CATEGORY_NAMES

LICENCE = "CC BY 4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
Rows = list[dict[str, Any]]
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string | integer | number | boolean | date | datetime
    about: str  # N_: what it holds


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str  # N_
    about: str  # N_
    columns: tuple[Column, ...]
    rows: Callable[[Site, Services], Awaitable[Rows]]


def _c(name: str, type_: str, about: str) -> Column:
    return Column(name, type_, about)


COMMUNE = _c("commune_code", "string", N_("Mã xã (mã đơn vị hành chính)"))
SAMPLE = _c("is_sample", "boolean", N_("Dữ liệu mẫu, không phải số liệu chính thức"))
SET = _c("set_id", "string", N_("Mã bộ tiêu chí"))
PROJECT_STATES = N_(
    "Trạng thái: preparing (chuẩn bị), building (đang thi công), done (hoàn thành),"
    " handed_over (đã bàn giao)"
)


async def _communes(site: Site, services: Services) -> Rows:
    ref = services.reference
    return [
        {"era": CURRENT_ERA, "code": c.code, "name": c.name, "kind": c.kind, "successor_of": ""}
        for c in ref.communes.values()
    ] + [
        {
            "era": "2024",
            "code": old.code,
            "name": old.name,
            "kind": old.level,
            "successor_of": " ".join(old.successors),
        }
        for old in ref.legacy
    ]


async def _criteria(site: Site, services: Services) -> Rows:
    return [
        {
            "set_id": s.id,
            "set_name": s.name.get("vi", ""),
            "legal_basis": s.legal_basis.get("vi", ""),
            "in_force_from": s.in_force_from,
            "in_force_until": s.in_force_until,
            "criterion": c.number,
            "name_vi": c.name.get("vi", ""),
            "name_en": c.name.get("en", ""),
        }
        for s in services.reference.criteria_sets
        for c in s.criteria
    ]


async def _statuses(site: Site, services: Services) -> Rows:
    public = site.public(services)
    rows: Rows = [
        {
            "commune_code": r.commune_code,
            "set_id": r.set_id,
            "criterion": r.criterion_number,
            "indicator": r.indicator_code,
            "met": r.met,
            "value": r.value or "",
            "title": "",
            "assessed_on": r.assessed_on,
            "published_by": r.published_by,
            "source": r.source,
            "is_sample": r.is_sample,
        }
        for r in await public.status_history()
    ]
    rows += [
        {
            "commune_code": t.commune_code,
            "set_id": t.set_id,
            "criterion": None,
            "indicator": "",
            "met": None,
            "value": "",
            "title": t.title,
            "assessed_on": t.decided_on,
            "published_by": t.published_by,
            "source": t.source,
            "is_sample": t.is_sample,
        }
        for t in await public.title_history()
    ]
    return rows


async def _campaigns(site: Site, services: Services) -> Rows:
    rows = []
    for code in services.reference.communes:
        for c in await services.campaigns.in_commune(code):
            rows.append(
                {
                    "campaign_id": c.id,
                    "slug": c.slug,
                    "name": c.name,
                    "commune_code": c.commune_code,
                    "villages": "; ".join(c.villages),
                    "kinds": " ".join(c.kinds),
                    "target_money": c.targets.get("money"),
                    "target_half_workdays": c.targets.get("workdays"),
                    "target_land_m2": c.targets.get("land"),
                    "starts_on": c.starts_on,
                    "ends_on": c.ends_on,
                    "status": c.status,
                    "source": c.source,
                    "is_sample": c.is_sample,
                }
            )
    return sorted(rows, key=lambda r: r["campaign_id"])


async def _gifts(site: Site, services: Services) -> Rows:
    return [
        {
            "campaign_id": g.campaign_id,
            "village": g.village or "",
            "kind": g.kind,
            "unit": g.unit or "",
            "material": g.description or "" if g.kind == "materials" else "",
            "amount": g.amount,
            "households": g.households,
        }
        for g in await site.public(services).gifts_by_village()
    ]


async def _projects(site: Site, services: Services) -> Rows:
    return (await project_rows(services, site.photos(services)))[0]


async def _project_updates(site: Site, services: Services) -> Rows:
    return (await project_rows(services, site.photos(services)))[1]


def _group_name(services: Services, poll: Poll, code: str | None) -> str:
    """A group's name: its village's; for a poll of the whole province, its commune's."""
    if code is None:
        return "khác"
    found = services.areas.get(code) if poll.whole_province else None
    return found.name if found is not None else code


async def _polls(site: Site, services: Services) -> Rows:
    rows = []
    for poll, results in await services.polls.export(None):
        if poll.status != "closed":
            continue  # results are public once the poll has closed
        groups = [
            ("", results.counts, results.voters),
            *((_group_name(services, poll, g.village), g.counts, g.voters) for g in results.groups),
        ]
        for village, counts, voters in groups:
            asked = zip(poll.questions, results.of(poll, counts), strict=True)
            for number, (question, counted) in enumerate(asked, 1):
                if question.kind == "text":
                    continue  # the words people typed are read by officials only
                for position, (option, votes) in enumerate(
                    zip(question.options, counted, strict=True)
                ):
                    rows.append(
                        {
                            "poll_id": poll.id,
                            "commune_code": poll.commune_code,
                            "poll_village": poll.village or "",
                            "question_number": number,
                            "question": question.text,
                            "closes_at": poll.closes_at,
                            "voters": voters,
                            "option": position + 1,
                            "option_text": option,
                            "group": village,
                            "votes": votes,
                        }
                    )
    return rows


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def _requests(site: Site, services: Services) -> Rows:
    with use_locale("vi"):
        names = {k: _(v) for k, v in CATEGORY_NAMES.items()}
    return [
        {
            "service_request_id": r.ref,
            "status": "open" if r.state in OPEN else "closed",
            "status_notes": r.answer or "",
            "service_code": r.category,
            "service_name": names.get(r.category, names["other"]),
            "agency_responsible": services.reference.communes[r.commune_code].name
            if r.commune_code in services.reference.communes
            else r.commune_code,
            "address": r.village or "",
            "requested_datetime": _iso(r.created_at),
            "updated_datetime": _iso(r.updated_at),
        }
        for r in await site.public(services).reports()
    ]


DATASETS = (
    Dataset(
        "xa",
        N_("Xã và đơn vị cũ"),
        N_("Các xã hiện nay (2025) và các xã, huyện trước sáp nhập, với xã kế thừa."),
        (
            _c("era", "string", N_("Thời kỳ: 2025 (hiện nay) hoặc 2024 (trước sáp nhập)")),
            _c("code", "string", N_("Mã đơn vị")),
            _c("name", "string", N_("Tên đơn vị")),
            _c("kind", "string", N_("Loại: xa, phuong, dac_khu; đơn vị cũ: commune, district")),
            _c("successor_of", "string", N_("Đơn vị cũ: mã các xã hiện nay kế thừa nó")),
        ),
        _communes,
    ),
    Dataset(
        "tieu-chi",
        N_("Bộ tiêu chí"),
        N_("Các bộ tiêu chí nông thôn mới, căn cứ pháp lý và từng tiêu chí."),
        (
            SET,
            _c("set_name", "string", N_("Tên bộ tiêu chí")),
            _c("legal_basis", "string", N_("Căn cứ pháp lý")),
            _c("in_force_from", "date", N_("Áp dụng từ ngày")),
            _c("in_force_until", "date", N_("Áp dụng đến ngày (trống: còn hiệu lực)")),
            _c("criterion", "integer", N_("Số tiêu chí")),
            _c("name_vi", "string", N_("Tên tiêu chí (tiếng Việt)")),
            _c("name_en", "string", N_("Tên tiêu chí (tiếng Anh)")),
        ),
        _criteria,
    ),
    Dataset(
        "tinh-trang",
        N_("Kết quả đánh giá tiêu chí"),
        N_("Mọi lần đánh giá tiêu chí và công nhận danh hiệu của từng xã, cũ nhất trước."),
        (
            COMMUNE,
            SET,
            _c("criterion", "integer", N_("Số tiêu chí (trống: dòng danh hiệu)")),
            _c("indicator", "string", N_("Mã chỉ tiêu (trống: cả tiêu chí)")),
            _c("met", "boolean", N_("Đạt hay không")),
            _c("value", "string", N_("Số liệu như đã công bố")),
            _c("title", "string", N_("Danh hiệu được công nhận (dòng danh hiệu)")),
            _c("assessed_on", "date", N_("Ngày đánh giá hoặc công nhận")),
            _c("published_by", "string", N_("Đơn vị công bố")),
            _c("source", "string", N_("Văn bản nguồn")),
            SAMPLE,
        ),
        _statuses,
    ),
    Dataset(
        "phong-trao",
        N_("Phong trào, cuộc vận động"),
        N_("Các cuộc vận động của xã, mục tiêu và thời gian."),
        (
            _c("campaign_id", "integer", N_("Mã cuộc vận động")),
            _c("slug", "string", N_("Tên ngắn")),
            _c("name", "string", N_("Tên cuộc vận động")),
            COMMUNE,
            _c("villages", "string", N_("Các thôn (trống: cả xã)")),
            _c("kinds", "string", N_("Loại đóng góp nhận: workdays, land, money, materials")),
            _c("target_money", "integer", N_("Mục tiêu tiền (đồng)")),
            _c("target_half_workdays", "integer", N_("Mục tiêu ngày công (tính theo nửa ngày)")),
            _c("target_land_m2", "integer", N_("Mục tiêu đất (m²)")),
            _c("starts_on", "date", N_("Ngày bắt đầu")),
            _c("ends_on", "date", N_("Ngày kết thúc")),
            _c("status", "string", N_("open: đang nhận; closed: đã đóng")),
            _c("source", "string", N_("Nguồn: chat hoặc tệp nội dung")),
            SAMPLE,
        ),
        _campaigns,
    ),
    Dataset(
        "dong-gop",
        N_("Đóng góp đã xác nhận"),
        N_("Tổng đóng góp đã được cán bộ xác nhận, theo cuộc vận động và thôn; không theo người."),
        (
            _c("campaign_id", "integer", N_("Mã cuộc vận động")),
            _c("village", "string", N_("Thôn (trống: không rõ)")),
            _c("kind", "string", N_("Loại: workdays, land, money, materials")),
            _c("unit", "string", N_("Đơn vị của vật liệu")),
            _c("material", "string", N_("Tên vật liệu")),
            _c("amount", "integer", N_("Tổng: đồng, m², nửa ngày công, hoặc số đơn vị vật liệu")),
            _c("households", "integer", N_("Số hộ đã góp")),
        ),
        _gifts,
    ),
    Dataset(
        "cong-trinh",
        N_("Công trình"),
        N_("Các công trình nhân dân góp sức xây dựng, tiến độ và kinh phí."),
        (
            _c("project_id", "integer", N_("Mã công trình")),
            _c("slug", "string", N_("Tên ngắn")),
            _c("name", "string", N_("Tên công trình")),
            COMMUNE,
            _c("village", "string", N_("Thôn (trống: cả xã)")),
            _c("campaigns", "string", N_("Tên ngắn các cuộc vận động góp cho công trình")),
            _c("budget_state", "integer", N_("Kinh phí ngân sách nhà nước (đồng)")),
            _c("budget_people", "integer", N_("Kinh phí nhân dân đóng góp (đồng)")),
            _c("budget_enterprises", "integer", N_("Kinh phí doanh nghiệp (đồng)")),
            _c("starts_on", "date", N_("Ngày khởi công")),
            _c("ends_on", "date", N_("Ngày dự kiến xong")),
            _c("status", "string", PROJECT_STATES),
            _c("progress", "integer", N_("Tiến độ (%)")),
            _c("source", "string", N_("Nguồn: chat hoặc tệp nội dung")),
            SAMPLE,
        ),
        _projects,
    ),
    Dataset(
        "cong-trinh-cap-nhat",
        N_("Cập nhật tiến độ công trình"),
        N_("Các lần cập nhật tiến độ của từng công trình."),
        (
            _c("project_id", "integer", N_("Mã công trình")),
            _c("at", "datetime", N_("Thời điểm cập nhật")),
            _c("status", "string", PROJECT_STATES),
            _c("progress", "integer", N_("Tiến độ (%)")),
            _c("note", "string", N_("Ghi chú của cán bộ xã")),
            _c("has_photo", "boolean", N_("Có ảnh (xem trong Chung Sức)")),
            _c("photo_url", "string", N_("Đường dẫn ảnh trên trang; trống nếu chỉ xem trong chat")),
        ),
        _project_updates,
    ),
    Dataset(
        "bieu-quyet",
        N_("Kết quả biểu quyết"),
        N_("Kết quả các cuộc biểu quyết đã kết thúc: số phiếu mỗi phương án, theo thôn."),
        (
            _c("poll_id", "integer", N_("Mã cuộc biểu quyết")),
            COMMUNE,
            _c(
                "poll_village",
                "string",
                N_("Thôn được hỏi (trống: cả xã; cuộc toàn tỉnh: commune_code là mã tỉnh)"),
            ),
            _c("question_number", "integer", N_("Số thứ tự câu hỏi trong cuộc biểu quyết")),
            _c("question", "string", N_("Câu hỏi")),
            _c("closes_at", "datetime", N_("Thời điểm kết thúc")),
            _c("voters", "integer", N_("Số người đã bỏ phiếu trong nhóm")),
            _c("option", "integer", N_("Số thứ tự phương án")),
            _c("option_text", "string", N_("Phương án")),
            _c(
                "group",
                "string",
                N_("Nhóm: trống là tất cả; thôn (xã, với cuộc toàn tỉnh); khác: nhóm dưới 5 phiếu"),
            ),
            _c("votes", "integer", N_("Số phiếu")),
        ),
        _polls,
    ),
    Dataset(
        "phan-anh",
        N_("Phản ánh của người dân"),
        N_(
            "Các phản ánh và trả lời của xã, dạng Open311 GeoReport v2; không có thông tin cá nhân."
        ),
        (
            _c("service_request_id", "string", N_("Mã phản ánh")),
            _c("status", "string", N_("open: đang xử lý; closed: đã đóng")),
            _c("status_notes", "string", N_("Trả lời của xã")),
            _c("service_code", "string", N_("Mã lĩnh vực")),
            _c("service_name", "string", N_("Lĩnh vực")),
            _c("agency_responsible", "string", N_("Xã tiếp nhận")),
            _c("address", "string", N_("Thôn")),
            _c("requested_datetime", "datetime", N_("Thời điểm gửi")),
            _c("updated_datetime", "datetime", N_("Thời điểm cập nhật")),
        ),
        _requests,
    ),
)
BY_NAME = {d.name: d for d in DATASETS}


async def rows_of(site: Site, services: Services, dataset: Dataset) -> Rows:
    """The dataset's rows, kept DATA_TTL seconds by the site."""
    hit: Rows | None = site.data.get(dataset.name)
    if hit is None:
        hit = await dataset.rows(site, services)
        site.data.put(dataset.name, hit)
    return hit


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def as_csv(dataset: Dataset, rows: Rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in dataset.columns])
    for row in rows:
        cells = [_cell(row[c.name]) for c in dataset.columns]
        writer.writerow(
            ["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in cells]
        )
    return out.getvalue()


def as_json(dataset: Dataset, rows: Rows) -> list[dict[str, Any]]:
    return [{c.name: _cell(row[c.name]) for c in dataset.columns} for row in rows]


def index(site: Site) -> Handler:
    async def page(request: Request) -> Response:
        """The datasets, each with its dictionary, formats and licence."""
        services = site.services(request)

        async def make() -> Response:
            return site.render(
                request,
                "data.html",
                province=services.reference.province_name,
                datasets=DATASETS,
                licence=LICENCE,
                licence_url=LICENCE_URL,
                categories=CATEGORIES,
            )

        return await site.cached(request, ("data",), make)

    return page


def dataset(site: Site) -> Handler:
    async def download(request: Request) -> Response:
        """One dataset as CSV or JSON."""
        found = BY_NAME.get(request.path_params["name"])
        fmt = request.path_params["fmt"]
        if found is None or fmt not in ("csv", "json"):
            return site.not_found(request, N_("Không có bộ dữ liệu này."))
        rows = await rows_of(site, site.services(request), found)
        headers = {"Cache-Control": f"public, max-age={int(DATA_TTL)}"}
        if fmt == "json":
            return JSONResponse(as_json(found, rows), headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="{found.name}.csv"'
        return Response(as_csv(found, rows), media_type="text/csv; charset=utf-8", headers=headers)

    return download


def services_json(site: Site) -> Handler:
    async def answer(request: Request) -> Response:
        """GeoReport v2 service list: the report categories."""
        with use_locale(language(request)):
            services = [
                {
                    "service_code": code,
                    "service_name": _(CATEGORY_NAMES[code]),
                    "description": _(CATEGORY_NAMES[code]),
                    "metadata": False,
                    "type": "realtime",
                    "keywords": "",
                    "group": "",
                }
                for code in CATEGORIES
            ]
        return JSONResponse(services)

    return answer


def requests_json(site: Site) -> Handler:
    async def answer(request: Request) -> Response:
        """GeoReport v2 requests, filtered by status, service_code and dates as the spec says."""
        rows = await rows_of(site, site.services(request), BY_NAME["phan-anh"])
        wanted = request.query_params
        status, codes = wanted.get("status"), wanted.get("service_code")
        start, end = wanted.get("start_date", ""), wanted.get("end_date", "")
        picked = [
            r
            for r in rows
            if (not status or r["status"] in status.split(","))
            and (not codes or r["service_code"] in codes.split(","))
            and (not start or _normal(r["requested_datetime"]) >= _normal(start))
            and (not end or _normal(r["requested_datetime"]) <= _normal(end))
        ]
        return Response(
            json.dumps(picked, ensure_ascii=False), media_type="application/json; charset=utf-8"
        )

    return answer


def _normal(moment: str) -> str:
    """An ISO 8601 moment as comparable text in UTC (no zone: UTC); a bad one as given."""
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return moment
    return _iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
