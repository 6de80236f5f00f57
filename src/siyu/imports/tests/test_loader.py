"""The loader's in-memory parts: grouping rows into people, reading ahead in a thread."""

import itertools
import random
import threading
from types import SimpleNamespace

import pytest

from siyu.imports import loader
from siyu.imports.loader import _group, group_rows, read_ahead
from siyu.imports.presets import build_mapping
from siyu.imports.readers import ImportFileError
from siyu.imports.rows import parse_customer


def reference_groups(rows):
    """Rows sharing any identifier, transitively: (row indexes, keys), by first row."""
    parent = list(range(len(rows)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    owner = {}
    for index, row in enumerate(rows):
        for key in row.identifiers:
            if key in owner:
                parent[find(index)] = find(owner[key])
            else:
                owner[key] = index
    groups = {}
    for index, row in enumerate(rows):
        if row.identifiers:
            rows_, keys = groups.setdefault(find(index), ([], set()))
            rows_.append(index)
            keys.update(row.identifiers)
    return sorted(groups.values(), key=lambda g: g[0][0])


def test_grouping_matches_union_find_on_random_chunks_with_chains_and_bridges():
    rng = random.Random(3)
    for _ in range(200):
        pool = [("phone", str(n)) for n in range(rng.randint(1, 40))]
        pool += [("email", f"{n}@x.cn") for n in range(rng.randint(1, 10))]
        rows = [
            SimpleNamespace(
                identifiers=rng.sample(pool, min(len(pool), rng.choice([0, 1, 1, 1, 2, 3])))
            )
            for _ in range(rng.randint(0, 60))
        ]

        groups = _group(rows)

        assert [(g.rows, g.keys) for g in groups] == reference_groups(rows)


def test_read_ahead_yields_every_item_in_order_then_raises_the_producers_error():
    def items():
        yield from range(5)
        raise ImportFileError("row 7 cannot be decoded", row=7)

    seen = []
    with pytest.raises(ImportFileError, match="row 7"):
        for item in read_ahead(items()):
            seen.append(item)

    assert seen == [0, 1, 2, 3, 4]


def test_read_ahead_closed_early_stops_its_thread():
    produced = []

    def items():
        for n in itertools.count():
            produced.append(n)
            yield n

    reader = read_ahead(items(), depth=2)
    assert [next(reader), next(reader)] == [0, 1]
    reader.close()

    assert not any(t.name == "siyu-import-read-ahead" for t in threading.enumerate())
    assert len(produced) <= 5  # the consumer's two, the queue's two, one waiting to be put


def test_people_of_a_chunk_carry_their_attributes_and_pinyin_before_any_database_work():
    # given two rows of one person (shared phone), the name only on the second, and a stranger
    mapping = build_mapping(["姓名", "手机号", "城市"], kind="customer")
    rows = [
        parse_customer(2, ["", "13812341234", "杭州"], mapping),
        parse_customer(3, ["李四", "13812341234", "上海"], mapping),
        parse_customer(4, ["王五", "13912341234", ""], mapping),
    ]
    # when the chunk is grouped (as the read-ahead thread does)
    first, second = group_rows(rows)
    # then each person has the first non-empty value of each attribute, and the name's pinyin
    assert first.rows == [0, 1]
    assert first.attributes == ("李四", "", None, "", "杭州", "+8613812341234")
    assert first.pinyin == ("lisi", "ls")
    assert (second.attributes[0], second.pinyin) == ("王五", ("wangwu", "ww"))


def test_the_read_ahead_parser_pauses_now_and_then_and_hands_every_row_on(monkeypatch):
    pauses = []
    ticks = itertools.count()  # each look at the clock is one second later
    monkeypatch.setattr(loader.time, "sleep", pauses.append)
    monkeypatch.setattr(loader.time, "perf_counter", lambda: next(ticks))

    assert list(loader.ceding(iter(range(25)), every=10)) == list(range(25))
    assert pauses == [loader.CEDE_SECONDS] * 2  # before rows 9 and 19: ten seconds apart
