"""Server cost and payload of the order-flow views (liquidity heatmap, footprint).

Data, built from the 2024 spot BTCUSDT recording (650 s, real book and trades):
- book samples: the recorded book replayed diff by diff and handed to the live sampler
  (``BookSampleRing``) every 250 ms of exchange time, as the feed does at publication;
  the 650 real one-second samples are then repeated to fill 4 hours, each repeat shifted
  by a random walk of whole ticks (so walls drift like a real market) — a ±2 % band;
- trades: the recording's ≈ 20k trades repeated with the same shifts and times moved on,
  ≈ 440k trades in 4 hours (a busy BTCUSDT rate).

Measured, median of repeated runs, payloads JSON-encoded as Dash sends them
(``plotly.io.json.to_json_plotly``):
- heatmap live update: one new 1 s column of the ±2 % band (the callback's Patch), against
  the naive peer that resends the whole 5 min figure every second;
- heatmap 4 h view: the grid (1 min columns × ≤ 200 rows), dots, figure and layer, from samples
  in memory, and from the history store: the same 4 h of samples written as the recorder
  writes them (``book-grid``: per second and 1 bp bucket the bucket's summed size, in
  hourly segments as compaction leaves them, plus ``book-top``), read by the page's
  callback with an empty live ring (``RecordedBook``: 1 min columns, rows of 2^k stored
  buckets, from the minute pyramid ``book-grid-1m``), first read and again; the pyramid's
  one-off build for the 4 h backlog is timed apart (live, it grows a minute at a time);
- footprint 4 h of 1 m bars: analytics, figure and payload; the peer is a plain-Python
  loop computing the same rows (the reference of the unit tests);
- the sampler's cost per publication.
The last line is one JSON object (names carry their units).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from plotly.io.json import to_json_plotly

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.callbacks.derived import DerivedCache
from app.callbacks.footprint import render_footprint
from app.callbacks.heatmap import render_heatmap
from services.analytics.footprint import footprint
from services.binance.messages import DepthUpdate, Trade, decode_depth_snapshot, decode_frame
from services.history.book_grid import bucket_height, bucket_sums
from services.history.book_heatmap import RecordedBook
from services.history.book_pyramid import extend
from services.history.reader import HistoryReader
from services.history.schema import SCALE
from services.history.segments import BOOK_GRID, BOOK_TOP, write_segment
from services.market.book_samples import BookSampleRing
from services.market.views import BookSample, BookView, SymbolInfo, SyncState, TradeView
from services.replay.recording import SPOT_2024, read_recording
from services.store import MemoryStore, SymbolSnapshot

SYMBOL = "BTCUSDT"
TICK = 0.01
HOURS = 4
REPEATS = 15
INFO = SymbolInfo(SYMBOL, "TRADING", "BTC", "USDT", TICK, 0.00001, 2, 5)


def replay_recording() -> tuple[list[BookSample], TradeView, list[float]]:
    """One-second book samples (via the live sampler), the trades, and the sampler's cost
    per publication (seconds)."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    last_id = -1
    ring = BookSampleRing(max_samples=10_000, max_bytes=1 << 34)
    next_publication = 0
    record_cost: list[float] = []
    trades: list[tuple[int, int, float, float, float]] = []
    for msg in read_recording(SPOT_2024):
        if msg.src == "rest":
            snap = decode_depth_snapshot(msg.raw)
            bids, asks, last_id = dict(snap.bids), dict(snap.asks), snap.lastUpdateId
            continue
        event = decode_frame(msg.raw).event
        if isinstance(event, Trade):
            trades.append((event.t, event.T, event.p, event.q, -1.0 if event.m else 1.0))
        if not isinstance(event, DepthUpdate) or last_id < 0 or event.u <= last_id:
            continue
        for side, levels in ((bids, event.b), (asks, event.a)):
            for p, q in levels:
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        last_id = event.u
        if next_publication <= event.E:
            next_publication = event.E - event.E % 250 + 250
            bp = np.array(sorted(bids, reverse=True))
            ap = np.array(sorted(asks))
            view = BookView(
                SYMBOL, bp, np.array([bids[p] for p in bp.tolist()]), ap,
                np.array([asks[p] for p in ap.tolist()]), sync_state=SyncState.LIVE,
            )  # fmt: skip
            started = time.perf_counter()
            ring.record(view, event.E)
            record_cost.append(time.perf_counter() - started)
    cols = list(zip(*trades, strict=True))
    view = TradeView(
        SYMBOL, np.array(cols[0], dtype=np.int64), np.array(cols[1], dtype=np.int64),
        np.array(cols[2]), np.array(cols[3]), np.array(cols[4]), kind="trade",
    )  # fmt: skip
    return ring.samples(), view, record_cost


