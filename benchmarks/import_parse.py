"""Time the front half of an import: read a CSV and parse every row, without a database.

Generates a generic member list (姓名, 手机号, 性别, 生日, 城市) once, then times reading alone
and reading + parsing (siyu.imports.readers / presets / rows), and reports rows/s and peak RSS.

    .venv/bin/python benchmarks/import_parse.py                    # 1,000,000 rows in /tmp
    .venv/bin/python benchmarks/import_parse.py --rows 200000 --encoding gbk
"""

import argparse
import os
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥玲芬燕"
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "苏州"]
PREFIXES = ["135", "136", "138", "139", "150", "151", "158", "177", "186", "188", "199"]


def generate(path: Path, rows: int, encoding: str, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding=encoding, newline="") as f:
        f.write("姓名,手机号,性别,生日,城市\r\n")
        batch = []
        for i in range(rows):
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))
            phone = f"{rng.choice(PREFIXES)}{rng.randrange(10**8):08d}"
            if i % 50 == 0:
                phone = phone[:3] + "****" + phone[7:]  # platforms mask some numbers
            year, month, day = rng.randint(1960, 2005), rng.randint(1, 12), rng.randint(1, 28)
            birthday = f"{year}-{month:02d}-{day:02d}"
            gender = "男" if rng.random() < 0.5 else "女"
            batch.append(f"{name},{phone},{gender},{birthday},{rng.choice(CITIES)}\r\n")
            if len(batch) == 10000:
                f.write("".join(batch))
                batch.clear()
        f.write("".join(batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--path", type=Path, default=None)
    parser.add_argument("--encoding", default="utf-8", help="of the generated file")
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    path = args.path or Path(f"/tmp/siyu-members-{args.rows}-{args.encoding}.csv")

    import django

    django.setup()
    from siyu.imports.presets import build_mapping
    from siyu.imports.readers import open_table
    from siyu.imports.rows import parse_customer

    if args.regenerate or not path.exists():
        started = time.perf_counter()
        generate(path, args.rows, args.encoding)
        print(
            f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - started:.1f}s"
        )

    started = time.perf_counter()
    with open_table(path) as table:
        count = sum(1 for _ in table.rows())
    read = time.perf_counter() - started
    print(
        f"read only     {count:>9,} rows {read:6.2f}s {count / read:>10,.0f} rows/s "
        f"({table.encoding}, {table.delimiter!r})"
    )

    started = time.perf_counter()
    valid = invalid = masked = 0
    with open_table(path) as table:
        mapping = build_mapping(table.header, kind="customer")
        for number, values in table.rows(include_header=mapping.first_row_is_data):
            row = parse_customer(number, values, mapping)
            if row.errors:
                invalid += 1
            else:
                valid += 1
                masked += row.phone_display is not None
    total = time.perf_counter() - started
    rows = valid + invalid
    print(
        f"read + parse  {rows:>9,} rows {total:6.2f}s {rows / total:>10,.0f} rows/s "
        f"(preset {mapping.preset}; {valid:,} valid of which {masked:,} masked, "
        f"{invalid:,} invalid)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
