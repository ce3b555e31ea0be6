"""The check command reproduces manifest.json for every bundled recording, through the
same decoding, BookSync and TradeLog code the live feed uses."""

from __future__ import annotations

import json

import pytest

from app.cli.check import check_recording, main

FILES = ("spot_2024", "spot_2021", "usdm_2024")


@pytest.fixture(scope="module")
def results(recordings) -> dict[str, dict[str, dict]]:
    return {name: {r["symbol"]: r for r in check_recording(recordings[name])} for name in FILES}


@pytest.mark.parametrize("name", FILES)
def test_recording_reproduces_manifest(name, recordings, manifest, results):
    entry = manifest[recordings[name].name]
    assert set(results[name]) == set(entry["symbols"])
    for symbol, facts in entry["symbols"].items():
        got = results[name][symbol]
        rec = facts["reconstruction"][0]
        trades = facts.get("trade") or facts["aggTrade"]
        assert got["status"] == "ok"
        assert got["market"] == ("usdm" if name.startswith("usdm") else "spot")
        assert got["bids_top5"] == rec["final_top5_bids"]
        assert got["asks_top5"] == rec["final_top5_asks"]
        assert got["levels"] == rec["final_book_levels"]
        assert got["diffs_applied"] == rec["diffs_applied"]
        assert got["diffs_dropped"] == rec["diffs_dropped_before_sync"]
        assert got["last_update_id"] == facts["diff_chain"]["last"]["u"]
        assert got["resyncs"] == got["gaps"] == 0
        assert got["trades"] == trades["n"]
        assert got["trade_qty_sum"] == trades["sum_qty"]
        assert got["buyer_maker_count"] == trades["buyer_is_maker_count"]
        assert got["trade_gaps"] == trades["id_gaps"] == 0
        assert got["book_ticker_checks"] == rec["bookTicker_checks"]
        misses = [m["diff_u"] for m in rec["bookTicker_mismatches"]]
        assert got["book_ticker_miss_u"] == misses


def test_known_top_of_book_check_figures(results):
    spot = results["spot_2024"]["BTCUSDT"]
    usdm = results["usdm_2024"]["BTCUSDT"]
    assert (spot["book_ticker_checks"], spot["book_ticker_misses"]) == (5853, 2)
    assert (usdm["book_ticker_checks"], usdm["book_ticker_misses"]) == (5754, 0)


def test_vwap_is_within_traded_range(results):
    for by_symbol in results.values():
        for got in by_symbol.values():
            assert got["vwap"] > 0


def test_cli_prints_json_lines_and_exits_zero(recordings, capsys):
    assert main([str(recordings["spot_2021"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["symbol"] for line in lines] == ["BTCUSDT", "DOTUSDT", "ETHUSDT"]


@pytest.mark.parametrize(
    ("name", "line", "reason"),
    [
        ("spot_2024", 10866, "gap: U=50093285523 after u=50093285515"),
        ("usdm_2024", 12885, "gap: pu=5123112204146 after u=5123112201823"),
    ],
)
def test_cli_drop_line_derives_a_gap_and_fails(name, line, reason, recordings, capsys):
    assert main(["--drop-line", str(line), str(recordings[name])]) == 1
    got = json.loads(capsys.readouterr().out)
    assert got["gaps"] == 1
    assert got["resyncs"] == 1
    assert got["state"] == "RESYNCING"
    assert got["resync_reason"] == reason
    assert got["status"] == f"not in sync: RESYNCING ({reason})"


def test_cli_missing_file_is_a_usage_error(tmp_path):
    assert main([str(tmp_path / "absent.jsonl.gz")]) == 2