def extend_to_hours(
    samples: list[BookSample], trades: TradeView, hours: int, rng: np.random.Generator
) -> tuple[list[BookSample], TradeView, int]:
    """The real samples and trades repeated to fill ``hours``, each repeat shifted by a
    random walk of ticks; returns them and the end time (ms)."""
    span_ms = samples[-1].time_ms - samples[0].time_ms + 1000
    repeats = hours * 3_600_000 // span_ms + 1
    base = samples[0].time_ms
    out: list[BookSample] = []
    t_cols: list[np.ndarray] = []
    p_cols: list[np.ndarray] = []
    shift = 0.0
    for r in range(repeats):
        dt = r * span_ms
        for s in samples:
            out.append(
                BookSample(
                    s.time_ms + dt, True, s.bid_prices + shift, s.bid_qtys,
                    s.ask_prices + shift, s.ask_qtys,
                )
            )  # fmt: skip
        t_cols.append(trades.time_ms + dt)
        p_cols.append(trades.price + shift)
        shift += TICK * float(rng.integers(-20_000, 20_000))
    end = base + hours * 3_600_000
    out = [s for s in out if s.time_ms < end]
    t = np.concatenate(t_cols)
    keep = t < end
    n = int(keep.sum())
    view = TradeView(
        SYMBOL, np.arange(n, dtype=np.int64), t[keep], np.concatenate(p_cols)[keep],
        np.tile(trades.qty, repeats)[keep], np.tile(trades.side, repeats)[keep], kind="trade",
    )  # fmt: skip
    return out, view, end


