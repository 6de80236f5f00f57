"""The loader's in-memory grouping agrees with a plain union-find over the rows."""

import random
from types import SimpleNamespace

from siyu.imports.loader import _group


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
