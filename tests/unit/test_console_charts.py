"""The console's SVG charts: labels and names escaped (intent names are configurable), a gap
for a period without data, and a chart with nothing to draw that says so."""

from __future__ import annotations

from services.ingest.http.console.charts import Series, bars, lines


def test_bars_stack_series_and_escape_what_they_show() -> None:
    svg = str(bars("<b>Intents</b>", ["Dec 01", "Dec 02"], [Series("<script>", [3.0, 0.0]), Series("thanks", [1.0, 2.0])]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;Intents" in svg
    assert svg.count("<rect") == 3  # a zero draws no bar
    assert 'class="key s0"' in svg and 'class="key s1"' in svg  # a legend once there are two series
    assert "nothing yet" not in svg


def test_lines_break_at_a_gap_and_empty_charts_say_so() -> None:
    svg = str(lines("Latency", ["a", "b", "c", "d"], [Series("p50", [100.0, None, 120.0, 130.0])], unit=" ms"))
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3  # a lone point before the gap: no line
    assert "p50 120 ms" in svg
    assert "nothing yet" in str(lines("Latency", ["a"], [Series("p50", [None])]))
    assert "nothing yet" in str(bars("Messages", ["a", "b"], [Series("all", [0.0, 0.0])]))


def test_large_axis_values_stay_short() -> None:
    assert ">100k<" in str(bars("Tokens", ["a"], [Series("t", [96_000.0])]))