def write_history(samples: list[BookSample], root: Path) -> int:
    """The samples stored as the recorder stores them (one sample per second: each is its
    second's state): ``book-grid`` rows of bucket sums in hourly segments and one
    ``book-top`` row per second. Returns the grid rows written."""
    mid = (samples[0].best_bid + samples[0].best_ask) / 2
    height = bucket_height(mid, TICK, 1.0)
    height_e8 = round(height * SCALE)
    rows = 0
    for hour in range(0, len(samples), 3600):
        part = samples[hour : hour + 3600]
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("time_s", "side", "bucket", "q")}
        for s in part:
            for sign, prices, qtys in ((1, s.bid_prices, s.bid_qtys), (-1, s.ask_prices,
                                                                    s.ask_qtys)):  # fmt: skip
                buckets, sums = bucket_sums(prices, qtys, height)
                cols["time_s"].append(np.full(buckets.shape[0], s.time_ms // 1000, np.int64))
                cols["side"].append(np.full(buckets.shape[0], sign, np.int8))
                cols["bucket"].append(buckets)
                cols["q"].append(np.round(sums * SCALE).astype(np.int64))
        frame = pl.DataFrame({
            "time_s": np.concatenate(cols["time_s"]), "side": np.concatenate(cols["side"]),
            "bucket": np.concatenate(cols["bucket"]),
            "bucket_e8": np.full(sum(a.shape[0] for a in cols["q"]), height_e8, np.int64),
            "max_qty_e8": np.concatenate(cols["q"]),
        })  # fmt: skip
        rows += frame.height
        t0, t1 = part[0].time_ms // 1000 * 1000, part[-1].time_ms // 1000 * 1000
        write_segment(root, "spot", SYMBOL, BOOK_GRID, frame, t0=t0, t1=t1, lo=0, hi=0,
                      writer=f"wbench.{hour}")  # fmt: skip
        top = pl.DataFrame({
            "time_ms": [s.time_ms for s in part],
            "bid_e8": [round(s.best_bid * SCALE) for s in part], "bid_qty_e8": [0] * len(part),
            "ask_e8": [round(s.best_ask * SCALE) for s in part], "ask_qty_e8": [0] * len(part),
            "live": [True] * len(part),
        })  # fmt: skip
        write_segment(root, "spot", SYMBOL, BOOK_TOP, top, t0=part[0].time_ms,
                      t1=part[-1].time_ms, lo=0, hi=0, writer=f"wbench.t{hour}")  # fmt: skip
    return rows


def median_ms(run, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times), result


def footprint_loop(view: TradeView, interval_ms: int, row_size: float) -> dict:
    """The plain-Python peer: buy/sell volume per (bar, row) in one loop."""
    cells: dict[tuple[int, int], list[float]] = {}
    half = TICK / 2
    for t, p, q, s in zip(
        view.time_ms.tolist(), view.price.tolist(), view.qty.tolist(), view.side.tolist(),
        strict=True,
    ):  # fmt: skip
        key = (t // interval_ms, int((p + half) // row_size))
        cell = cells.setdefault(key, [0.0, 0.0])
        cell[0 if s > 0 else 1] += q
    return cells


PAINT_JS = """
const [graph, event] = [arguments[0], arguments[1]];
window.__paint = []; window.__resp = null;
const original = window.fetch;
window.fetch = async (...args) => {
  const response = await original(...args);
  const body = args[1] && args[1].body;
  if (String(args[0]).includes('_dash-update-component') && body
      && String(body).includes(graph + '.figure')) {
    response.clone().text().then(() => { window.__resp = performance.now(); });
  }
  return response;
};
const gd = document.querySelector('#' + graph + ' .js-plotly-plot');
window.__axes = []; let shown = null;
const done = () => {
  if (window.__resp === null) return;
  const t0 = window.__resp; window.__resp = null; shown = t0;
  requestAnimationFrame(() => window.__paint.push(performance.now() - t0));
};
if (event === 'plotly_afterplot') gd.on(event, done); else gd.addEventListener(event, done);
gd.addEventListener('heatmaplayer:axes', () => {  // the x axis moved to the new columns
  if (shown === null) return;
  const t0 = shown; shown = null;
  requestAnimationFrame(() => window.__axes.push(performance.now() - t0));
});
return true;
"""


QUIET_JS = """
const [kind, n, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const api = window.dash_clientside.heatmapLayer;
const gd = document.querySelector('#heatmap-chart .js-plotly-plot');
const frame = () => new Promise(r => requestAnimationFrame(() => r()));
const m = api.model('heatmap-chart');
const column = i => m.z[(m.z.length - 1 - i % 10)].slice();
(async () => {
  const out = [];
  if (kind === 'layer') {  // the canvas layer: one new column appended, call → next frame
    for (let i = 0; i < n; i++) {
      const p = {kind: 'append', rev: m.rev, from: m.end, end: m.end + m.dx, z: [column(i)],
                 live: [1], bid: [m.bid[m.bid.length - 1]], ask: [m.ask[m.ask.length - 1]],
                 dots: {t: [m.end + m.dx / 2], p: [m.dots.p[0] || m.y0], q: [1], side: [1],
                        s: [6]}};
      await frame();
      const t0 = performance.now();
      const painted = new Promise(r => gd.addEventListener('heatmaplayer:painted', r,
                                                           {once: true}));
      api.paint(p, 'heatmap-chart', 'heatmap-redraw');
      await painted;
      await frame();
      out.push(performance.now() - t0);
    }
    done({times: out, dots: m.dots.t.length, columns: m.z.length});
    return;
  }
  // the previous design, on the same data in a plot of the same size: Plotly draws the grid
  // (heatmap trace, x0/dx), the best bid/ask lines and the trade dots; one column slid by
  // Plotly.react, as the Dash Patch of a live column ended
  const div = document.createElement('div');
  div.style.cssText = `position:fixed;left:0;top:0;width:${gd.offsetWidth}px;`
    + `height:${gd.offsetHeight}px;z-index:-1`;
  document.body.appendChild(div);
  const colour = (c, a) => c.replace('#', '').match(/../g).map(h => parseInt(h, 16))
    .concat([a]).join(',');
  const edge = 0.5 * Math.min(m.lower / m.upper, 0.99);
  const heat = {type: 'heatmap', transpose: true, x0: m.x0 + m.dx / 2, dx: m.dx,
    y0: m.y0 + m.dy / 2, dy: m.dy, z: m.z, zmin: -m.upper, zmax: m.upper, zsmooth: false,
    showscale: false, hoverongaps: false, colorscale: [[0, `rgba(${colour(m.colours.ask, 1)})`],
      [0.5 - edge - 1e-6, `rgba(${colour(m.colours.ask, 0.25)})`],
      [0.5 - edge, `rgba(${colour(m.colours.ask, 0)})`],
      [0.5 + edge, `rgba(${colour(m.colours.bid, 0)})`],
      [0.5 + edge + 1e-6, `rgba(${colour(m.colours.bid, 0.25)})`],
      [1, `rgba(${colour(m.colours.bid, 1)})`]]};
  const xs = m.z.map((_, i) => m.x0 + (i + 0.5) * m.dx);
  const lines = [m.bid, m.ask].map(y => ({type: 'scatter', mode: 'lines', x: xs, y: y,
    line: {shape: 'hv', width: 1.2}}));
  const dots = [1, -1].map(side => {
    const keep = m.dots.side.map((s, i) => s === side ? i : -1).filter(i => i >= 0);
    return {type: 'scatter', mode: 'markers', x: keep.map(i => m.dots.t[i]),
      y: keep.map(i => m.dots.p[i]), customdata: keep.map(i => m.dots.q[i]),
      marker: {size: keep.map(i => m.dots.s[i]), opacity: 0.75,
               line: {color: '#111', width: 0.5}}};
  });
  const layout = Object.assign({}, gd.layout, {hovermode: 'closest'});
  await Plotly.newPlot(div, [heat].concat(lines, dots), layout);
  for (let i = 0; i < n; i++) {
    const data = div.data.slice();
    const tr = data[0];
    data[0] = Object.assign({}, tr, {z: tr.z.slice(1).concat([column(i)]), x0: tr.x0 + tr.dx});
    for (let j = 1; j < 3; j++) {
      const line = data[j];
      data[j] = Object.assign({}, line, {x: line.x.slice(1).concat([line.x[line.x.length - 1]
        + tr.dx]), y: line.y.slice(1).concat([line.y[line.y.length - 1]])});
    }
    await frame();
    const t0 = performance.now();
    await Plotly.react(div, data, layout);
    await frame();
    out.push(performance.now() - t0);
  }
  const fast = div._fullData[0]._islinear === true;
  Plotly.purge(div); div.remove();
  done({times: out, fast: fast, dots: dots.reduce((a, t) => a + t.x.length, 0)});
})();
"""


def browser_paint_ms(
    real: list[BookSample], trades: TradeView, seconds: float
) -> dict[str, list[float]]:
    """Times (ms) from a graph callback's response to the update painted, measured in
    headless Chromium with ``requestAnimationFrame`` after ``plotly_afterplot``, while a
    publisher adds one real book sample per second (re-timed to the wall clock): the
    heatmap's live columns, then, as a peer on the same page and machine, the depth
    chart's updates (``?view=depth``). Then, with the publisher stopped (a quiet page),
    the client side alone of one new column on the drawn heatmap: ``Plotly.react`` with
    the grid slid by one column (what a Dash ``Patch`` ends in) against
    the same without the trade dots (grid and bid/ask lines), and the heatmap trace alone
    (no dots, lines or shapes), call → next frame; and whether Plotly took its image fast
    path (``_islinear``) and how many dots the page drew."""
    import shutil
    import threading

    from selenium import webdriver
    from werkzeug.serving import make_server

    from app.server import create_app

    if shutil.which("chromedriver") is None:
        return {}
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    store = MemoryStore()
    store.publish_symbols([INFO])
    stop = threading.Event()

    def publish() -> None:
        i, seq = 0, 0
        while not stop.is_set():
            now = int(time.time() * 1000)
            s = real[i % len(real)]
            ring = store.book_samples.ring(SYMBOL)
            second = now - now % 1000
            if not len(ring) or ring.samples()[-1].time_ms < second:
                ring.add(BookSample(second, True, s.bid_prices, s.bid_qtys, s.ask_prices,
                                    s.ask_qtys))  # fmt: skip
                i += 1
            seq += 1
            book = BookView(SYMBOL, s.bid_prices, s.bid_qtys, s.ask_prices, s.ask_qtys,
                            sync_state=SyncState.LIVE)  # fmt: skip
            shift = now - int(trades.time_ms[-1])
            moved = TradeView(SYMBOL, trades.trade_id, trades.time_ms + shift, trades.price,
                              trades.qty, trades.side, trades.kind)  # fmt: skip
            store.publish(SymbolSnapshot(SYMBOL, seq, book, moved, INFO))
            stop.wait(0.25)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    server = make_server("127.0.0.1", 0, create_app(store, refresh_ms=250).server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1500,1000"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    try:

        def open_view(view: str, graph: str, trace: str) -> None:
            driver.get(f"http://127.0.0.1:{server.server_port}/{SYMBOL}?view={view}")
            deadline = time.time() + 60
            while time.time() < deadline and not driver.execute_script(
                f"const g = document.querySelector('#{graph} .js-plotly-plot');"
                f"return !!(g && g.data && g.data.length && g.data[0].type === '{trace}');"
            ):
                time.sleep(0.2)
            time.sleep(1)

        open_view("heatmap", "heatmap-chart", "scatter")
        driver.execute_script(PAINT_JS, "heatmap-chart", "heatmaplayer:painted")
        time.sleep(seconds)
        result = {"heatmap": list(driver.execute_script("return window.__paint;"))}
        result["axes"] = list(driver.execute_script("return window.__axes;"))
        open_view("depth", "depth-chart", "scatter")
        driver.execute_script(PAINT_JS, "depth-chart", "plotly_afterplot")
        time.sleep(seconds)
        result["depth"] = list(driver.execute_script("return window.__paint;"))
        stop.set()  # no more updates: the page is quiet for the client-side comparison
        driver.set_script_timeout(120)
        for kind in ("layer", "plotly", "layer", "plotly"):
            open_view("heatmap", "heatmap-chart", "scatter")
            out = driver.execute_async_script(QUIET_JS, kind, 15)
            result.setdefault(kind, []).extend(out["times"])
            if kind == "plotly":
                result["fast_path"], result["dots"] = [out["fast"]], [out["dots"]]
        return result
    finally:
        driver.quit()
        server.shutdown()
        stop.set()


def paint_figures(measured: dict[str, list]) -> tuple[list[tuple[str, str, str, str]], dict]:
    """Table rows and JSON fields of the Chromium measurements (medians)."""

    def median(key: str) -> float:
        return statistics.median(measured[key]) if measured.get(key) else float("nan")

    paints, depth_paints = measured.get("heatmap", []), measured.get("depth", [])
    paint_ms, depth_paint_ms, axes_ms = median("heatmap"), median("depth"), median("axes")
    layer_ms, plotly_ms = median("layer"), median("plotly")
    rows = [
        ("chromium: live column response → painted", f"{paint_ms:.1f} ms", "",
         f"canvas layer; median of {len(paints)} updates"),
        ("  … and the x axis moved to it", f"{axes_ms:.1f} ms", "",
         f"Plotly.react after that frame; median of {len(measured.get('axes', []))}"),
        ("  peer: depth chart update → painted", f"{depth_paint_ms:.1f} ms", "",
         f"median of {len(depth_paints)} updates"),
        ("quiet page: one column, canvas layer", f"{layer_ms:.1f} ms", "",
         "client only, call → next frame"),
        ("  peer: one column, Plotly (previous design)", f"{plotly_ms:.1f} ms", "",
         f"× {plotly_ms / layer_ms:.0f}; fast path {measured.get('fast_path')},"
         f" {measured.get('dots')} dots"),
    ]  # fmt: skip
    fields = {
        "chromium_live_update_paint_ms": round(paint_ms, 1),
        "chromium_live_update_axes_ms": round(axes_ms, 1),
        "chromium_depth_update_paint_ms": round(depth_paint_ms, 1),
        "chromium_updates_measured": len(paints),
        "chromium_quiet_layer_column_ms": round(layer_ms, 1),
        "chromium_quiet_plotly_column_ms": round(plotly_ms, 1),
        "chromium_plotly_fast_path": bool((measured.get("fast_path") or [False])[0]),
        "chromium_dots_drawn": (measured.get("dots") or [0])[0],
    }
    return rows, fields


def paint_only() -> None:
    """``--paint-only``: the Chromium figures alone (a re-measure at a quieter moment)."""
    real, real_trades, _cost = replay_recording()
    rows, fields = paint_figures(browser_paint_ms(real, real_trades, seconds=20.0))
    for name, t, _size, note in rows:
        print(f"{name:<44}{t:>12}  {note}")
    load = round(os.getloadavg()[0], 2)
    print(json.dumps({"bench": "views_paint", **fields, "load_average_1m": load}))


def main() -> None:
    rng = np.random.default_rng(15)
    started = time.perf_counter()
    real, real_trades, record_cost = replay_recording()
    samples, trades, end = extend_to_hours(real, real_trades, HOURS, rng)
    levels = statistics.median(s.bid_prices.shape[0] + s.ask_prices.shape[0] for s in real)
    print(
        f"data: {len(real)} real 1 s samples (median {levels:.0f} levels in ±2 %),"
        f" {len(samples):,} samples and {len(trades):,} trades over {HOURS} h"
        f" (built in {time.perf_counter() - started:.1f} s)"
    )
    store = MemoryStore()
    ring = store.book_samples.ring(SYMBOL)
    ring.max_samples, ring.max_bytes = len(samples) + 1, 1 << 36
    for s in samples:
        ring.add(s)
    last = samples[-1]
    book = BookView(
        SYMBOL, last.bid_prices, last.bid_qtys, last.ask_prices, last.ask_qtys,
        sync_state=SyncState.LIVE,
    )  # fmt: skip
    store.publish(SymbolSnapshot(SYMBOL, 1, book, trades, INFO))
    cache = DerivedCache()
    now = end + 500

    def heatmap(range_name: str, band: float, rendered: dict | None, at: int):
        return render_heatmap(
            store, cache, SYMBOL, "heatmap", range_name, band, "base", [2, 60], None, None,
            rendered, now_ms=at,
        )  # fmt: skip

    full5_ms, (fig5, layer5, state5) = median_ms(lambda: heatmap("5m", 2.0, None, now - 1000))
    full5_bytes = len(to_json_plotly([fig5, layer5]))
    patch_ms, (_no, patch, _s) = median_ms(lambda: heatmap("5m", 2.0, state5, now))
    patch_json_ms, patch_text = median_ms(lambda: to_json_plotly(patch))
    patch_bytes = len(patch_text)
    rows = layer5["rows"]
    full4h_ms, full4h = median_ms(lambda: heatmap("4h", 2.0, None, now)[:2], repeats=5)
    json4h_ms, text4h = median_ms(lambda: to_json_plotly(full4h), repeats=5)
    heat_cols = len(full4h[1]["z"])
    heat_rows = full4h[1]["rows"]

    with tempfile.TemporaryDirectory() as tmp:
        grid_rows = write_history(samples, Path(tmp))
        grid_mb = sum(f.stat().st_size for f in Path(tmp).rglob("*.parquet")) / 1e6
        built = time.perf_counter()
        pyramid_rows = extend(Path(tmp), "spot", SYMBOL)
        pyramid_s = time.perf_counter() - built
        recorded = RecordedBook(HistoryReader(Path(tmp)))
        empty = MemoryStore()
        empty.publish(SymbolSnapshot(SYMBOL, 1, book, trades, INFO))

        def stored_view():
            return render_heatmap(
                empty, DerivedCache(), SYMBOL, "heatmap", "4h", 2.0, "base", [2, 60], None,
                None, None, now_ms=now, recorded=recorded,
            )  # fmt: skip

        cold_started = time.perf_counter()
        stored_view()
        stored_cold_ms = 1000 * (time.perf_counter() - cold_started)
        stored_ms, (stored_fig, stored_layer, _st) = median_ms(stored_view, repeats=5)
        stored_json_ms, stored_text = median_ms(
            lambda: to_json_plotly([stored_fig, stored_layer]), repeats=5
        )
    stored_live = sum(stored_layer["live"])

    fp_state: dict = {}

    def footprint_view():
        fp_state.clear()
        figure, state = render_footprint(
            store, cache, SYMBOL, "footprint", "1m", 1000, "bidask", "300%", None, None, None
        )
        fp_state.update(state)
        return figure

    fp_ms, fp_fig = median_ms(footprint_view, repeats=7)
    fp_json_ms, fp_text = median_ms(lambda: to_json_plotly(fp_fig), repeats=7)
    analytics_ms, fp = median_ms(
        lambda: footprint(trades, interval_ms=60_000, tick_size=TICK, row_ticks=1000), repeats=7
    )
    loop_ms, _cells = median_ms(lambda: footprint_loop(trades, 60_000, 10.0), repeats=3)
    sampler_us = 1e6 * statistics.median(record_cost)
    paint_rows, paint_json = paint_figures(browser_paint_ms(real, real_trades, seconds=20.0))

    rows_out = [
        ("heatmap live column (±2 %, 1 s): server", f"{patch_ms + patch_json_ms:.2f} ms",
         f"{patch_bytes / 1024:.1f} KB", f"{rows} rows"),
        ("  peer: whole 5 min figure every second", f"{full5_ms:.1f} ms",
         f"{full5_bytes / 1024:.1f} KB", f"× {full5_bytes / max(patch_bytes, 1):.0f} bytes"),
        ("heatmap 4 h view: server", f"{full4h_ms + json4h_ms:.1f} ms",
         f"{len(text4h) / 1024:.1f} KB", f"{heat_cols} cols × {heat_rows} rows"),
        ("heatmap 4 h view from history: server", f"{stored_ms + stored_json_ms:.1f} ms",
         f"{len(stored_text) / 1024:.1f} KB",
         f"first {stored_cold_ms:.0f} ms; {stored_live} live cols; {grid_rows:,} rows,"
         f" {grid_mb:.1f} MB"),
        ("  pyramid build, 4 h backlog (one-off)", f"{pyramid_s * 1000:.0f} ms", "",
         f"{pyramid_rows:,} minute rows"),
        ("footprint 4 h of 1m bars: server", f"{fp_ms + fp_json_ms:.1f} ms",
         f"{len(fp_text) / 1024:.1f} KB", f"{fp.bars} bars, {fp.cell_price.shape[0]:,} cells"),
        ("  footprint analytics alone", f"{analytics_ms:.1f} ms", "", ""),
        ("  peer: plain-Python loop (rows only)", f"{loop_ms:.1f} ms", "",
         f"× {loop_ms / analytics_ms:.1f} slower"),
        ("book sampler per publication", f"{sampler_us:.0f} µs", "", "median"),
        *paint_rows,
    ]  # fmt: skip
    print(f"{'measure':<44}{'time':>12}{'payload':>12}  note")
    for name, t, size, note in rows_out:
        print(f"{name:<44}{t:>12}{size:>12}  {note}")
    print(
        json.dumps(
            {
                "bench": "views",
                "heatmap_live_column_server_ms": round(patch_ms + patch_json_ms, 3),
                "heatmap_live_column_kb": round(patch_bytes / 1024, 2),
                "heatmap_full_5m_figure_kb": round(full5_bytes / 1024, 1),
                "heatmap_4h_server_ms": round(full4h_ms + json4h_ms, 1),
                "heatmap_4h_kb": round(len(text4h) / 1024, 1),
                "heatmap_4h_history_server_ms": round(stored_ms + stored_json_ms, 1),
                "heatmap_4h_history_first_read_ms": round(stored_cold_ms, 1),
                "heatmap_4h_history_kb": round(len(stored_text) / 1024, 1),
                "history_grid_rows_4h": grid_rows,
                "history_pyramid_build_4h_ms": round(pyramid_s * 1000, 1),
                "footprint_4h_1m_server_ms": round(fp_ms + fp_json_ms, 1),
                "footprint_4h_1m_kb": round(len(fp_text) / 1024, 1),
                "footprint_analytics_ms": round(analytics_ms, 2),
                "footprint_python_loop_ms": round(loop_ms, 1),
                "sampler_per_publication_us": round(sampler_us, 1),
                **paint_json,
                "load_average_1m": round(os.getloadavg()[0], 2),
                "trades": len(trades),
                "samples": len(samples),
            }
        )
    )


if __name__ == "__main__":
    if "--paint-only" in sys.argv:
        paint_only()
    else:
        main()
