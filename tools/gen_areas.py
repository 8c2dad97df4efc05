"""One-off generator of content/areas/<code>-<slug>.json (administrative units).

Run with Python >= 3.12 in a throwaway venv that has the PyPI package
``vietnam-provinces`` installed (GPL-3.0; it is NOT a dependency of this
project, only this generator imports it):

    python3.12 -m venv /tmp/genareas-venv
    /tmp/genareas-venv/bin/pip install vietnam-provinces
    /tmp/genareas-venv/bin/python tools/gen_areas.py [PROVINCE_CODE]   # default 19

It writes content/areas/<code>-<slug>.json: the province's current (since
1 July 2025) communes/wards, plus every pre-2025 commune-level unit that is a
source (wholly or partly) of one of them, with its old district and province
and its successors (current codes in this province).
"""

import json
import sys
import unicodedata
from pathlib import Path

import vietnam_provinces as vp
from vietnam_provinces import Province, ProvinceCode, Ward
from vietnam_provinces import legacy

KIND = {  # division type value -> kind in our schema
    "xã": "xa", "phường": "phuong", "đặc khu": "dac_khu", "thị trấn": "thi_tran",
    "huyện": "huyen", "thành phố": "thanh_pho", "thị xã": "thi_xa", "quận": "quan",
}


def nfc(s: str) -> str:
    # The package spells one old city "Thành Phố"; the registry writes "Thành phố".
    return unicodedata.normalize("NFC", s).replace("Thành Phố ", "Thành phố ")


def code(n: int, width: int) -> str:
    return f"{int(n):0{width}d}"


def main(prov: int = 19) -> Path:
    province = Province.from_code(ProvinceCode(prov))
    wards = sorted(Ward.iter_by_province(ProvinceCode(prov)), key=lambda w: int(w.code))
    communes, successors, old_units = [], {}, {}
    for w in wards:
        communes.append({"code": code(w.code, 5), "name": nfc(w.name),
                         "kind": KIND[w.division_type.value]})
        for old in w.get_legacy_sources():
            old_units[int(old.code)] = old
            successors.setdefault(int(old.code), set()).add(code(w.code, 5))

    districts, provinces, legacy_communes = {}, {}, []
    for oc in sorted(old_units):
        old = old_units[oc]
        d = legacy.District.from_code(old.district_code)
        p = legacy.Province.from_code(d.province_code)
        districts[int(d.code)] = {"code": code(d.code, 3), "name": nfc(d.name),
                                  "kind": KIND[d.division_type.value],
                                  "province_code": code(p.code, 2)}
        provinces[int(p.code)] = {"code": code(p.code, 2), "name": nfc(p.name)}
        legacy_communes.append({"code": code(oc, 5), "name": nfc(old.name),
                                "kind": KIND[old.division_type.value],
                                "district_code": code(d.code, 3),
                                "successors": sorted(successors[oc])})

    data = {
        "source": "Tổng cục Thống kê / Cục Thống kê — Danh mục đơn vị hành chính Việt Nam "
                  f"(via PyPI vietnam-provinces {vp.__version__}, "
                  f"data as of {getattr(vp, '__data_version__', 'unknown')})",
        "generated_by": "tools/gen_areas.py",
        "province": {"code": code(province.code, 2), "name": nfc(province.name)},
        "communes": communes,
        "legacy": {
            "era": "2024",
            "provinces": [provinces[k] for k in sorted(provinces)],
            "districts": [districts[k] for k in sorted(districts)],
            "communes": legacy_communes,
        },
    }
    slug = province.codename.removeprefix("tinh_").removeprefix("thanh_pho_").replace("_", "-")
    out = Path(__file__).resolve().parent.parent / "content" / "areas" / f"{code(prov, 2)}-{slug}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 19))
