"""A provider's rounds file is hash-chained: a record removed or altered in the middle is reported."""

from __future__ import annotations

import json

from peer.auctioneer.record import GENESIS_HASH, append_record, cut_torn_tail, read_chain, read_records


def bottom(n: int) -> dict:
    return {"round": n, "output": "bottom", "reason": f"r{n}", "culprits": [], "proved": False}


def write(path, rounds) -> str:
    head = GENESIS_HASH
    for n in rounds:
        head = append_record(path, bottom(n), head)
    return head


def test_an_intact_chain_reads_clean_and_gives_the_head(tmp_path):
    path = tmp_path / "rounds.ndjson"
    head = write(path, [1, 2, 5])
    records, problems, read_head = read_chain(path)
    assert [r["round"] for r in records] == [1, 2, 5] and not problems
    assert read_head == head and records[0]["prev"] == GENESIS_HASH


def test_a_removed_middle_record_is_reported(tmp_path):
    path = tmp_path / "rounds.ndjson"
    write(path, [1, 2, 3, 4])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1] + lines[2:]))  # round 2 gone: rounds still increase
    _, problems = read_records(path)
    assert problems == ["line 2: round 3 does not chain to the line before it (a record was removed or altered)"]


def test_a_removed_first_record_and_an_altered_record_are_reported(tmp_path):
    path = tmp_path / "rounds.ndjson"
    write(path, [1, 2, 3])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[1:]))
    assert "line 1: round 2 does not chain" in read_records(path)[1][0]
    write(path := tmp_path / "b.ndjson", [1, 2, 3])
    record = json.loads(path.read_text().splitlines()[0])
    record["reason"] = "rewritten"
    path.write_text(json.dumps(record, sort_keys=True) + "\n" + "".join(path.read_text().splitlines(keepends=True)[1:]))
    assert read_records(path)[1] == ["line 2: round 2 does not chain to the line before it (a record was removed or altered)"]


def test_a_torn_tail_is_cut_and_the_next_record_chains_to_the_last_whole_one(tmp_path):
    path = tmp_path / "rounds.ndjson"
    head = write(path, [1, 2])
    with open(path, "a") as f:
        f.write('{"round": 3, "outp')
    (problem,) = read_records(path)[1]
    assert problem.startswith("line 3: torn tail ignored (")  # the reason is json's own wording
    assert cut_torn_tail(path) == len('{"round": 3, "outp')
    assert cut_torn_tail(path) == 0
    append_record(path, bottom(3), head)
    records, problems = read_records(path)
    assert [r["round"] for r in records] == [1, 2, 3] and not problems


def test_an_append_after_an_uncut_torn_tail_never_fuses_with_it(tmp_path):
    path = tmp_path / "rounds.ndjson"
    head = write(path, [1])
    with open(path, "a") as f:
        f.write('{"rou')
    append_record(path, bottom(2), head)
    records, problems = read_records(path)
    assert [r["round"] for r in records] == [1, 2]  # round 2 survives on its own line
    assert len(problems) == 1 and problems[0].startswith("line 2: unreadable")


def test_files_from_before_the_chain_still_read_and_a_chained_line_after_them_checks(tmp_path):
    path = tmp_path / "rounds.ndjson"
    legacy = json.dumps(bottom(1), sort_keys=True)
    path.write_text(legacy + "\n")
    records, problems, head = read_chain(path)
    assert len(records) == 1 and not problems
    append_record(path, bottom(2), head)
    assert not read_records(path)[1]
    with open(path, "a") as f:  # an unchained line after a chained one is damage
        f.write(json.dumps(bottom(3), sort_keys=True) + "\n")
    assert "line 3: round 3 does not chain" in read_records(path)[1][0]
