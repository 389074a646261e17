"""The HTML board ("a look without Grafana"): rendered from the same queries against the real
ClickHouse filled by the pipeline, self-contained, and really drawn by headless Chromium."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from finpulse.config.boards.catalog import BOARDS, PENDING_TABLES
from finpulse.config.boards.html import write_board_html
from finpulse.config.boards.spec import SEVERITY_COLOURS
from finpulse.sinks.clickhouse import make_client
from finpulse.streams.cli import main
from tests.board_data import add_contract_tables, board_settings, fill_through_pipeline
from tests.png import colour_stats

pytestmark = pytest.mark.integration

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,2000",
    "--hide-scrollbars",
]


def chromium() -> str:
    """The Chromium binary; its absence FAILS the test (CI installs it: apt-get install -y
    chromium)."""
    for name in ("chromium", "chromium-browser", "chromium-headless-shell"):
        if path := shutil.which(name):
            return path
    raise AssertionError("chromium missing: `apt-get install -y chromium`")


def screenshot(html_path, tmp_path):
    png = tmp_path / "board.png"
    subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            html_path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    assert png.exists() and png.stat().st_size > 10_000
    return png


@pytest.fixture(scope="module")
def board_db(clickhouse, tmp_path_factory):
    settings = board_settings(clickhouse.clickhouse_url, tmp_path_factory.mktemp("html"))
    fill_through_pipeline(settings, datetime.now(UTC))
    return settings


def test_board_html_is_self_contained_and_has_every_panel(board_db, tmp_path):
    path = write_board_html(board_db, tmp_path / "board.html")
    text = path.read_text()
    for board in BOARDS:
        assert board.title.replace("×", "×") in text
        for panel in board.panels:
            assert html.escape(panel.title) in text
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "url(" not in text
    assert text.count("<svg") >= 8 and "<table>" in text
    assert "query failed" not in text
    # the test data's overdue large-value report, its days_left cell in red
    red = SEVERITY_COLOURS["red"]
    assert re.search(f'<td style="background:{red};color:#111">-[0-9]+</td>', text)
    # panels on pending tables say so instead of failing
    for t in PENDING_TABLES & {"risk_scores", "alerts", "model_metrics"}:
        assert f"waiting for table {t}" in text
    for hexa in SEVERITY_COLOURS.values():
        assert hexa in text


def test_board_html_screenshot_in_headless_chromium_is_not_blank(board_db, tmp_path):
    # with the pending tables in their contract form, every panel has data to draw
    client = make_client(board_db)
    add_contract_tables(client, board_db.clickhouse_database, PENDING_TABLES)
    client.close()
    path = write_board_html(board_db, tmp_path / "board.html")
    assert "waiting for table" not in path.read_text()
    png = screenshot(path, tmp_path)
    distinct, top_share, counts = colour_stats(png)
    assert distinct > 50, "a rendered board has many colours"
    assert top_share < 0.9, "more than 90 % one colour: blank page"
    sev = {bytes.fromhex(h[1:]) for h in SEVERITY_COLOURS.values()}
    assert sum(counts[c] for c in sev) > 200, "severity colours are drawn"


def test_board_html_cli(board_db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FINPULSE_CLICKHOUSE_URL", board_db.clickhouse_url)
    monkeypatch.setenv("FINPULSE_CLICKHOUSE_DATABASE", board_db.clickhouse_database)
    out = tmp_path / "cli" / "boards.html"
    assert main(["board", "--html", str(out), "--range-s", "3600"]) == 0
    assert capsys.readouterr().out.strip() == str(out.resolve())
    assert "finpulse · Risk overview" in out.read_text()
